"""Ultrasonic cleaners: :class:`drivers.cleaner.base.UltrasonicCleaner` and its backends."""

BACKENDS: dict[str, str] = {
    "modbus": "drivers.cleaner.modbus:ModbusCleaner",
    "sim": "drivers.cleaner.sim:SimCleaner",
}
