"""Agent processes: one OS process per robot (see issue: agent processes and the wire protocol)."""
