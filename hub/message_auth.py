"""The hub's side of message authentication: verify what stations send, sign what it sends.

The key is always the one of the station NAMED IN THE TOPIC (the broker's ACL already confines
a station's username to its own namespace: this is the second line). Its generation comes from
``station_enrollments`` (hub/enrollment.py), cached for ``CACHE_S`` so a revocation made by the
CLI in another process takes effect within that time without a query per message.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.enrollment import KeyState, key_state
from hub.settings import HubSettings
from protocol import auth, topics
from protocol.codec import Rejection

CACHE_S = 2.0
BAD_SIGNATURE = "bad or missing signature"


class StationKeys:
    """Keys of the stations, derived from the master secret; generations from the database."""

    def __init__(self, settings: HubSettings, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._master = settings.station_key_secret.get_secret_value().encode()
        self.required = settings.station_auth == "required"
        self._sessions = sessions
        self._states: dict[str, tuple[float, KeyState]] = {}

    async def state(self, station_id: str) -> KeyState:
        """The station's key generation (cached for :data:`CACHE_S`)."""
        now = time.monotonic()
        cached = self._states.get(station_id)
        if cached is not None and now - cached[0] < CACHE_S:
            return cached[1]
        async with self._sessions() as session:
            state = await key_state(session, station_id)
        self._states[station_id] = (now, state)
        return state

    def key(self, state: KeyState) -> bytes:
        return auth.station_key(self._master, state.station_id, state.generation)

    async def check(
        self, topic: str, payload: bytes, user_properties: Iterable[tuple[str, str]] | None
    ) -> Rejection | None:
        """None if the message may be applied; else the rejection to dead-letter."""
        if not self.required:
            return None
        try:
            station_id = topics.parse(topic).station_id
        except topics.TopicError:
            return None  # decode() rejects the topic with its own reason
        props = auth.read_properties(user_properties)
        state = await self.state(station_id)
        problem = _problem(state, props)
        if problem is None and not auth.verify(self.key(state), topic, payload, props.mac):
            problem = "the MAC does not match"
        if problem is None:
            return None
        reason = f"{BAD_SIGNATURE} for station {station_id}: {problem}"
        return Rejection(topic, payload, reason, station_id)

    async def properties(self, topic: str, payload: bytes) -> Properties | None:
        """PUBLISH properties that sign a message to the station named in ``topic``."""
        try:
            station_id = topics.parse(topic).station_id
        except topics.TopicError:
            return None  # the hub's own state goes to everyone: not signed with a station key
        state = await self.state(station_id)
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.UserProperty = auth.user_properties(self.key(state), state.generation, topic, payload)
        return props


def _problem(state: KeyState, props: auth.MacProperties) -> str | None:
    if state.revoked:
        return f"key generation {state.generation} is revoked"
    if props.mac is None:
        return "no bf-mac property"
    if props.generation != state.generation:
        return f"key generation {props.generation} is not the current {state.generation}"
    return None
