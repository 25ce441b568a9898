"""Laser engravers: :class:`drivers.laser.base.Laser` and its backends."""
