"""The few HTTP calls the demo makes to the hub (stdlib only: the demo needs no HTTP client),
and tolerant readers for the answers it shows (orders, jobs, stations)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


class HttpError(Exception):
    """The hub did not answer, or answered with an error status or non-JSON."""


def http_json(method: str, url: str, body: object = None, *, timeout: float = 2.0) -> Any:
    """Send ``body`` as JSON and return the decoded answer (None for an empty body)."""
    if not url.startswith("http://"):
        raise ValueError(f"the demo only talks plain http to its own hub, not {url!r}")
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url, data=data, method=method, headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            raw = response.read()
    except urllib.error.HTTPError as err:
        detail = err.read().decode(errors="replace")[:500]
        raise HttpError(f"{method} {url}: HTTP {err.code} {detail}") from err
    except (OSError, ValueError) as err:  # URLError, refused, reset, timeout
        raise HttpError(f"{method} {url}: {err}") from err
    try:
        return json.loads(raw) if raw else None
    except ValueError as err:
        raise HttpError(f"{method} {url}: answer is not JSON") from err


def job_ids_of(order: object) -> list[str]:
    """Job ids in a ``POST /orders`` answer: ``jobs[].id``, ``job_ids`` or ``job_id``."""
    if not isinstance(order, dict):
        return []
    jobs = order.get("jobs")
    if isinstance(jobs, list):
        ids = [str(job["id"]) for job in jobs if isinstance(job, dict) and "id" in job]
        if ids:
            return ids
    job_ids = order.get("job_ids")
    if isinstance(job_ids, list):
        return [str(i) for i in job_ids]
    if order.get("job_id") is not None:
        return [str(order["job_id"])]
    return []


def job_status(job: object) -> tuple[str | None, str | None]:
    """(status, station id) of a ``GET /jobs/{id}`` answer."""
    if not isinstance(job, dict):
        return None, None
    status = job.get("status", job.get("state"))
    station = job.get("station_id", job.get("station"))
    return (
        str(status) if status is not None else None,
        str(station) if station is not None else None,
    )


def online_count(answer: object) -> int | None:
    """How many stations a ``GET /stations`` answer shows online (None: unknown shape)."""
    items = answer.get("stations", answer.get("items")) if isinstance(answer, dict) else answer
    if not isinstance(items, list):
        return None
    return sum(1 for item in items if is_online(item))


def is_online(station: object) -> bool:
    """A station entry that says it is online (``online: true`` or a status of "online")."""
    if not isinstance(station, dict):
        return False
    if station.get("online") is True:
        return True
    return any(str(station.get(key, "")).lower() == "online" for key in ("status", "state"))
