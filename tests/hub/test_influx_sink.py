"""The InfluxDB export sink, exactly: influxdb-client talking to a recording /api/v2/write.

No InfluxDB 2 server exists in our registries, so the endpoint is a small HTTP server in this
test that records every request and answers like InfluxDB would (204, 400 with a JSON message,
401, 429/503). The database is real (SQLite and PostgreSQL through ``database_url``).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import pytest_asyncio
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from benchfleet.broker import free_port
from hub.app import create_app
from hub.settings import HubSettings
from hub.store.engine import create_sync_engine
from hub.store.models import DeadLetter, TelemetryPointRecord
from hub.store.telemetry_tables import TelemetrySinkCursor
from hub.telemetry.influx import ExportConfig, InfluxExporter
from hub.telemetry.influx_writer import InfluxTarget, InfluxWriter

pytestmark = pytest.mark.asyncio

T0 = datetime(2026, 1, 1, 8, 0, 0, 123456, tzinfo=UTC)
T0_NS = 1_767_254_400_123_456_000
FAST = ExportConfig(flush_s=0.05, retry_base_s=0.05, retry_cap_s=0.2, gap_grace_s=0.3)

# ---- the recording endpoint -----------------------------------------------------------------


@dataclass
class Request:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    lines: list[str]
    status: int
    at: float
    cursor: int | None  # the sink cursor in the database while this request was in flight


@dataclass
class Endpoint:
    """What the fake InfluxDB does: scripted statuses first, then 204; 400 for bad lines."""

    port: int = field(default_factory=free_port)
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    bad_marker: str | None = None
    read_cursor: Callable[[], int | None] = lambda: None
    requests: list[Request] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def delivered(self) -> list[str]:
        """Every line of every request InfluxDB accepted (204)."""
        return [line for r in self.requests if r.status == 204 for line in r.lines]

    def answer(self, lines: list[str]) -> tuple[int, dict[str, str], bytes]:
        if self.script:
            status, headers = self.script.pop(0)
            return status, headers, b'{"code":"scripted","message":"scripted answer"}'
        if self.bad_marker and any(self.bad_marker in line for line in lines):
            body = json.dumps({"code": "invalid", "message": "unable to parse 'bad': bad value"})
            return 400, {}, body.encode()
        return 204, {}, b""

    def start(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self))
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()


def _handler(endpoint: Endpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Content-Encoding") == "gzip":
                raw = gzip.decompress(raw)
            lines = raw.decode().split("\n")
            status, headers, body = endpoint.answer(lines)
            url = urlsplit(self.path)
            query, headers_in = parse_qs(url.query), dict(self.headers)
            cursor = endpoint.read_cursor()
            endpoint.requests.append(
                Request(url.path, query, headers_in, lines, status, time.monotonic(), cursor)
            )
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    return Handler


@pytest.fixture
def endpoint(migrated_url: str) -> Iterator[Endpoint]:
    sync = create_sync_engine(migrated_url)

    def read_cursor() -> int | None:
        with sync.connect() as conn:
            return conn.scalar(
                select(TelemetrySinkCursor.last_id).where(TelemetrySinkCursor.name == "influx")
            )

    running = Endpoint(read_cursor=read_cursor)
    running.start()
    yield running
    running.stop()
    sync.dispose()


@pytest_asyncio.fixture
async def make_exporter(
    sessions: async_sessionmaker[AsyncSession], endpoint: Endpoint
) -> AsyncIterator[Callable[..., InfluxExporter]]:
    made: list[InfluxExporter] = []

    def make(config: ExportConfig = FAST, token: str = "tok") -> InfluxExporter:
        writer = InfluxWriter(InfluxTarget(endpoint.url, token, "acme", "floor", timeout_s=2))
        made.append(InfluxExporter(sessions, writer, config))
        return made[-1]

    yield make
    for exporter in made:
        await exporter.stop()


# ---- helpers -----------------------------------------------------------------------------------


async def add_points(
    sessions: async_sessionmaker[AsyncSession],
    count: int,
    *,
    station: str = "st-01",
    **over: object,
) -> None:
    rows = [
        {
            "station_id": station,
            "device": "laser",
            "metric": "power",
            "ts": T0 + timedelta(seconds=i),
            "value_num": float(i),
            "value_text": None,
            "historical": False,
        }
        | over
        for i in range(count)
    ]
    async with sessions.begin() as session:
        await session.execute(insert(TelemetryPointRecord), rows)


async def cursor_of(sessions: async_sessionmaker[AsyncSession]) -> int | None:
    async with sessions() as session:
        return await session.scalar(
            select(TelemetrySinkCursor.last_id).where(TelemetrySinkCursor.name == "influx")
        )


async def max_id(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.max(TelemetryPointRecord.id))) or 0)


async def until(check: Callable[[], object], what: str, timeout_s: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await _value(check()):
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def _value(result: object) -> object:
    return await result if asyncio.iscoroutine(result) else result


def expected_line(i: int) -> str:
    return f"benchfleet,device=laser,metric=power,station=st-01 value={i} {T0_NS + i * 10**9}"


# ---- tests ---------------------------------------------------------------------------------


async def test_batches_are_gzipped_authorised_and_exact(
    sessions: async_sessionmaker[AsyncSession],
    endpoint: Endpoint,
    make_exporter: Callable[..., InfluxExporter],
) -> None:
    await add_points(sessions, 11_000)
    exporter = make_exporter(ExportConfig())  # the default batch: 5,000 lines
    await exporter.drain()

    assert [len(r.lines) for r in endpoint.requests] == [5000, 5000, 1000]
    first = endpoint.requests[0]
    assert first.path == "/api/v2/write"
    assert first.query == {"org": ["acme"], "bucket": ["floor"], "precision": ["ns"]}
    assert first.headers["Content-Encoding"] == "gzip"
    assert first.headers["Authorization"] == "Token tok"
    assert endpoint.delivered() == [expected_line(i) for i in range(11_000)]
    # The cursor moves after each accepted batch, never before it.
    assert [r.cursor for r in endpoint.requests] == [0, 5000, 10_000]
    assert await cursor_of(sessions) == await max_id(sessions)


async def test_text_values_and_escaping_on_the_wire(
    sessions: async_sessionmaker[AsyncSession],
    endpoint: Endpoint,
    make_exporter: Callable[..., InfluxExporter],
) -> None:
    await add_points(
        sessions, 1, station="st 1", device="cleaner,a", metric="state=x",
        value_num=None, value_text='say "hi" \\ bye',
    )  # fmt: skip
    await make_exporter().drain()
    assert endpoint.delivered() == [
        r"benchfleet,device=cleaner\,a,metric=state\=x,station=st\ 1 "
        r'text="say \"hi\" \\ bye" ' + str(T0_NS)
    ]


async def test_503_three_times_is_retried_with_backoff_and_nothing_lost(
    sessions: async_sessionmaker[AsyncSession],
    endpoint: Endpoint,
    make_exporter: Callable[..., InfluxExporter],
) -> None:
    endpoint.script = [(503, {}), (503, {}), (429, {"Retry-After": "1"}), (503, {})]
    await add_points(sessions, 300)
    await make_exporter().drain()

    statuses = [r.status for r in endpoint.requests]
    assert statuses == [503, 503, 429, 503, 204]
    assert all(r.lines == endpoint.requests[0].lines for r in endpoint.requests)
    assert all(r.cursor == 0 for r in endpoint.requests)  # held until InfluxDB accepted
    gaps = [b.at - a.at for a, b in zip(endpoint.requests, endpoint.requests[1:], strict=False)]
    assert gaps[2] >= 1.0  # Retry-After is honoured
    assert endpoint.delivered() == [expected_line(i) for i in range(300)]
    assert await cursor_of(sessions) == await max_id(sessions)


async def test_a_bad_point_is_isolated_rejected_with_a_reason_and_the_rest_delivered(
    sessions: async_sessionmaker[AsyncSession],
    endpoint: Endpoint,
    make_exporter: Callable[..., InfluxExporter],
) -> None:
    await add_points(sessions, 60)
    await add_points(sessions, 1, metric="bad", value_num=1.5)
    await add_points(sessions, 39)
    endpoint.bad_marker = "metric=bad"
    await make_exporter().drain()

    assert sorted(endpoint.delivered()) == sorted(
        [expected_line(i) for i in range(60)] + [expected_line(i) for i in range(39)]
    )
    assert len(endpoint.requests) <= 2 * 7 + 1  # bisection: about 2 log2(100) writes
    async with sessions() as session:
        letters = (await session.scalars(select(DeadLetter))).all()
    assert [(d.topic, d.station_id) for d in letters] == [("sink/influx", "st-01")]
    assert "InfluxDB 400: unable to parse" in letters[0].reason
    assert "telemetry point 61" in letters[0].reason
    assert letters[0].payload.startswith(b"benchfleet,device=laser,metric=bad,")
    assert await cursor_of(sessions) == 100


async def test_points_wait_in_sql_while_influxdb_is_down(
    sessions: async_sessionmaker[AsyncSession],
    endpoint: Endpoint,
    make_exporter: Callable[..., InfluxExporter],
) -> None:
    endpoint.stop()
    exporter = make_exporter()
    exporter.start()
    await add_points(sessions, 500)
    await asyncio.sleep(0.8)  # several connection failures and retries
    assert endpoint.requests == []
    assert await cursor_of(sessions) == 0

    endpoint.start()  # same port: InfluxDB is back
    await until(lambda: cursor_of(sessions), "the cursor to move")
    await until(lambda: len(endpoint.delivered()) >= 500, "the backlog")
    assert endpoint.delivered() == [expected_line(i) for i in range(500)]
    assert await cursor_of(sessions) == await max_id(sessions)


async def test_a_bad_token_stops_the_sink_and_keeps_the_points(
    sessions: async_sessionmaker[AsyncSession],
    endpoint: Endpoint,
    make_exporter: Callable[..., InfluxExporter],
) -> None:
    endpoint.script = [(401, {})]
    await add_points(sessions, 10)
    exporter = make_exporter(token="wrong")
    await asyncio.wait_for(exporter.run(), 5)  # returns: nothing will work until fixed
    assert exporter.fatal is not None
    assert exporter.fatal.startswith("InfluxDB 401")
    assert await cursor_of(sessions) == 0
    assert endpoint.requests[0].headers["Authorization"] == "Token wrong"


async def test_the_hub_runs_the_sink_when_influx_url_is_set(
    migrated_url: str, sessions: async_sessionmaker[AsyncSession], endpoint: Endpoint
) -> None:
    settings = HubSettings(
        _env_file=None,
        database_url=migrated_url,
        mqtt_url=f"mqtt://127.0.0.1:{free_port()}",  # no broker: the sink does not need one
        influx_url=endpoint.url,
        influx_token="hub-token",
        influx_flush_s=0.05,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        await add_points(sessions, 20)
        await until(lambda: len(endpoint.delivered()) == 20, "the hub to export")
    assert endpoint.requests[0].headers["Authorization"] == "Token hub-token"
    assert endpoint.delivered() == [expected_line(i) for i in range(20)]
