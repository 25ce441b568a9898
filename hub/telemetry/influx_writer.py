"""One InfluxDB v2 write with influxdb-client, its failure sorted into what to do next.

The client is synchronous (urllib3) and told not to retry: the exporter owns retries, so a
retry is counted, backs off with jitter, honours Retry-After and stops when the hub stops.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import cast

import urllib3.exceptions
from influxdb_client.client.exceptions import InfluxDBError
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.domain.write_precision import WritePrecision

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
FATAL_STATUSES = frozenset({401, 403, 404})  # bad token, no permission, no such org/bucket
MAX_RETRY_AFTER_S = 300.0


class WriteFailed(Exception):
    """Base of the sorted write failures; ``str()`` is a reason safe to log (no values)."""


class RetryableWrite(WriteFailed):
    """Try the same lines again later (5xx, 429, 408, connection trouble)."""

    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


class RejectedLines(WriteFailed):
    """InfluxDB refused the content (400, 413, 422): some line of the batch is bad."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"InfluxDB {status}: {message}")
        self.status = status


class FatalWrite(WriteFailed):
    """Nothing will succeed until someone fixes the configuration (401, 403, 404)."""


@dataclass(frozen=True)
class InfluxTarget:
    """Where and how to write."""

    url: str
    token: str
    org: str
    bucket: str
    timeout_s: float = 10.0


def retry_delay(attempt: int, *, base_s: float, cap_s: float, retry_after_s: float | None) -> float:
    """Full-jitter exponential backoff; a server's Retry-After is a floor, never ignored."""
    backoff = random.uniform(0, min(cap_s, base_s * 2**attempt))
    if retry_after_s is None:
        return backoff
    return max(backoff, min(retry_after_s, MAX_RETRY_AFTER_S))


def _retry_after(err: InfluxDBError) -> float | None:
    raw = getattr(err, "retry_after", None)
    try:
        return float(raw) if raw is not None else None
    except ValueError:  # an HTTP date: back off normally rather than parse it
        return None


def _status(err: InfluxDBError) -> int | None:
    status = getattr(err, "status", None)
    if status is None and getattr(err, "response", None) is not None:
        status = getattr(err.response, "status", None)
    return int(status) if status is not None else None


def _short(message: object) -> str:
    text = message.decode(errors="replace") if isinstance(message, bytes) else str(message)
    return text.strip().replace("\n", " ")[:300]


class InfluxWriter:
    """A long-lived client (keeps its connection pool) writing one batch per call."""

    def __init__(self, target: InfluxTarget) -> None:
        self.target = target
        self._client = InfluxDBClient(
            url=target.url,
            token=target.token,
            org=target.org,
            enable_gzip=True,
            timeout=int(target.timeout_s * 1000),
            retries=False,  # the exporter retries, counted and stoppable
        )
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)

    def write(self, lines: list[str]) -> None:
        """Write ``lines`` (ns precision) or raise a :class:`WriteFailed` subclass."""
        try:
            self._write_api.write(
                bucket=self.target.bucket,
                org=self.target.org,
                record="\n".join(lines),
                write_precision=cast(WritePrecision, WritePrecision.NS),  # a str constant
            )
        except InfluxDBError as err:
            raise _sorted(err) from err
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise RetryableWrite(f"connection: {type(err).__name__}") from err

    def close(self) -> None:
        self._client.close()  # type: ignore[no-untyped-call]


def _sorted(err: InfluxDBError) -> WriteFailed:
    status = _status(err)
    message = _short(getattr(err, "message", "") or getattr(err, "body", "") or "")
    if status is None or status in RETRY_STATUSES or status >= 500:
        return RetryableWrite(f"InfluxDB {status}: {message}", _retry_after(err))
    if status in FATAL_STATUSES:
        return FatalWrite(f"InfluxDB {status}: {message}")
    return RejectedLines(status, message)
