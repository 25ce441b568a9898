"""Executors for the scale, the cleaner and the certificate scan (the table is in
:func:`agent.steps.default_executors`).

Each returns the step's evidence and leaves every judgement to the hub: the weight is a
measurement, the scanned code is what the camera read — whether it matches the certificate is
decided where the order is known.
"""

from __future__ import annotations

import logging

from agent.devices import DeviceManager
from agent.steps import StepContext, StepError, take_proof_photo
from drivers.camera.barcode import read_codes
from drivers.cleaner.base import UltrasonicCleaner
from drivers.scale.base import Scale
from protocol.models import Evidence, StepSpec

log = logging.getLogger(__name__)

STABLE_WITHIN_S = 20.0
DEFAULT_PROGRAM = "light-soil"


class WeighExecutor:
    """A stable reading from the scale, in grams (only stable readings count)."""

    def missing(self, step: StepSpec, devices: DeviceManager) -> str | None:
        return "scale" if devices.get(Scale) is None else None

    def refusal(self, step: StepSpec, ctx: StepContext) -> str | None:
        return None

    async def execute(self, step: StepSpec, ctx: StepContext) -> list[Evidence]:
        scale = ctx.devices.get(Scale)
        if scale is None:
            raise StepError(f"step {step.name}: no scale on this station")
        with ctx.devices.using(scale):
            weight = await scale.read_stable(within=STABLE_WITHIN_S)
        return [Evidence(step=step.name, kind="weight", value=float(weight.grams), unit="g")]


class CleanExecutor:
    """The ultrasonic cleaner runs the program the step names (or the station's default);
    the driver enforces the over-temperature cutoff and switches everything off at the end."""

    def missing(self, step: StepSpec, devices: DeviceManager) -> str | None:
        return "cleaner" if devices.get(UltrasonicCleaner) is None else None

    def refusal(self, step: StepSpec, ctx: StepContext) -> str | None:
        cleaner = ctx.devices.get(UltrasonicCleaner)
        if cleaner is None:
            return None  # missing() already says so
        try:
            cleaner.program(self._program_name(step, cleaner))
        except KeyError as err:
            return f"step {step.name}: {err.args[0]}"
        return None

    async def execute(self, step: StepSpec, ctx: StepContext) -> list[Evidence]:
        cleaner = ctx.devices.get(UltrasonicCleaner)
        if cleaner is None:
            raise StepError(f"step {step.name}: no cleaner on this station")
        program = cleaner.program(self._program_name(step, cleaner))
        with ctx.devices.using(cleaner):
            report = await cleaner.run_program(program)
        log.info(
            "job %s: cleaned with %s in %.0f s, max %.1f °C",
            ctx.job_id,
            program.name,
            report.duration_s,
            report.max_temp_c,
        )
        return []

    @staticmethod
    def _program_name(step: StepSpec, cleaner: UltrasonicCleaner) -> str:
        return str(step.params.get("program") or cleaner.options.get("program", DEFAULT_PROGRAM))


class ScanExecutor:
    """The camera reads the certificate's code (DataMatrix, QR, Code 128 ...); the photo is
    kept as a proof and the decoded text travels as the scan evidence."""

    def missing(self, step: StepSpec, devices: DeviceManager) -> str | None:
        return "camera" if devices.camera is None else None

    def refusal(self, step: StepSpec, ctx: StepContext) -> str | None:
        return None

    async def execute(self, step: StepSpec, ctx: StepContext) -> list[Evidence]:
        image, photo = await take_proof_photo(step, ctx)
        codes = read_codes(image)
        if not codes:
            raise StepError(f"step {step.name}: no readable code in photo {photo.sha256}")
        return [photo, Evidence(step=step.name, kind="scan", code=codes[0].text[:64])]
