"""The simulator: world, radio, dropouts, rendering and recording (built on the wire protocol).

Installed as ``swarmcover.simulator``: ``pyproject.toml`` maps the folder ``simulator/`` there. Imported
under another name (the bare ``simulator`` from a checkout) it would be a second copy of every module, so
it refuses.
"""

if __name__ != "swarmcover.simulator":
    raise ImportError(f"import swarmcover.simulator, not {__name__} (after pip install -e .)")
