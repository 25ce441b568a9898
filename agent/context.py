"""What every component gets from the composition root: typed handles, no string lookups.

A component module exposes ``create(ctx, ...) -> Component``; a :class:`Component` runs until
asked to stop. Moonraker's ``load_component(config)`` shape, with typed seams instead of its
``lookup_component("name") -> Any``.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
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


@dataclass(slots=True)
class LinkState:
    """What the MQTT link tells the other components (written by the link only)."""

    connected: bool = False  # a session with the broker is up
    hub_online: bool | None = None  # the hub's retained state; None until heard
    published: int = 0  # outbox publications the broker acknowledged, re-sends included
    paced: int = 0  # times telemetry waited for the backfill pace
    broker_denied: int = 0  # PUBACKs with a failure reason code (e.g. 0x87 Not authorized)
    connect_refused: int = 0  # CONNACKs refusing us (bad credentials, not authorized)
    assignments_refused: int = 0  # hub messages refused: bad MAC or a replayed assignment

    @property
    def live(self) -> bool:
        """Messages reach the hub now: connected, and the hub not known to be offline."""
        return self.connected and self.hub_online is not False


@dataclass(frozen=True, slots=True)
class AgentContext:
    """The resources shared by every component of one agent process."""

    config: StationConfig
    db: sqlite3.Connection
    outbox: Outbox
    devices: DeviceManager
    link: LinkState = field(default_factory=LinkState)
