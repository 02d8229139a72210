"""What a process loads: an agent stays small (no scipy, numba, matplotlib, pygame), and the
package's lazily loaded names all resolve."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import swarmcover as sc


@pytest.mark.unit
def test_every_public_name_resolves():
    for name in sc.__all__:
        assert getattr(sc, name) is not None, name
    assert set(dir(sc)) >= set(sc.__all__)


@pytest.mark.integration
def test_a_function_named_like_its_module_is_the_function():
    """``swarmcover.lloyd`` is the function even when its module was loaded through another name."""
    code = "import swarmcover as sc\nsc.LloydResult\nprint(callable(sc.lloyd), callable(sc.sample))\n"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.split() == ["True", "True"]


@pytest.mark.integration
def test_an_agent_process_loads_neither_scipy_nor_numba():
    """Hundreds of agent processes share a machine: each must not pay for scipy and numba (about
    80 MB and 0.7 s apiece) when its law runs on numpy."""
    code = (
        "import sys, swarmcover.cli.main, swarmcover.agents.agent\n"
        "heavy = {'scipy', 'numba', 'llvmlite', 'matplotlib', 'pygame'}\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & heavy)\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == ""


ROOT = Path(__file__).resolve().parents[1]
#: who may import whom: a folder's modules may import the core and the layers listed, never others
LAYERS = {
    "swarmcover": set(),
    "agents": {"swarmcover"},
    "simulator": {"swarmcover"},
    "launcher": {"swarmcover", "swarmcover.simulator"},
    "testing": {"swarmcover"},
    "cli": {
        "swarmcover",
        "swarmcover.agents",
        "swarmcover.simulator",
        "swarmcover.launcher",
        "swarmcover.testing",
    },
}
UPPER = {
    "swarmcover.agents",
    "swarmcover.simulator",
    "swarmcover.launcher",
    "swarmcover.cli",
    "swarmcover.testing",
}


def _imports(path: Path) -> set[str]:
    """Every absolute module name a file imports (at any depth of its code)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def _layer_of(name: str) -> str | None:
    for upper in sorted(UPPER, key=len, reverse=True):
        if name == upper or name.startswith(upper + "."):
            return upper
    return "swarmcover" if name == "swarmcover" or name.startswith("swarmcover.") else None


@pytest.mark.unit
@pytest.mark.parametrize("folder", sorted(LAYERS))
def test_layers_import_only_what_is_below_them(folder):
    """The core imports no upper layer and neither zmq nor pygame; agents and the simulator never
    import each other (they meet on the wire); the launcher starts agents by command, not import."""
    files = sorted((ROOT / folder).rglob("*.py"))
    assert files
    for path in files:
        for name in _imports(path):
            top = name.split(".")[0]
            if top in {"agents", "simulator", "launcher", "swarmcover_cli", "cli", "testing"}:
                pytest.fail(f"{path.relative_to(ROOT)} imports the bare name {name}")
            if folder == "swarmcover":
                assert top not in {"zmq", "pygame"}, f"{path.relative_to(ROOT)} imports {name}"
            layer = _layer_of(name)
            own = "swarmcover" if folder == "swarmcover" else f"swarmcover.{folder}"
            if layer is None or layer == own:
                continue
            assert layer in LAYERS[folder], f"{path.relative_to(ROOT)} imports {name}"


@pytest.mark.integration
@pytest.mark.parametrize("name", ["agents", "simulator", "launcher", "cli", "testing", "swarmcover_cli"])
def test_no_bare_top_level_package_is_installed(name, tmp_path):
    """Installed, the project is the one name ``swarmcover``: ``import agents`` finds nothing outside
    a checkout and refuses inside one (it would be a second copy of every module)."""
    for cwd in (tmp_path, ROOT):
        out = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True,
                             timeout=120, cwd=cwd)  # fmt: skip
        assert out.returncode != 0, (cwd, name)
        assert "ModuleNotFoundError" in out.stderr or f"import swarmcover.{name}" in out.stderr, out.stderr


@pytest.mark.unit
def test_only_the_registry_loads_the_c_extension():
    """The law's twins are found through ``swarmcover.kernels`` alone (one place that knows whether
    the optional C extension was built)."""
    loaders = []
    for folder in LAYERS:
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            if any("_hotpath" in name for name in _imports(path)) or "._hotpath" in text.replace(
                '"swarmcover._hotpath"', ""
            ):
                loaders.append(path.relative_to(ROOT).as_posix())
    kernels = (ROOT / "swarmcover" / "kernels.py").read_text(encoding="utf-8")
    assert loaders == [] and '"swarmcover._hotpath"' in kernels, loaders


@pytest.mark.unit
def test_rooms_stay_small():
    """The design card's small rooms: no module over 400 lines and no class over 200, in every
    Python file of the repository (tests, benchmarks, examples and scripts included)."""
    import ast

    big = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if any(part.startswith(".") or part in ("build", "runs") for part in rel.parts):
            continue
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > 400:
            big.append(f"{rel}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > 200:
                big.append(f"{rel}: class {node.name}, {node.end_lineno - node.lineno + 1} lines")
    assert not big, big
