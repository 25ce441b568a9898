"""What every component gets from the composition root: typed handles, no string lookups.

A component module exposes ``create(ctx, ...) -> Component``; a :class:`Component` runs until
asked to stop. Moonraker's ``load_component(config)`` shape, with typed seams instead of its
``lookup_component("name") -> Any``.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from agent.config import StationConfig
    from agent.devices import DeviceManager
    from agent.outbox import Outbox


class Component(Protocol):
    """A long-running part of the agent."""

    async def run(self) -> None:
        """Work until :meth:`stop` is called (or the task is cancelled)."""

    async def stop(self) -> None:
        """Ask :meth:`run` to finish its work and return."""


@dataclass(frozen=True, slots=True)
class AgentContext:
    """The resources shared by every component of one agent process."""

    config: StationConfig
    db: sqlite3.Connection
    outbox: Outbox
    devices: DeviceManager
