"""The station's MQTT link: presence (birth, death, Will), outbox delivery, down dispatch.

One aiomqtt client per connection (the Will carries that connection's ``bd_seq``), driven by a
TaskGroup with named tasks; a lost connection is retried with jittered exponential backoff.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
import time
from collections.abc import Callable
from typing import Protocol
from uuid import UUID

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent import __version__
from agent.context import AgentContext
from agent.denials import connect_refusal, watch_pubacks
from agent.disk import is_disk_full
from agent.events import emit_event
from agent.message_auth import MessageAuth
from agent.outbox import PRIORITY
from protocol import Rejection, codec, encode, topics
from protocol.aio import raise_if_cancelling, wait_event
from protocol.models import (
    Ack,
    AlarmNotice,
    Birth,
    Command,
    Death,
    HubState,
    JobAssignment,
    Severity,
    VerificationNotice,
)

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 3600
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 30.0
REFUSED_BACKOFF_S = 5.0  # refused credentials do not fix themselves: never retry hot
PUBACK_TIMEOUT_S = 10.0
IDLE_WAKE_S = 0.5  # re-check the outbox at least this often (resend timers)
NOT_STORED_LOG_S = 60.0  # a hub message a full disk refused: logged once a minute at most
TELEMETRY = PRIORITY[topics.Up.TELEMETRY]


class DownHandler(Protocol):
    """Who acts on what the hub sends (the job runner)."""

    def on_assignment(self, assignment: JobAssignment) -> None: ...

    def on_command(self, command: Command) -> None: ...

    def on_alarm(self, notice: AlarmNotice) -> None: ...

    def on_verification(self, notice: VerificationNotice) -> None: ...


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
        self.dead_letter_count = 0
        config = ctx.config
        self._auth = MessageAuth(
            config.message_key(), ctx.db, window_s=config.assignment_replay_window_s
        )
        if not self._auth.enabled:
            log.warning(
                "link %s: no key_file: messages are neither signed nor checked", self._station
            )
        self._denied_topics: set[str] = set()  # broker_denied reported once per topic a session
        self._not_stored_at = -NOT_STORED_LOG_S  # when a dropped message was last logged

    @property
    def connected(self) -> bool:
        return self._ctx.link.connected

    @property
    def hub_online(self) -> bool | None:
        return self._ctx.link.hub_online

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
            if (code := connect_refusal(failure)) is not None:
                delay = max(delay, REFUSED_BACKOFF_S)
                self._ctx.link.connect_refused += 1
                log.error(
                    "link %s: the broker %s refused station %s (reason 0x%02X, %s): check the "
                    "station's broker credentials; retrying in %.1f s",
                    self._station, self._ctx.config.broker, self._station, code,
                    failure, delay,
                )  # fmt: skip
            else:
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
        will_topic, death = topics.up(self._station, topics.Up.DEATH), self._death()
        will_props = self._auth.properties(will_topic, death, PacketTypes.WILLMESSAGE)
        will = aiomqtt.Will(will_topic, death, qos=1, properties=will_props)
        connect_props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        connect_props.SessionExpiryInterval = SESSION_EXPIRY_S
        client = aiomqtt.Client(
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
        self._denied_topics.clear()
        watch_pubacks(client, self._on_denied)
        return client

    def _on_denied(self, topic: str, code: int, reason: str) -> None:
        """A PUBACK said no: log and count every one, report each topic once a session."""
        self._ctx.link.broker_denied += 1
        log.error(
            "link %s: broker refused publish to %s: 0x%02X %s", self._station, topic, code, reason
        )
        if topic in self._denied_topics:
            return
        self._denied_topics.add(topic)
        emit_event(
            self._ctx.outbox,
            station_id=self._station,
            kind="broker_denied",
            severity=Severity.MAJOR,
            message=f"broker refused publish to {topic}: 0x{code:02X} {reason}",
        )

    async def _publish(self, client: aiomqtt.Client, topic: str, payload: bytes) -> None:
        """Publish QoS 1, signed with the station's key."""
        properties = self._auth.properties(topic, payload)
        await client.publish(topic, payload, qos=1, properties=properties)

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
                self._ctx.link.connected = False

    async def _open(self, client: aiomqtt.Client) -> None:
        await client.subscribe(topics.down_filter(self._station), qos=1)
        await client.subscribe(topics.HUB_STATE, qos=1)
        self._ctx.link.connected = True
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
        await self._publish(client, topics.up(self._station, topics.Up.DEATH), self._death())
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
        await self._publish(client, topics.up(self._station, topics.Up.BIRTH), encode(birth))

    # ---- delivery -----------------------------------------------------------------------------

    async def _deliver(self, client: aiomqtt.Client) -> None:
        outbox, pace = self._ctx.outbox, Pace(self._ctx.config.backfill_batches_per_s)
        while True:
            # A cancellation swallowed inside an await (Python 3.11's wait_for, also inside
            # libraries): honour it, or the session's TaskGroup - and the stop - waits forever.
            raise_if_cancelling()
            outbox.changed.clear()
            due = outbox.due(time.time(), self._ctx.config.inflight_window)
            for entry in due:  # by priority: job updates, then events, then telemetry
                if entry.priority == TELEMETRY and not pace.take():
                    self._ctx.link.paced += 1
                    break  # the backlog waits; a job update enqueued meanwhile does not
                # aiomqtt waits for the PUBACK (MqttError on timeout: the session restarts).
                await self._publish(client, entry.topic, entry.payload)
                outbox.mark_sent(entry.id, time.time())
                self._ctx.link.published += 1
            else:
                if not due:
                    await wait_event(outbox.changed, IDLE_WAKE_S)
                continue
            await wait_event(outbox.changed, pace.wait_s())

    # ---- receiving ----------------------------------------------------------------------------

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else b""
            topic = message.topic.value
            if topic == topics.HUB_STATE:  # to every station: not signed with a station key
                await self._on_hub_state(client, codec.decode_hub_state(payload))
                continue
            user_properties = getattr(message.properties, "UserProperty", None)
            problem = self._auth.signature_problem(topic, payload, user_properties)
            try:
                if problem is None:
                    await self._dispatch(client, topic, payload)
                else:
                    self._refuse(topic, payload, f"bad or missing signature: {problem}")
            except sqlite3.OperationalError as err:
                if not is_disk_full(err):
                    raise
                self._not_stored(topic, err)

    def _not_stored(self, topic: str, err: sqlite3.Error) -> None:
        """A full data disk refused what a hub message changes: it is dropped, not acted on,
        and the agent goes on; the hub sends what matters again (an assignment until it is
        acknowledged, an Ack for every re-sent message). Said once a minute at most: the hub
        re-sends an assignment every few seconds."""
        now = time.monotonic()
        loud = now - self._not_stored_at >= NOT_STORED_LOG_S
        if loud:
            self._not_stored_at = now
        level = logging.ERROR if loud else logging.DEBUG
        log.log(level, "link %s: message on %s dropped: %s", self._station, topic, err)

    def _refuse(self, topic: str, payload: bytes, reason: str, job_id: UUID | None = None) -> None:
        """A hub message that is not authentic or a replay: nothing acts on it (an unsigned
        Ack is ignored too: the outbox re-sends and the hub answers again)."""
        self._ctx.link.assignments_refused += 1
        self._dead_letter(Rejection(topic, payload, reason))
        if topic.endswith(f"/{topics.Down.JOB.value}"):
            emit_event(
                self._ctx.outbox,
                station_id=self._station,
                kind="assignment_refused",
                severity=Severity.MAJOR,
                message=f"assignment refused before any device moved: {reason}",
                job_id=job_id,
            )

    async def _on_hub_state(self, client: aiomqtt.Client, state: HubState | Rejection) -> None:
        if isinstance(state, Rejection):
            self._dead_letter(state)
            return
        was_online, self._ctx.link.hub_online = self.hub_online, state.online
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
            if (replay := self._auth.replay_problem(message)) is not None:
                self._refuse(topic, payload, f"replayed assignment: {replay}", message.job_id)
                return
            self._auth.accepted(message)
            self._handler.on_assignment(message)
        elif isinstance(message, AlarmNotice):
            self._handler.on_alarm(message)
        elif isinstance(message, VerificationNotice):  # for the station screen
            self._handler.on_verification(message)
        elif isinstance(message, Command) and message.kind in ("rebirth", "resync"):
            if message.kind == "resync":  # the hub saw a gap: everything unacknowledged again
                self._ctx.outbox.resend_all_now()
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


class Pace:
    """A token bucket: at most ``per_s`` telemetry publications a second, with a burst of one
    second's worth. Live telemetry (one batch every few seconds) never waits; a backlog after
    an outage drains at this pace, so the hub is not flooded and job updates stay first."""

    def __init__(self, per_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_s, self._clock = per_s, clock
        self.burst = max(1.0, per_s)
        self._tokens = self.burst
        self._at = clock()

    def take(self) -> bool:
        """Spend a token if there is one."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.per_s)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    def wait_s(self) -> float:
        """How long until the next token."""
        return max(0.0, (1 - self._tokens) / self.per_s)


def create(ctx: AgentContext, handler: DownHandler) -> StationLink:
    """Component factory."""
    return StationLink(ctx, handler)
