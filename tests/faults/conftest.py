"""The fault suite's `floor`: the integration suite's, from support.floor_fixtures."""

from __future__ import annotations

from support.floor_fixtures import floor

__all__ = ["floor"]  # a fixture: pytest finds it here by name
