"""The station's MQTT link: presence (birth, death, Will), outbox delivery, down dispatch.

One aiomqtt client per connection (the Will carries that connection's ``bd_seq``), driven by a
TaskGroup with named tasks; a lost connection is retried with jittered exponential backoff.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Protocol

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent import __version__
from agent.context import AgentContext
from protocol import Rejection, codec, encode, topics
from protocol.models import Ack, Birth, Command, Death, HubState, JobAssignment

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 3600
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 30.0
PUBACK_TIMEOUT_S = 10.0
IDLE_WAKE_S = 0.5  # re-check the outbox at least this often (resend timers)


class DownHandler(Protocol):
    """Who acts on what the hub sends (the job runner)."""

    def on_assignment(self, assignment: JobAssignment) -> None: ...

    def on_command(self, command: Command) -> None: ...


class _StopSession(Exception):
    """Raised inside the session's TaskGroup to end it on purpose."""


class StationLink:
    """Keeps the station connected and its outbox flowing; see the module docstring."""

    def __init__(self, ctx: AgentContext, handler: DownHandler) -> None:
        self._ctx = ctx
        self._station = ctx.config.station_id
        self._handler = handler
        self._stopping = asyncio.Event()
        self._bd_seq = 0
        self.connected = False
        self.hub_online: bool | None = None
        self.dead_letter_count = 0

    # ---- life cycle ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, serve, reconnect until :meth:`stop`."""
        attempt = 0
        while not self._stopping.is_set():
            failure = await self._session_failure()
            if failure is None:
                attempt = 0
                continue
            delay = random.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt))
            attempt += 1
            log.warning("link %s: %s; reconnecting in %.2f s", self._station, failure, delay)
            await self._sleep_unless_stopping(delay)

    async def _session_failure(self) -> aiomqtt.MqttError | None:
        """Run one session; the MQTT error that ended it, or None if it ended cleanly."""
        failure: aiomqtt.MqttError | None = None
        try:
            await self._session()
        except* aiomqtt.MqttError as group:
            failure = group.exceptions[0]  # type: ignore[assignment]
        return failure

    async def stop(self) -> None:
        """Publish our own Death and disconnect; :meth:`run` returns after this."""
        self._stopping.set()

    async def _sleep_unless_stopping(self, delay: float) -> None:
        await wait_event(self._stopping, delay)

    def _new_client(self) -> aiomqtt.Client:
        self._bd_seq = self._ctx.outbox.next_bd_seq()
        broker = self._ctx.config.broker
        will = aiomqtt.Will(topics.up(self._station, topics.Up.DEATH), self._death(), qos=1)
        connect_props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        connect_props.SessionExpiryInterval = SESSION_EXPIRY_S
        return aiomqtt.Client(
            broker.host,
            broker.port,
            username=broker.username,
            password=broker.password,
            identifier=self._station,
            protocol=aiomqtt.ProtocolVersion.V5,
            will=will,
            clean_start=False,
            properties=connect_props,
            keepalive=self._ctx.config.keepalive_s,
            timeout=PUBACK_TIMEOUT_S,
            tls_params=aiomqtt.TLSParameters() if broker.tls else None,
        )

    async def _session(self) -> None:
        client = self._new_client()
        async with client:
            try:
                await self._open(client)
                async with asyncio.TaskGroup() as tg:
                    name = f"link[{self._station}]"
                    tg.create_task(self._receive(client), name=f"{name}.receive")
                    tg.create_task(self._deliver(client), name=f"{name}.deliver")
                    tg.create_task(self._await_stop(client), name=f"{name}.stop")
            except* _StopSession:
                log.info("link %s: disconnecting after Death", self._station)
            finally:
                self.connected = False

    async def _open(self, client: aiomqtt.Client) -> None:
        await client.subscribe(topics.down_filter(self._station), qos=1)
        await client.subscribe(topics.HUB_STATE, qos=1)
        self.connected = True
        self._ctx.outbox.resend_all_now()  # whatever was in flight may be lost with the link
        await self._publish_birth(client)
        log.info(
            "link %s: connected to %s (bd_seq %d)",
            self._station,
            self._ctx.config.broker,
            self._bd_seq,
        )

    async def _await_stop(self, client: aiomqtt.Client) -> None:
        await self._stopping.wait()
        await client.publish(topics.up(self._station, topics.Up.DEATH), self._death(), qos=1)
        raise _StopSession

    # ---- presence -----------------------------------------------------------------------------

    def _death(self) -> bytes:
        return encode(
            Death(station_id=self._station, bd_seq=self._bd_seq, epoch=self._ctx.outbox.epoch)
        )

    async def _publish_birth(self, client: aiomqtt.Client) -> None:
        birth = Birth(
            station_id=self._station,
            bd_seq=self._bd_seq,
            epoch=self._ctx.outbox.epoch,
            agent_version=__version__,
            devices=self._ctx.devices.infos(),
        )
        await client.publish(topics.up(self._station, topics.Up.BIRTH), encode(birth), qos=1)

    # ---- delivery -----------------------------------------------------------------------------

    async def _deliver(self, client: aiomqtt.Client) -> None:
        outbox = self._ctx.outbox
        while True:
            outbox.changed.clear()
            due = outbox.due(time.time(), self._ctx.config.inflight_window)
            for entry in due:
                # aiomqtt waits for the PUBACK (MqttError on timeout: the session restarts).
                await client.publish(entry.topic, entry.payload, qos=1)
                outbox.mark_sent(entry.id, time.time())
            if not due:
                await wait_event(outbox.changed, IDLE_WAKE_S)

    # ---- receiving ----------------------------------------------------------------------------

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else b""
            topic = message.topic.value
            if topic == topics.HUB_STATE:
                await self._on_hub_state(client, codec.decode_hub_state(payload))
            else:
                await self._dispatch(client, topic, payload)

    async def _on_hub_state(self, client: aiomqtt.Client, state: HubState | Rejection) -> None:
        if isinstance(state, Rejection):
            self._dead_letter(state)
            return
        was_online, self.hub_online = self.hub_online, state.online
        status = "online" if state.online else "offline"
        log.info("link %s: hub %s is %s", self._station, state.hub_id, status)
        if state.online and not was_online:
            # A restarted hub forgot who is present: announce ourselves again (Sparkplug).
            await self._publish_birth(client)
            self._ctx.outbox.resend_all_now()

    async def _dispatch(self, client: aiomqtt.Client, topic: str, payload: bytes) -> None:
        decoded = codec.decode(topic, payload)
        if isinstance(decoded, Rejection):
            self._dead_letter(decoded)
            return
        message = decoded.message
        if isinstance(message, Ack):
            if not self._ctx.outbox.ack(message):
                log.debug("link %s: Ack for unknown %s", self._station, message.seq)
        elif isinstance(message, JobAssignment):
            self._handler.on_assignment(message)
        elif isinstance(message, Command) and message.kind == "rebirth":
            await self._publish_birth(client)
        elif isinstance(message, Command):
            self._handler.on_command(message)
        else:
            self._dead_letter(Rejection(topic, payload, f"unexpected {type(message).__name__}"))

    def _dead_letter(self, rejection: Rejection) -> None:
        self.dead_letter_count += 1
        log.warning(
            "link %s: dead letter on %s: %s", self._station, rejection.topic, rejection.reason
        )
        db = self._ctx.db
        with db:
            db.execute(
                "INSERT INTO dead_letters (received_at, topic, payload, reason) "
                "VALUES (?, ?, ?, ?)",
                (time.time(), rejection.topic, rejection.payload, rejection.reason),
            )


async def wait_event(event: asyncio.Event, seconds: float) -> bool:
    """Wait for ``event`` at most ``seconds``; True if it was set."""
    try:
        await asyncio.wait_for(event.wait(), seconds)
    except TimeoutError:
        return False
    return True


def create(ctx: AgentContext, handler: DownHandler) -> StationLink:
    """Component factory."""
    return StationLink(ctx, handler)
