"""The few HTTP calls the demo makes to the hub (stdlib only: the demo needs no HTTP client)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


class HttpError(Exception):
    """The hub did not answer, or answered with an error status or non-JSON."""


def http_json(
    method: str,
    url: str,
    body: object = None,
    *,
    timeout: float = 2.0,
    headers: dict[str, str] | None = None,
) -> Any:
    """Send ``body`` as JSON and return the decoded answer (None for an empty body)."""
    if not url.startswith("http://"):
        raise ValueError(f"the demo only talks plain http to its own hub, not {url!r}")
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url,
        data=data,
        method=method,
        headers={"content-type": "application/json", **(headers or {})},
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
