"""Benchmarks: ``python -m bench.<name>``; each prints a JSON summary as its last line."""
