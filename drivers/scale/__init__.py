"""Precision scales: :class:`drivers.scale.base.Scale` and its backends."""

BACKENDS: dict[str, str] = {
    "mtsics": "drivers.scale.mtsics:MtSicsScale",
    "continuous": "drivers.scale.continuous:ContinuousScale",
    "sim": "drivers.scale.sim:SimScale",
}
