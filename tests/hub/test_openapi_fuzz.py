"""Schemathesis against the hub's own OpenAPI schema, on a real uvicorn serving the hub app
(SQLite; no broker: the API works without one). For every operation and generated request:
no 5xx with a valid admin key, and without a key nothing but 401 (or 422 for a body that is
not even JSON, which FastAPI answers before it looks at the caller) on every route except the
public ones. Examples per operation are bounded so the whole run stays well under a minute.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings

from benchfleet.broker import free_port
from hub.app import create_app
from hub.settings import HubSettings

# Per operation (about 25 of them); BENCHFLEET_FUZZ_EXAMPLES=200 for a deeper run by hand.
EXAMPLES = int(os.environ.get("BENCHFLEET_FUZZ_EXAMPLES", "12"))
PUBLIC = {"/health", "/cutoffs"}  # and /docs, /openapi.json (not in the schema)
KEY_HEADERS = {"x-api-key", "authorization"}
ADMIN = {"X-API-Key": "dev-admin-key"}


@pytest.fixture(scope="module")
def hub_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root: Path = tmp_path_factory.mktemp("hub")
    hub_settings = HubSettings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=root,
        mqtt_url=f"mqtt://127.0.0.1:{free_port()}",
        dashboards_enabled=False,  # HTML pages outside the schema
        proof_max_bytes=256 * 1024,  # generated uploads stay small anyway
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(hub_settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, name="hub-under-fuzz", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "hub did not start"
    yield url
    server.should_exit = True
    thread.join(timeout=15)


def without_keys(headers: dict[str, Any] | None) -> dict[str, Any]:
    """The generated headers minus any key (the schema documents X-API-Key on every route)."""
    return {k: v for k, v in (headers or {}).items() if k.lower() not in KEY_HEADERS}


def check(case: Any, hub_url: str) -> None:
    case.headers = without_keys(case.headers)
    anonymous = case.call(base_url=hub_url, timeout=30)
    if case.path not in PUBLIC:
        assert anonymous.status_code in (401, 422), (case.method, case.path, anonymous.text)
        if anonymous.status_code == 422:
            assert "json" in anonymous.text.lower()  # an undecodable body, nothing else
    assert anonymous.status_code < 500
    authorised = case.call(base_url=hub_url, headers=ADMIN, timeout=30)
    assert authorised.status_code < 500, (case.method, case.path, authorised.text[:500])


def test_no_5xx_and_no_access_without_a_key(hub_url: str) -> None:
    # schemathesis' pytest plugin does not load on pytest 9 (it reads a removed attribute):
    # each operation's hypothesis strategy is driven directly instead.
    document = httpx.get(f"{hub_url}/openapi.json", timeout=10).json()
    operations = [
        result.ok() for result in schemathesis.openapi.from_dict(document).get_all_operations()
    ]
    assert len(operations) > 15
    for operation in operations:

        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def one(case: Any) -> None:
            check(case, hub_url)

        one()
