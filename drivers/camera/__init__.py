"""Cameras: :class:`drivers.camera.base.Camera` and its backends."""
