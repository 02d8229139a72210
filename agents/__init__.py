"""Agent processes: one OS process per robot; they meet the simulator only on the wire.

Installed as ``swarmcover.agents``: ``pyproject.toml`` maps the folder ``agents/`` there. Imported
under another name (the bare ``agents`` from a checkout) it would be a second copy of every module, so
it refuses.
"""

if __name__ != "swarmcover.agents":
    raise ImportError(f"import swarmcover.agents, not {__name__} (after pip install -e .)")
