"""Conformance suites for implementations of the wire protocol (``docs/protocol.md``).

``check_agent(command)`` starts an agent process by ``command`` (``{config}`` replaced by the
path of the agent config file the suite writes), plays its body over ZeroMQ on loopback, and
checks the wire format, the law's commands, ordering, malformed messages, lockstep sensing
rounds, stats, planned paths, the fail-safe and the goodbye. ``swarmcover conformance agent --
CMD ...`` runs it from the command line. Installed as ``swarmcover.testing`` (the folder
``testing/``); it needs pyzmq, like the agents.
"""

if __name__ != "swarmcover.testing":
    raise ImportError(f"import swarmcover.testing, not {__name__} (after pip install -e .)")

from .agent_suite import CHECKS, CheckResult, ConformanceReport, check_agent, suite_config

__all__ = ["CHECKS", "CheckResult", "ConformanceReport", "check_agent", "suite_config"]
