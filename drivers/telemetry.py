"""Typed telemetry descriptions: what a device family can report, and checking a sample.

Each family base declares ``METRICS`` (a tuple of :class:`MetricSpec`) and an ``async def
sample()`` that returns ``{metric name: value}`` built from what the driver already knows or can
ask cheaply without disturbing a running job. A backend may leave out a metric it cannot know
right now (a camera's focus score before its first gated shot); it may never invent one.

Drivers know nothing of MQTT: the agent turns samples into protocol points.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal, Protocol

Scalar = float | int | bool | str
MetricKind = Literal["gauge", "state", "flag", "counter"]

# What a value of each kind may be: a gauge/counter is a number, a state a word, a flag a bool.
_ACCEPTS: dict[str, tuple[type, ...]] = {
    "gauge": (int, float),
    "counter": (int,),
    "state": (str,),
    "flag": (bool,),
}


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One metric: ``name`` (unique within the family), ``unit`` ("" when none), ``kind``:

    ``gauge`` a measured number, ``counter`` a non-negative integer that only grows (until the
    driver restarts), ``state`` a word from a small set, ``flag`` true or false.
    """

    name: str
    unit: str
    kind: MetricKind
    description: str

    def accepts(self, value: Scalar) -> bool:
        """True when ``value`` has the type this kind allows (a bool is no number here)."""
        if isinstance(value, bool) and self.kind != "flag":
            return False
        if not isinstance(value, _ACCEPTS[self.kind]):
            return False
        return not (self.kind == "counter" and isinstance(value, int) and value < 0)


class Sampled(Protocol):
    """What the agent's sampler needs from a device."""

    METRICS: ClassVar[tuple[MetricSpec, ...]]

    async def sample(self) -> dict[str, Scalar]: ...


class BadSampleError(ValueError):
    """A driver returned a metric it does not declare, or a value of the wrong type."""


def check_sample(specs: tuple[MetricSpec, ...], values: Mapping[str, Scalar]) -> None:
    """Raise :class:`BadSampleError` naming every metric that is undeclared or mistyped."""
    by_name = {spec.name: spec for spec in specs}
    problems = [
        f"{name}: not declared" if name not in by_name else f"{name}: {value!r} is no {kind}"
        for name, value in values.items()
        if name not in by_name or not by_name[name].accepts(value)
        for kind in [by_name[name].kind if name in by_name else ""]
    ]
    if problems:
        raise BadSampleError("; ".join(problems))
