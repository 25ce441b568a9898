"""Laser engravers: :class:`drivers.laser.base.Laser` and its backends.

``grbl`` drives a real controller at ``url``; ``sim`` is the same GRBL driver talking to an
in-process GRBL simulator on a pseudo-terminal, so demos and tests exercise the real protocol.
"""

BACKENDS: dict[str, str] = {
    "grbl": "drivers.laser.grbl.driver:GrblLaser",
    "sim": "drivers.laser.sim:SimLaser",
}
