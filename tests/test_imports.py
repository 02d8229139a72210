"""What a process loads: an agent stays small (no scipy, numba, matplotlib, pygame), and the
package's lazily loaded names all resolve."""

import subprocess
import sys

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
        "import sys, swarmcover_cli.main, agents.agent\n"
        "heavy = {'scipy', 'numba', 'llvmlite', 'matplotlib', 'pygame'}\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & heavy)\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == ""
