"""The simulator: world, radio, dropouts, rendering and recording (built on the wire protocol)."""
