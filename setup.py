"""The optional C extension (everything else is in pyproject.toml).

``swarmcover._hotpath`` is an agent's hot path in C: its law and its usual command from the
neighbour table in one call, the check of relayed beacon rows, the neighbour table's usual tick
and the nearest and farthest neighbour's distance (see the file's header). It is optional: an
install without a C compiler builds without it, and the same calls then run their numpy twins.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("swarmcover._hotpath", ["swarmcover/_hotpath.c"], optional=True)])
