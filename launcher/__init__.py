"""The launcher: scenario files, agent processes, supervision and the run report."""
