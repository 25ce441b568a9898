"""How a station executes one step of a job: a small table of executors by step kind, and the
technician sign-off.

An executor says which device it lacks (:meth:`StepExecutor.missing`) and runs the step,
returning the evidence it produced (:meth:`StepExecutor.execute`). Device families plug in by
adding an executor to the table given to :class:`agent.jobs.JobRunner`: engrave (laser),
photo (camera) and manual steps (a technician's hands, proven by a photo and a sign-off) here;
weigh (scale), clean (cleaner) and scan (camera + zxing-cpp) in :mod:`agent.executors`. Who
acknowledges, readies, fires and signs is the runner's :class:`~agent.operator.Operator`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar
from uuid import UUID

from agent.operator import AutoOperator
from protocol.models import Evidence, JobAssignment, StepKind, StepSpec

if TYPE_CHECKING:
    from agent.devices import DeviceManager
    from agent.proofs import ProofUploader

T = TypeVar("T")


class StepError(Exception):
    """A step cannot be done (not a device fault): the job fails with this message."""


class Persist(Protocol):
    """Stores evidence ``write()`` however long a full disk takes (agent.persist)."""

    async def __call__(self, what: str, write: Callable[[], T], /) -> T: ...


async def write_now(what: str, write: Callable[[], T], /) -> T:
    """:class:`Persist` without holding: the write's errors are raised (tests, tools)."""
    return write()


@dataclass(frozen=True, slots=True)
class StepContext:
    """What an executor may use: the job, the station's devices, where proofs go."""

    job_id: UUID
    assignment: JobAssignment
    devices: DeviceManager
    proofs_dir: Path
    upload: ProofUploader | None = None  # sends kept proofs to the hub (None: keep them here)
    persist: Persist = write_now  # the runner's: a full disk holds the proof, never drops it


class StepExecutor(Protocol):
    """Runs one kind of step."""

    def missing(self, step: StepSpec, devices: DeviceManager) -> str | None:
        """The device family this station lacks for ``step``, or None."""

    def refusal(self, step: StepSpec, ctx: StepContext) -> str | None:
        """Why this station would refuse ``step`` before touching the piece, or None
        (checked before the job's start gate, so a refusal blocks instead of failing)."""

    async def execute(self, step: StepSpec, ctx: StepContext) -> list[Evidence]:
        """Do the step; return its evidence. Device faults raise ``drivers.errors.DeviceError``."""


def keep_proof(image: bytes, proofs_dir: Path) -> str:
    """Store a photo content-addressed under ``proofs_dir`` (fsync'd); return its SHA-256."""
    digest = hashlib.sha256(image).hexdigest()
    proofs_dir.mkdir(parents=True, exist_ok=True)
    partial = proofs_dir / f"{digest}.png.part"
    with partial.open("wb") as file:
        file.write(image)
        file.flush()
        os.fsync(file.fileno())
    partial.replace(proofs_dir / f"{digest}.png")
    return digest


async def take_proof_photo(step: StepSpec, ctx: StepContext) -> tuple[bytes, Evidence]:
    """Photograph with the station's camera, keep the proof; the image and its evidence."""
    camera = ctx.devices.camera
    if camera is None:
        raise StepError(f"step {step.name}: no camera on this station")
    with ctx.devices.using(camera):
        image = await camera.capture()
    what = f"job {ctx.job_id} proof photo of step {step.name}"
    digest = await ctx.persist(what, lambda: keep_proof(image, ctx.proofs_dir))
    if (upload := ctx.upload) is not None:  # a retry after a full disk queues what is missing
        await ctx.persist(
            f"{what} (upload)",
            lambda: upload.upload(image, sha256=digest, job_id=ctx.job_id, step=step.name),
        )
    return image, Evidence(step=step.name, kind="photo", sha256=digest)


async def _photo(step: StepSpec, ctx: StepContext) -> Evidence:
    return (await take_proof_photo(step, ctx))[1]


class EngraveExecutor:
    """The laser engraves the assignment's text on its item template in its font (the hub
    checked length and glyphs; the laser's own layout check runs before the start gate)."""

    def missing(self, step: StepSpec, devices: DeviceManager) -> str | None:
        return "laser" if devices.laser is None else None

    def refusal(self, step: StepSpec, ctx: StepContext) -> str | None:
        laser, engraving = ctx.devices.laser, ctx.assignment.engraving
        if laser is None or engraving is None:
            return f"step {step.name}: nothing to engrave" if laser else None
        try:
            laser.layout(engraving.text, template=engraving.template, font=engraving.font)
        except (ValueError, KeyError) as err:
            reason = getattr(err, "reason", type(err).__name__)  # never the text itself
            return f"laser cannot lay out the text ({reason})"
        return None

    async def execute(self, step: StepSpec, ctx: StepContext) -> list[Evidence]:
        laser, engraving = ctx.devices.laser, ctx.assignment.engraving
        if laser is None:
            raise StepError(f"step {step.name}: no laser on this station")
        if engraving is None:
            raise StepError(f"step {step.name}: the assignment has no engraving")
        with ctx.devices.using(laser):
            report = await laser.engrave(
                engraving.text, template=engraving.template, font=engraving.font
            )
        return [Evidence(step=step.name, kind="gcode", sha256=report.gcode_sha256)]


class PhotoExecutor:
    """The camera takes the proof photo."""

    def missing(self, step: StepSpec, devices: DeviceManager) -> str | None:
        return "camera" if devices.camera is None else None

    def refusal(self, step: StepSpec, ctx: StepContext) -> str | None:
        return None

    async def execute(self, step: StepSpec, ctx: StepContext) -> list[Evidence]:
        return [await _photo(step, ctx)]


class ManualExecutor:
    """A technician's step (packing, hand cleaning, rework): a photo if the step asks for one;
    the sign-off (required for these steps) comes from the runner's operator."""

    def missing(self, step: StepSpec, devices: DeviceManager) -> str | None:
        return "camera" if "photo" in step.evidence and devices.camera is None else None

    def refusal(self, step: StepSpec, ctx: StepContext) -> str | None:
        return None

    async def execute(self, step: StepSpec, ctx: StepContext) -> list[Evidence]:
        return [await _photo(step, ctx)] if "photo" in step.evidence else []


ExecutorTable = dict[StepKind, StepExecutor]


def default_executors() -> ExecutorTable:
    """One executor per step kind, for every device family with a driver."""
    from agent.executors import CleanExecutor, ScanExecutor, WeighExecutor

    return {
        StepKind.ENGRAVE: EngraveExecutor(),
        StepKind.PHOTO: PhotoExecutor(),
        StepKind.MANUAL: ManualExecutor(),
        StepKind.WEIGH: WeighExecutor(),
        StepKind.CLEAN: CleanExecutor(),
        StepKind.SCAN: ScanExecutor(),
    }


class AutoSignoff(AutoOperator):
    """Signs every step off at once as ``auto:<station>`` (the :class:`AutoOperator` of
    ``auto_signoff = true``): for demo and test floors only; the dossier shows that no person
    signed. The station screen's technicians sign through :class:`agent.operator.ScreenOperator`.
    """

    def __init__(self, station_id: str) -> None:
        super().__init__(station_id, signs=True)
