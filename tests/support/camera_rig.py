"""Camera test rigs: a fake ``cv2.VideoCapture`` so OpenCvCamera's logic runs without a device.

There is no /dev/video* in CI: the fake serves frames from the simulated bench and records
what the driver asked of it, so the flush, the property read-back and the focus gate are tested;
only the real V4L2 ioctls are not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from drivers.camera.scene import ShotConditions, load_scene, photograph


class FakeCapture:
    """Frames of the simulated bench; ``ignored`` properties read back their old value."""

    def __init__(
        self,
        scene_path: Path | None = None,
        shot: ShotConditions | None = None,
        *,
        ignored: frozenset[int] = frozenset(),
        opened: bool = True,
    ) -> None:
        self.scene_path = scene_path
        self.shot = shot or ShotConditions()
        self.ignored = ignored
        self.opened = opened
        self.props: dict[int, float] = {cv2.CAP_PROP_AUTO_EXPOSURE: 3.0}
        self.grabs = 0
        self.unplugged = False
        self.released = False

    def isOpened(self) -> bool:
        return self.opened

    def set(self, prop: int, value: float) -> bool:
        if prop not in self.ignored:
            self.props[prop] = value
        return True  # as many V4L2 drivers do, whether or not anything changed

    def get(self, prop: int) -> float:
        return self.props.get(prop, 0.0)

    def grab(self) -> bool:
        self.grabs += 1
        return not self.unplugged

    def retrieve(self) -> tuple[bool, Any]:
        frame: np.ndarray = photograph(load_scene(self.scene_path), self.shot, self.grabs)
        return True, frame

    def release(self) -> None:
        self.released = True
