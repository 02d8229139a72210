"""The ``swarmcover`` command line (on top of the core, the agents and the simulator).

Installed as ``swarmcover.cli``: ``pyproject.toml`` maps the folder ``cli/`` there. Imported
under another name (the bare ``cli`` from a checkout) it would be a second copy of every module, so
it refuses.
"""

if __name__ != "swarmcover.cli":
    raise ImportError(f"import swarmcover.cli, not {__name__} (after pip install -e .)")
