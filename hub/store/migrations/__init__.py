"""Alembic migrations of the hub store (a package so it ships in the wheel)."""
