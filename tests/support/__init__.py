"""Test support shared by the suites (importable because pytest's pythonpath holds tests/)."""
