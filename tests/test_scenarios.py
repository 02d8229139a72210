"""Scenario files: every shipped one resolves, the docs' key table matches the models, overrides.

The last tests launch broken scenarios, which must fail before anything starts; the rest are
in process (``tests/test_launch.py`` runs whole launches).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from launching import processes_mentioning

from swarmcover.launcher.resolve import resolve
from swarmcover.launcher.scenario import Scenario, apply_overrides, load_scenario

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = ROOT / "launch"
DOCS = ROOT / "docs" / "scenarios.md"


# ---------------------------------------------------------------------------------------- files
SCENARIOS = sorted(LAUNCH.iterdir())


@pytest.mark.unit
@pytest.mark.parametrize("path", SCENARIOS, ids=[p.name for p in SCENARIOS])
def test_every_file_in_launch_is_a_scenario_that_resolves(path: Path):
    assert path.suffix == ".toml", f"launch/ holds scenario files only, not {path.name}"
    scn = load_scenario(path)
    rs = resolve(scn, path)
    assert scn.description, "a shipped scenario says what it shows"
    x = np.asarray(rs.sim.positions)
    assert x.shape == (scn.fleet.size, len(scn.domain.bounds))
    assert rs.target.box.contains(x).all()
    for z in rs.target.zones:
        assert not z.contains(x).any(), "a robot starts inside a no-go zone"
    assert rs.eps > 0 and rs.speed_limit > 0
    if scn.wind is not None:
        assert np.linalg.norm(scn.wind.velocity) < rs.speed_limit
    from swarmcover.agentspec import AgentConfig, SimBody

    cfg = rs.agent_config(0, SimBody(endpoint="tcp://127.0.0.1:1"))
    # what each agent process is given (the file the launcher writes) reads back as the same config
    assert AgentConfig.model_validate_json(cfg.model_dump_json(exclude_unset=True)) == cfg


@pytest.mark.unit
def test_the_auto_control_rate_is_never_the_limit():
    """``control.rate_hz = "auto"``: twice the rate states come in real time; in lockstep, where
    states come as fast as the fleet answers, the protocol's most (a cap of twice the real-time
    rate held lockstep runs at that rate: the quickstart at 40 ticks a wall second)."""
    path = LAUNCH / "quickstart.toml"
    real = resolve(load_scenario(path), path)
    assert real.rate_hz == 2 * real.scenario.control.time_scale / real.scenario.control.tick
    lock = resolve(load_scenario(path, ['control.clock="lockstep"']), path)
    assert lock.rate_hz == 1000.0
    fixed = resolve(load_scenario(path, ['control.clock="lockstep"', "control.rate_hz=30"]), path)
    assert fixed.rate_hz == 30.0


@pytest.mark.unit
def test_shipped_scenarios_are_the_ones_promised():
    names = {p.stem for p in SCENARIOS}
    assert {"quickstart", "balloons", "failure_recovery", "obstacles", "multimodal"} <= names
    bal = load_scenario(LAUNCH / "balloons.toml")
    assert bal.target.kind == "map" and bal.wind is not None
    values = np.load(resolve(bal, LAUNCH / "balloons.toml").sim.target.map)
    assert values.ndim == 2 and (values == 0).any() and values.max() > 10 * np.median(values)  # a lake, towns
    fr = load_scenario(LAUNCH / "failure_recovery.toml")
    assert any(f.kind == "kill" and (f.fraction or 0) >= 0.3 for f in fr.failures)
    assert load_scenario(LAUNCH / "obstacles.toml").target.zones


def _doc_tables() -> dict[str, dict[str, str]]:
    """``{section: {key: default}}`` from docs/scenarios.md's "Keys and defaults"."""
    text = DOCS.read_text()
    part = text.split("## Keys and defaults", 1)[1].split("\n## ", 1)[0]
    tables: dict[str, dict[str, str]] = {}
    section = ""
    for line in part.splitlines():
        h = re.match(r"### (?:Top level|`\[+(\w+)\]+`)", line)
        if h:
            section = h.group(1) or ""
            tables[section] = {}
        m = re.match(r"\| `(\w+)` \| ([^|]+) \|", line)
        if m:
            tables[section][m.group(1)] = m.group(2).strip()
    return tables


def _doc_default(field) -> str:
    from pydantic_core import PydanticUndefined

    if field.default is PydanticUndefined and field.default_factory is None:
        return "required"
    v = field.default_factory() if field.default_factory is not None else field.default
    if v is None:
        return "not set"
    if isinstance(v, bool):
        return f"`{str(v).lower()}`"
    if isinstance(v, str):
        return f'`"{v}"`'
    if isinstance(v, list):
        return "`[]`" if not v else f"`{v}`"
    if isinstance(v, float):
        return f"`{v!r}`"
    return f"`{v}`"


