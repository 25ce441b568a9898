"""Cameras: :class:`drivers.camera.base.Camera` and its backends."""

BACKENDS: dict[str, str] = {
    "sim": "drivers.camera.sim:SimCamera",
    "opencv": "drivers.camera.opencv:OpenCvCamera",
}
