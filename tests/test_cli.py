"""The ``swarmcover`` command, run as a user would (a real process, a real pygame surface)."""

import os
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.integration


def _run(args, tmp_path, timeout=300):
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy")
    cmd = [sys.executable, "-m", "swarmcover.cli.main", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=tmp_path)


def test_demo_headless_covers_the_map(tmp_path):
    proc = _run(["demo", "--headless", "--agents", "30", "--out", "run", "--frames"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines() if line[:6].strip().replace(".", "").isdigit()]
    energy_distance = [float(r[1]) for r in rows]
    assert len(energy_distance) >= 5 and energy_distance[-1] < 0.1 * energy_distance[0]
    x = np.load(tmp_path / "run" / "positions.npy")
    assert x.shape == (30, 2) and np.all((x >= 0) & (x <= [10, 6]))
    pygame = pytest.importorskip("pygame")
    from swarmcover.simulator.render import STATUS_COLOURS

    img = pygame.surfarray.array3d(pygame.image.load(str(tmp_path / "run" / "final.png")))
    agent_pixels = np.all(img == STATUS_COLOURS[1], axis=-1)  # the demo's robots are all live
    assert agent_pixels.sum() > 30 * 15  # every agent drawn as a small marker of ~29 pixels
    # agents are drawn where the fleet is: check the pixel at each agent's position
    w, h = img.shape[:2]
    px = (x[:, 0] / 10 * (w - 1)).astype(int), ((1 - x[:, 1] / 6) * (h - 1)).astype(int)
    assert np.mean(agent_pixels[px]) > 0.9
    assert (tmp_path / "run" / "frame_000.png").is_file()


def test_bad_arguments_give_a_clear_error(tmp_path):
    proc = _run(["demo", "--agents", "1", "--headless", "--out", "run"], tmp_path)
    assert proc.returncode == 2 and "--agents must be >= 2" in proc.stderr


def test_sample_command(tmp_path):
    proc = _run(["sample", "40", "--out", "pts.npy"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert np.load(tmp_path / "pts.npy").shape == (40, 2)
