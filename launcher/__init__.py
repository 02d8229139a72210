"""The launcher: scenario files, agent processes, supervision and the run report.

Installed as ``swarmcover.launcher``: ``pyproject.toml`` maps the folder ``launcher/`` there. Imported
under another name (the bare ``launcher`` from a checkout) it would be a second copy of every module, so
it refuses.
"""

if __name__ != "swarmcover.launcher":
    raise ImportError(f"import swarmcover.launcher, not {__name__} (after pip install -e .)")
