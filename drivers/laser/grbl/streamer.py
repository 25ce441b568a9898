"""One reader per port, a FIFO of unacknowledged lines, and two ways of sending lines.

*Character counting* keeps the controller's RX buffer full: a line goes out while the sizes of
the lines in flight (each with its ``\\n``) plus its own stay within ``rx_size - 1`` bytes, and
one size is popped per ``ok``/``error:N``. *Send-response* waits for each reply before the next
line; it is the only safe way to send ``$N=v`` settings, because an EEPROM write stops GRBL's
serial interrupt and bytes streamed meanwhile are lost. Realtime bytes (``?``, ``!``, ``~``,
``0x18``, overrides) skip the queue and are never counted: GRBL picks them out of the stream.

The first failure (port gone, a reply that is not GRBL, an alarm, a reset) fails every line in
flight and every later send: the link never pretends a line ran.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from drivers.errors import (
    DeviceError,
    DeviceProtocolError,
    DeviceReportedError,
    DeviceTimeoutError,
)
from drivers.laser.grbl.codes import describe_alarm, describe_error
from drivers.laser.grbl.protocol import (
    Alarm,
    Banner,
    Error,
    Message,
    Ok,
    Response,
    parse_line,
)
from drivers.serial_link import SerialLine

log = logging.getLogger(__name__)

REALTIME = frozenset({0x18, *b"?!~"} | set(range(0x80, 0x100)))
IDLE_READ_S = 3600.0


@dataclass
class Reply:
    """A response and the push messages that arrived while its line was in flight."""

    response: Response
    pushes: list[Message] = field(default_factory=list)


@dataclass
class _InFlight:
    size: int
    future: asyncio.Future[Reply]
    pushes: list[Message] = field(default_factory=list)


class GrblLink:
    """A GRBL controller on an open :class:`SerialLine`; start with :meth:`start`."""

    def __init__(self, line: SerialLine, *, rx_size: int = 128) -> None:
        self.line = line
        self.rx_size = rx_size
        self.failure: DeviceError | None = None
        self.interruption: DeviceError | None = None
        self.listeners: list[Callable[[Message], None]] = []
        self.failure_listeners: list[Callable[[DeviceError], None]] = []
        self._in_flight: deque[_InFlight] = deque()
        self._writing = asyncio.Lock()  # lines go out whole and in order
        self._changed = asyncio.Event()  # set on every reply and failure (no task to lose)
        self._reader: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._reader = asyncio.create_task(self._read_loop(), name=f"grbl-reader[{self.line.url}]")

    async def close(self) -> None:
        # Cancel until done: Python 3.11's wait_for (inside SerialLine.readline) can swallow a
        # cancel that coincides with data arriving.
        while self._reader is not None and not self._reader.done():
            self._reader.cancel()
            await asyncio.wait({self._reader}, timeout=0.1)
        await self.line.close()

    @property
    def in_flight_bytes(self) -> int:
        return sum(item.size for item in self._in_flight)

    async def realtime(self, byte: int) -> None:
        """Write one realtime byte now, ahead of any line waiting for room."""
        if byte not in REALTIME:
            raise ValueError(f"0x{byte:02x} is not a GRBL realtime byte")
        await self.line.write(bytes([byte]))

    async def send(self, text: str) -> asyncio.Future[Reply]:
        """Character counting: write ``text`` as soon as it fits; the future holds its reply."""
        data = _encode(text)
        if len(data) > self.rx_size - 1:
            raise ValueError(f"line of {len(data)} bytes cannot fit the RX buffer")
        async with self._writing:
            await self._wait(lambda: self.in_flight_bytes + len(data) <= self.rx_size - 1)
            return await self._write(data)

    async def request(self, text: str, within: float) -> Reply:
        """Send-response: wait until nothing is in flight, send ``text``, wait for its reply."""
        try:
            async with asyncio.timeout(within):  # not wait_for: 3.11's can swallow a cancel
                async with self._writing:
                    await self._wait(lambda: not self._in_flight)
                    future = await self._write(_encode(text))
                return await asyncio.shield(future)
        except TimeoutError as err:
            raise DeviceTimeoutError(
                f"no reply to a {text[:2]!r} command within {within} s"
            ) from err

    async def _wait(self, probe: Callable[[], bool]) -> None:
        """Until ``probe()`` holds or the link is blocked (no await between check and wait)."""
        while self.blocked is None and not probe():
            self._changed.clear()
            await self._changed.wait()

    @property
    def blocked(self) -> DeviceError | None:
        """Why nothing may be sent: the link failed, or an alarm/reset interrupted it."""
        return self.failure or self.interruption

    def raise_if_failed(self) -> None:
        if (blocked := self.blocked) is not None:
            raise blocked

    def raise_if_failed_permanently(self) -> None:
        if self.failure is not None:
            raise self.failure

    def clear_interruption(self) -> None:
        """The caller handled the alarm or reset (or caused it on purpose): send again."""
        self.interruption = None

    async def _write(self, data: bytes) -> asyncio.Future[Reply]:
        self.raise_if_failed()
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._in_flight.append(_InFlight(len(data), future))
        await self.line.write(data)
        return future

    async def stream(
        self,
        lines: Sequence[str],
        *,
        counting: bool = True,
        stall_s: float = 30.0,
        on_ack: Callable[[int], None] | None = None,
        stop_on_error: bool = True,
    ) -> list[tuple[int, int]]:
        """Stream ``lines`` (character counting, or send-response with ``counting=False``).

        ``on_ack(n)`` runs as line ``n`` (1-based) is acknowledged. The first ``error:N`` raises
        :class:`LineRejected` unless ``stop_on_error`` is false (``$C`` preflight): then every
        ``(line, code)`` refused is returned. No reply for ``stall_s`` is a timeout.
        """
        pending: deque[tuple[int, asyncio.Future[Reply]]] = deque()
        rejected: list[tuple[int, int]] = []
        ack = on_ack or (lambda _: None)
        for number, text in enumerate(lines, 1):
            try:
                async with asyncio.timeout(stall_s):
                    pending.append((number, await self.send(text)))
            except TimeoutError as err:
                raise DeviceTimeoutError(
                    f"no reply for {stall_s} s (RX buffer stays full)"
                ) from err
            while pending and (not counting or pending[0][1].done()):
                await self._settle(pending.popleft(), stall_s, ack, rejected, stop_on_error)
        while pending:
            await self._settle(pending.popleft(), stall_s, ack, rejected, stop_on_error)
        return rejected

    async def _settle(
        self,
        item: tuple[int, asyncio.Future[Reply]],
        stall_s: float,
        ack: Callable[[int], None],
        rejected: list[tuple[int, int]],
        stop_on_error: bool,
    ) -> None:
        number, future = item
        try:
            async with asyncio.timeout(stall_s):
                reply = await asyncio.shield(future)
        except TimeoutError as err:
            raise DeviceTimeoutError(
                f"no reply to line {number} within {stall_s} s (a line may have been lost;"
                " acknowledgements after it are not trustworthy)"
            ) from err
        if isinstance(reply.response, Error):
            if stop_on_error:
                raise LineRejected(number, reply.response.code)
            rejected.append((number, reply.response.code))
        else:
            ack(number)

    async def _read_loop(self) -> None:
        try:
            while True:
                raw = await self._readline()
                if raw.strip():  # GRBL prints a blank line before its banner
                    self._dispatch(parse_line(raw))
        except DeviceError as err:
            self.fail(err)

    async def _readline(self) -> bytes:
        while True:
            try:
                return await self.line.readline(within=IDLE_READ_S)
            except DeviceTimeoutError:
                continue  # a quiet idle controller is fine

    def _dispatch(self, message: Message) -> None:
        if isinstance(message, Ok | Error):
            self._on_response(message)
        elif self._in_flight:
            self._in_flight[0].pushes.append(message)
        for listener in self.listeners:
            listener(message)
        if isinstance(message, Alarm | Banner):
            # An alarm or a reset flushes GRBL's RX buffer: the lines in flight get no reply,
            # and nothing more goes out until the driver has decided what happened.
            self.interruption = self.interruption or _interrupted(message)
            self._fail_in_flight(self.interruption)
            self._changed.set()

    def _on_response(self, response: Response) -> None:
        if not self._in_flight and self.interruption is not None:
            # Lines still in transit when GRBL alarmed or reset get answered after the fact
            # (error:9 in alarm); the lines they belong to were already failed.
            log.debug("grbl link %s: late %s after an interruption", self.line.url, response)
            return
        if not self._in_flight:
            raise DeviceProtocolError(f"{response} without a line in flight: stream out of step")
        item = self._in_flight.popleft()
        if not item.future.done():
            item.future.set_result(Reply(response, item.pushes))
        self._changed.set()

    def fail(self, err: DeviceError) -> None:
        """Mark the link dead: every waiter, now and later, gets ``err``."""
        if self.failure is None:
            log.warning("grbl link %s failed: %s", self.line.url, err)
            self.failure = err
            for listener in self.failure_listeners:
                listener(err)
        self._fail_in_flight(err)
        self._changed.set()

    def _fail_in_flight(self, err: DeviceError) -> None:
        while self._in_flight:
            item = self._in_flight.popleft()
            if not item.future.done():
                item.future.set_exception(err)
                item.future.exception()  # mark retrieved: nobody may be awaiting this line yet


class LineRejected(DeviceReportedError):
    """The controller answered ``error:N`` to line ``line`` of a stream."""

    def __init__(self, line: int, code: int) -> None:
        super().__init__(f"line {line} refused: {describe_error(code)}")
        self.line = line
        self.code = code


def _interrupted(message: Alarm | Banner) -> DeviceError:
    if isinstance(message, Alarm):
        return DeviceReportedError(describe_alarm(message.code))
    return DeviceReportedError("controller reset (banner)")


def _encode(text: str) -> bytes:
    if any(ord(char) in REALTIME or ord(char) < 0x20 for char in text):
        raise ValueError("line holds a realtime or control character")
    return text.encode("ascii") + b"\n"
