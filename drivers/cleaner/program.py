"""What a cleaning run is asked to do (:class:`CleaningProgram`) and what it did
(:class:`CleaningReport`).

Ranges come from bath manuals (research/device-anchors.md §5): cleaning at 30-60 °C, degassing
for about 10 min on fresh liquid, under 10 min of ultrasound for light soil. The limits below
are wider (an hour) so a jeweller can run a heavy-soil program, but nothing unbounded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_PHASE_S = 3600.0
Phase = Literal["degas", "heat", "clean"]


class CleaningProgram(BaseModel):
    """One cleaning program: degas, then ``duration_s`` of ultrasound at ``target_temp_c``.

    ``target_temp_c=None`` cleans at whatever temperature the bath has. ``max_temp_c`` is the
    cutoff: above it the driver switches every relay off and the run fails.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(default="custom", min_length=1, max_length=64)
    degas_s: float = Field(default=0.0, ge=0.0, le=MAX_PHASE_S)
    duration_s: float = Field(gt=0.0, le=MAX_PHASE_S)
    target_temp_c: float | None = Field(default=None, ge=20.0, le=80.0)
    max_temp_c: float = Field(default=65.0, ge=25.0, le=90.0)
    heat_timeout_s: float = Field(default=1800.0, gt=0.0, le=MAX_PHASE_S)

    @model_validator(mode="after")
    def _target_below_cutoff(self) -> Self:
        # A target at or above the cutoff would trip the cutoff on every successful run.
        if self.target_temp_c is not None and self.target_temp_c >= self.max_temp_c:
            raise ValueError(
                f"target_temp_c {self.target_temp_c} must be below max_temp_c {self.max_temp_c}"
            )
        return self


@dataclass(frozen=True, slots=True)
class CleaningProgress:
    """A snapshot handed to the ``progress`` callback at every temperature poll."""

    phase: Phase
    elapsed_s: float
    phase_remaining_s: float
    temperature_c: float


ProgressCallback = Callable[[CleaningProgress], None]


@dataclass(frozen=True, slots=True)
class CleaningReport:
    """What a run did. ``aborted`` says why it ended early (``None``: it ran to the end)."""

    program: str
    start_temp_c: float
    end_temp_c: float
    max_temp_c: float
    duration_s: float
    ultrasound_s: float
    target_reached: bool
    aborted: str | None = None