@pytest.mark.unit
def test_docs_list_every_key_with_its_default():
    tables = _doc_tables()
    sections = {"": Scenario}
    for name, field in Scenario.model_fields.items():
        ann = field.annotation
        sub = [a for a in getattr(ann, "__args__", (ann,)) if isinstance(a, type)]
        if name == "failures":
            from swarmcover.launcher.scenario import Failure

            sections[name] = Failure
        elif sub and hasattr(sub[0], "model_fields"):
            sections[name] = sub[0]
    for section, model in sections.items():
        assert section in tables, f"docs/scenarios.md has no table for [{section}]"
        for key, field in model.model_fields.items():
            if section == "" and key in sections:
                continue
            assert key in tables[section], f"docs/scenarios.md: [{section}] {key} is not documented"
            doc = tables[section][key]
            want = _doc_default(field)
            if section == "" and key == "name":
                want = "the file's stem"
            assert doc == want, (
                f"docs/scenarios.md: [{section}] {key}: documented {doc}, the code says {want}"
            )
        extra = set(tables[section]) - set(model.model_fields)
        assert not extra, f"docs/scenarios.md documents keys that do not exist: [{section}] {sorted(extra)}"


@pytest.mark.unit
def test_the_readme_example_scenario_is_valid(tmp_path):
    readme = (ROOT / "README.md").read_text()
    part = readme.split("### Writing a scenario", 1)[1]
    block = part.split("```toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "readme.toml"
    path.write_text(block)
    rs = resolve(load_scenario(path), path)
    assert rs.scenario.fleet.size == 20 and rs.process_failures[0].kind == "kill"
    assert rs.target.zones and rs.sim.radio.loss == 0.1


@pytest.mark.unit
def test_overrides_set_nested_keys_in_toml_syntax():
    raw = {"fleet": {"size": 3}, "failures": [{"t": 1.0, "kind": "kill", "ids": [0]}]}
    out = apply_overrides(
        raw, ["fleet.size=20", "radio.loss=0.25", "fleet.deploy=random", "failures.0.t=2", 'law.eps="auto"']
    )
    assert out["fleet"] == {"size": 20, "deploy": "random"}
    assert out["radio"] == {"loss": 0.25}
    assert out["failures"][0]["t"] == 2 and out["law"]["eps"] == "auto"
    assert raw["fleet"]["size"] == 3  # the input is not changed
    with pytest.raises(ValueError, match="key=value"):
        apply_overrides(raw, ["fleet.size"])
    with pytest.raises(ValueError, match=r"failures\.5\.t"):
        apply_overrides(raw, ["failures.5.t=1"])


# ---------------------------------------------------------------------------------------- bad input


BAD = {
    "typo": ("[fleet]\nsise = 10\n", r"bad\.toml: fleet\.sise: unknown key"),
    "negative_fleet": ("[fleet]\nsize = -5\n", r"bad\.toml: fleet\.size: .*greater than or equal to 2"),
    "missing_map": (
        '[fleet]\nsize = 4\n[target]\nkind = "map"\nmap = "nowhere/demand.npy"\n',
        r"bad\.toml: target\.map: demand map file not found: .*nowhere/demand\.npy",
    ),
    "robot_in_zone": (
        '[fleet]\nsize = 5\ndeploy = "line"\nstart = [1.0, 1.0]\nend = [9.0, 1.0]\n'
        '[[target.zones]]\nkind = "disk"\ncenter = [5.0, 1.0]\nradius = 0.5\n',
        r"bad\.toml: fleet: robot \d starts at .* inside a no-go zone",
    ),
    "wind_too_strong": (
        "[fleet]\nsize = 4\n[control]\nspeed_limit = 1.0\n[wind]\nvelocity = [2.0, 0.0]\n",
        r"bad\.toml: wind\.velocity: wind speed 2 is not below the speed limit 1",
    ),
    "not_toml": ("[fleet\nsize = 4\n", r"bad\.toml: cannot parse as TOML"),
}


@pytest.mark.integration
@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_scenario_fails_before_anything_starts(case, tmp_path, launches):
    body, pattern = BAD[case]
    path = tmp_path / "bad.toml"
    path.write_text("[domain]\nbounds = [[0.0, 10.0], [0.0, 6.0]]\n" + body)
    out = tmp_path / "run"
    rc, so, se = launches.run(str(path), "--headless", out=out, timeout=60)
    assert rc == 2, (so, se)
    assert re.search(pattern, se), se
    assert "Traceback" not in se
    assert not out.exists(), "nothing is created for a scenario that does not load"
    assert not processes_mentioning(str(out))
