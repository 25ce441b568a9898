"""Alarm rules as data (hub/data/alarm_rules.toml): telemetry thresholds and event clears.

A :class:`Rule` compares one metric of one device family with a limit. The condition must hold
for ``for_s`` seconds, measured by the points' own timestamps (so a backfilled outage is judged
by when things happened, not when they arrived), and a numeric alarm clears only once the value
is ``hysteresis`` back past the limit, so a value hovering at the limit does not flap.

The "holding since" and "raised" marks of :class:`ThresholdTracker` live in this process:
a hub restart starts the ``for_s`` clock again. The alarms themselves are rows in the database.
"""

from __future__ import annotations

import operator
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from protocol.models import Scalar, TelemetryPoint

DEFAULT_RULES_PATH = Path(__file__).parent / "data" / "alarm_rules.toml"
Comparison = Literal[">", ">=", "<", "<=", "==", "!="]
_NUMERIC: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


class RulesError(ValueError):
    """The rules file cannot be used; the message names the file and the problem."""


class Rule(BaseModel):
    """One threshold on one metric; see the module docstring and the TOML file's header."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")
    device: str = Field(min_length=1, max_length=64)
    metric: str = Field(min_length=1, max_length=64)
    op: Comparison
    limit: float | str
    for_s: float = Field(default=0.0, ge=0, le=86_400)
    severity: Literal["warning", "minor", "major", "critical"] = "major"
    hysteresis: float = Field(default=0.0, ge=0)
    message: str = Field(default="", max_length=200)

    @model_validator(mode="after")
    def _text_only_for_equality(self) -> Rule:
        if isinstance(self.limit, str) and self.op not in ("==", "!="):
            raise ValueError(f"rule {self.id}: a text limit needs == or !=, not {self.op}")
        return self

    def breached(self, value: Scalar) -> bool:
        """Does ``value`` meet the alarm condition? Values of the wrong type never do."""
        if isinstance(self.limit, str):
            if not isinstance(value, str):
                return False
            same = value.strip().lower() == self.limit.strip().lower()
            return same if self.op == "==" else not same
        if isinstance(value, str):
            return False
        return _NUMERIC[self.op](float(value), self.limit)

    def recovered(self, value: Scalar) -> bool:
        """Is ``value`` back far enough (past the hysteresis band) to clear the alarm?"""
        if self.breached(value):
            return False
        if isinstance(self.limit, str) or isinstance(value, str) or self.op in ("==", "!="):
            return True
        number = float(value)
        if self.op in (">", ">="):
            return number <= self.limit - self.hysteresis
        return number >= self.limit + self.hysteresis


class RuleSet(BaseModel):
    """Everything in one rules file."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    rules: tuple[Rule, ...] = Field(default=(), alias="rule")
    # event kind -> the alarm kinds it clears
    clears: Mapping[str, tuple[str, ...]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _unique_ids(self) -> RuleSet:
        ids = [rule.id for rule in self.rules]
        duplicated = sorted({i for i in ids if ids.count(i) > 1})
        if duplicated:
            raise ValueError(f"duplicated rule ids: {', '.join(duplicated)}")
        return self

    def matching(self, family: str, device: str, metric: str) -> list[Rule]:
        """Rules for ``metric`` of a device, addressed by its family or its own name."""
        return [r for r in self.rules if r.metric == metric and r.device in (family, device)]


def load_rules(path: Path = DEFAULT_RULES_PATH) -> RuleSet:
    """Read and check a rules file; :class:`RulesError` says what is wrong and where."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        return RuleSet.model_validate(raw)
    except OSError as err:
        raise RulesError(f"{path}: cannot read alarm rules: {err}") from err
    except tomllib.TOMLDecodeError as err:
        raise RulesError(f"{path}: not valid TOML: {err}") from err
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}" for e in err.errors()
        )
        raise RulesError(f"{path}: invalid alarm rules: {problems}") from err


@dataclass(frozen=True, slots=True)
class Decision:
    """What a threshold decided for one device: raise (or keep) its alarm, or clear it."""

    rule: Rule
    device: str
    raise_alarm: bool
    value: Scalar
    at: datetime


@dataclass
class ThresholdTracker:
    """Per (station, device, rule): since when the condition holds, whether we raised, and
    whether we know there is nothing to clear (after a restart we know neither, so the first
    recovered value asks the database once)."""

    holding_since: dict[tuple[str, str, str], datetime] = field(default_factory=dict)
    raised: set[tuple[str, str, str]] = field(default_factory=set)
    known_clear: set[tuple[str, str, str]] = field(default_factory=set)

    def evaluate(
        self,
        rules: RuleSet,
        station_id: str,
        points: Iterable[TelemetryPoint],
        families: Mapping[str, str],
    ) -> list[Decision]:
        """Feed ``points`` (any order) through the rules; the decisions that change something."""
        decisions: dict[tuple[str, str, str], Decision] = {}
        for point in sorted(points, key=lambda p: p.ts):
            family = families.get(point.device, point.device)
            for rule in rules.matching(family, point.device, point.metric):
                key = (station_id, point.device, rule.id)
                decision = self._step(key, rule, point)
                if decision is not None:
                    decisions[key] = decision
        return list(decisions.values())

    def forget(self, key: tuple[str, str, str]) -> None:
        """The alarm of ``key`` was cleared by hand: a new breach may raise it again."""
        self.holding_since.pop(key, None)
        self.raised.discard(key)
        self.known_clear.add(key)

    def _step(
        self, key: tuple[str, str, str], rule: Rule, point: TelemetryPoint
    ) -> Decision | None:
        if rule.breached(point.value):
            since = self.holding_since.setdefault(key, point.ts)
            held = (point.ts - since).total_seconds()
            if held >= rule.for_s and key not in self.raised:
                self.raised.add(key)
                self.known_clear.discard(key)
                return Decision(rule, point.device, True, point.value, point.ts)
            return None
        self.holding_since.pop(key, None)
        if key not in self.known_clear and rule.recovered(point.value):
            self.raised.discard(key)
            self.known_clear.add(key)
            return Decision(rule, point.device, False, point.value, point.ts)
        return None
