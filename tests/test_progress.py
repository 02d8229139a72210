"""swarmcover.launcher.progress: a live bar on a terminal, plain lines elsewhere (in process)."""

import io

import pytest

from swarmcover.launcher.progress import Progress

pytestmark = pytest.mark.unit


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_at_most_every_period_and_nothing_drawn_in_place():
    out = io.StringIO()
    p = Progress(out, 10.0, every=3600.0)
    assert not p.is_bar
    for t in range(10):
        p.update(t, lambda: "status", lambda t=t: f"t {t}")
    p.say("said")
    p.update(9.5, lambda: "status", lambda: "forced", force=True)
    p.close()
    assert out.getvalue() == "t 0\nsaid\nforced\n"  # the first line, then only what was forced


def test_a_terminal_gets_a_bar_with_status_and_eta_and_messages_above_it():
    out = _Terminal()
    p = Progress(out, 60.0, refresh=0.0)
    assert p.is_bar
    p.update(15.0, lambda: "live 36/36", lambda: "never printed")
    p.say("a robot failed")
    p.update(45.0, lambda: "live 35/36", lambda: "never printed")
    p.update(60.0, lambda: "live 35/36", lambda: "never printed")
    p.close()
    text = out.getvalue()
    frames = text.replace("\n", "\r").split("\r")
    assert "never printed" not in text and "a robot failed" in frames
    assert any(f.startswith(" 25%|") and "15.0/60 world s" in f and "live 36/36" in f for f in frames)
    assert frames[-2].startswith("100%|") and "live 35/36" in frames[-2] and text.endswith("\n")
