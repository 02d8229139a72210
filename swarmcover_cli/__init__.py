"""The ``swarmcover`` command line (on top of the core, the agents and the simulator)."""
