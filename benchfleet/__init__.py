"""The composition root: the `benchfleet` CLI, the demo supervisor and the private broker.

This package may import `hub` and `agent` (lazily, per subcommand); nothing imports it back.
"""
