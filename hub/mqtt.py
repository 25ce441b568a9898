"""The hub's MQTT link: one persistent MQTT 5 session, in-order ingest, the sweeper.

Messages are processed one at a time, in arrival order, under one lock that the sweeper and
the API share: the database is the serialisation point, and replies go out (QoS 1) only after
the transaction that produced them committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import ssl
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import TypeVar

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub import dispatch
from hub.dispatch import Outgoing
from hub.ingest import dead_letter, handle_message
from hub.jobs import time_out_proofs
from hub.message_auth import StationKeys
from hub.metrics import PROCESSING_ERRORS
from hub.pii import PiiSweeper
from hub.proofs import ProofConfig, configure, expire_staged
from hub.settings import HubSettings
from hub.telemetry.sweep import TelemetrySweeper
from hub.verification_runner import VerificationRunner
from protocol import topics
from protocol.aio import cancel_and_wait, raise_if_cancelling
from protocol.codec import encode
from protocol.models import HubState, Message, utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")

SESSION_EXPIRY_S = 86_400  # the broker keeps our subscription and queued messages for a day
RECONNECT_BASE_S = 0.5
RECONNECT_CAP_S = 30.0
OFFLINE_PUBLISH_TIMEOUT_S = 2.0


def reconnect_delay(attempt: int) -> float:
    """Full-jitter exponential backoff (aiomqtt docs): many hubs never retry in lockstep."""
    return random.uniform(0, min(RECONNECT_CAP_S, RECONNECT_BASE_S * 2**attempt))


def _as_bytes(payload: object) -> bytes:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    return b"" if payload is None else str(payload).encode()


class HubLink:
    """The hub's connection to the broker; :meth:`run` reconnects until cancelled."""

    def __init__(
        self,
        *,
        settings: HubSettings,
        sessions: async_sessionmaker[AsyncSession],
        started_at: datetime,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.started_at = started_at
        self.connected = False
        self._client: aiomqtt.Client | None = None
        self._attempt = 0
        self._db_lock = asyncio.Lock()
        self._publishing: set[asyncio.Task[int]] = set()
        self._task: asyncio.Task[None] | None = None
        self._telemetry = TelemetrySweeper(settings)
        self._pii = PiiSweeper(settings)  # log redaction of open orders' texts, expiry
        self.keys = StationKeys(settings, sessions)  # MACs both ways (protocol/auth.py)
        configure(ProofConfig.from_settings(settings))  # where ingest keeps proof photos
        # Engraving checks of jobs in verifying; the sweeper kicks it (also after a restart).
        self.verifier = VerificationRunner(
            settings=settings,
            sessions=sessions,
            serialised=self.serialised,
            publish=self.publish_later,
        )

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        """Run the link in the background (the app's lifespan calls this)."""
        self._task = asyncio.create_task(self.run(), name="hub-link")
        return self._task

    async def stop(self) -> None:
        """Say we go offline (retained), then disconnect cleanly so the broker drops our Will."""
        client = self._client  # set once the broker accepted us (``connected`` comes later)
        if client is not None:
            # asyncio.timeout, not wait_for: see protocol/aio.py (a swallowed cancel hangs stop).
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                async with asyncio.timeout(OFFLINE_PUBLISH_TIMEOUT_S):
                    await client.publish(
                        topics.HUB_STATE, self._state(online=False), qos=1, retain=True
                    )
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
        await self.verifier.close()

    async def run(self) -> None:
        """Connect, serve, and reconnect with jittered backoff when the connection drops."""
        while True:
            try:
                await self._serve()
            except aiomqtt.MqttError as err:
                log.warning("MQTT connection to %s lost or refused: %s", self.settings.broker, err)
            delay = reconnect_delay(self._attempt)
            self._attempt += 1
            log.info("reconnecting in %.1f s", delay)
            await asyncio.sleep(delay)

    # ---- publishing --------------------------------------------------------------------------

    async def publish(self, topic: str, message: Message) -> None:
        """Publish ``message`` QoS 1; raises :class:`aiomqtt.MqttError` when not connected."""
        client = self._client
        if client is None or not self.connected:
            raise aiomqtt.MqttError("hub is not connected to the broker")
        payload = encode(message)
        properties = await self.keys.properties(topic, payload)
        await client.publish(topic, payload, qos=1, properties=properties)

    async def publish_many(self, outgoing: Iterable[Outgoing]) -> int:
        """Best effort: publish what we can; returns how many went out. Unsent assignments
        are re-sent by the sweeper and unsent acks by the station's outbox."""
        items = list(outgoing)
        # paho writes the packets in call order; only the PUBACK waits run concurrently, so
        # one slow round trip does not hold up the others.
        results = await asyncio.gather(
            *(self.publish(item.topic, item.message) for item in items), return_exceptions=True
        )
        sent = 0
        for item, result in zip(items, results, strict=True):
            if isinstance(result, aiomqtt.MqttError):
                log.warning("could not publish to %s: %s", item.topic, result)
            elif isinstance(result, BaseException):
                raise result
            else:
                sent += 1
        return sent

    def publish_later(self, outgoing: list[Outgoing]) -> None:
        """Publish in the background: the receive loop goes on to the next message while the
        broker acknowledges these (answers are committed already; order on the wire is kept)."""
        if not outgoing:
            return
        task = asyncio.create_task(self.publish_many(outgoing), name="hub-publish")
        self._publishing.add(task)
        task.add_done_callback(self._publishing.discard)

    async def assign_and_publish(self) -> int:
        """Assign queued jobs now (e.g. after a new order) and send the assignments."""

        async def work() -> list[Outgoing]:
            async with self.sessions.begin() as session:
                return await dispatch.assign_now(
                    session, now=utcnow(), max_open=self.settings.max_open_jobs_per_station
                )

        return await self.publish_many(await self.serialised(work))

    async def serialised(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run database work under the link's lock (one writer inside this process)."""
        async with self._db_lock:
            return await work()

    # ---- internals ---------------------------------------------------------------------------

    def _state(self, *, online: bool) -> bytes:
        return encode(HubState(hub_id=self.settings.hub_id, online=online, since=utcnow()))

    def _make_client(self) -> aiomqtt.Client:
        broker = self.settings.broker
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = SESSION_EXPIRY_S
        will = aiomqtt.Will(topics.HUB_STATE, self._state(online=False), qos=1, retain=True)
        return aiomqtt.Client(
            broker.host,
            broker.port,
            username=broker.username,
            password=broker.password,
            identifier=f"benchfleet-hub-{self.settings.hub_id}",
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=False,  # keep the session: messages queued while we were away arrive
            properties=properties,
            will=will,
            keepalive=self.settings.mqtt_keepalive_s,
            tls_context=ssl.create_default_context() if broker.tls else None,
        )

    async def _serve(self) -> None:
        async with self._make_client() as client:
            self._client, self._attempt = client, 0
            try:
                await client.publish(topics.HUB_STATE, self._state(online=True), qos=1, retain=True)
                await client.subscribe(topics.up_filter(), qos=1)
                # Only now: a station that publishes once /health says "connected" is heard (on
                # a first session the broker drops what arrives before our subscription).
                self.connected = True
                log.info("connected to %s as %s", self.settings.broker, self.settings.hub_id)
                await self._run_tasks(client)
            finally:
                self._client, self.connected = None, False

    async def _run_tasks(self, client: aiomqtt.Client) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._receive(client), name="hub-receive")
                group.create_task(self._sweep_forever(), name="hub-sweeper")
        except ExceptionGroup as errors:
            # A lost connection surfaces as an MqttError inside the group: unwrap it for run().
            lost, other = errors.split(aiomqtt.MqttError)
            if other is not None or lost is None:
                raise
            raise lost.exceptions[0] from errors

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            topic = message.topic.value
            payload = _as_bytes(message.payload)
            user_properties = getattr(message.properties, "UserProperty", None)
            work = functools.partial(self._ingest, topic, payload, user_properties)
            try:
                out = await self.serialised(work)
            except Exception:
                # Never the payload in logs; the station's outbox re-sends, the Ack never came.
                PROCESSING_ERRORS.inc()
                log.exception("processing a message on %s failed", topic)
                continue
            self.publish_later(out)

    async def _ingest(
        self, topic: str, payload: bytes, user_properties: list[tuple[str, str]] | None
    ) -> list[Outgoing]:
        # The MAC is checked before anything is decoded or applied: one place for every topic.
        refused = await self.keys.check(topic, payload, user_properties)
        if refused is not None:
            await dead_letter(self.sessions, rejection=refused, now=utcnow())
            return []
        return await handle_message(
            self.sessions,
            topic=topic,
            payload=payload,
            max_open=self.settings.max_open_jobs_per_station,
        )

    async def _sweep_forever(self) -> None:
        while True:
            # publish_many awaits aiomqtt's publish, whose wait_for can swallow our cancel.
            raise_if_cancelling()
            await asyncio.sleep(self.settings.sweep_interval_s)
            try:
                out = await self.serialised(self._sweep_once)
            except Exception:
                log.exception("sweep failed; next one in %.1f s", self.settings.sweep_interval_s)
                continue
            await self.publish_many(out)
            self.verifier.kick()

    async def _sweep_once(self) -> list[Outgoing]:
        now = utcnow()
        async with self.sessions.begin() as session:
            out = await dispatch.sweep(
                session, now=now, settings=self.settings, hub_started_at=self.started_at
            )
            out += await self._telemetry.run(session, now=now)  # gaps, rollups, retention
            # Before the verifier's kick: a proof complete by now is read, not timed out.
            await time_out_proofs(session, now=now, timeout_s=self.settings.proof_timeout_s)
        await self._pii.run(self.sessions, now=now)  # its own transaction: files go after it
        try:  # its own transaction: counted on /metrics only once the chunks are gone
            await expire_staged(
                self.sessions, now=now, max_age_s=self.settings.proof_stage_max_age_s
            )
        except Exception:  # the assignments above must still go out
            log.exception("removing abandoned proof uploads failed; next sweep tries again")
        return out
