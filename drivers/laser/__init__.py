"""Laser engravers: :class:`drivers.laser.base.Laser` and its backends."""

BACKENDS: dict[str, str] = {
    "sim": "drivers.laser.sim:SimLaser",
}
