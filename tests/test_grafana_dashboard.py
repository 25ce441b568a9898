"""deploy/grafana/benchfleet-dashboard.json queries what the InfluxDB sink writes.

Grafana itself is not in our registries; this checks the dashboard's structure and that every
Flux query names the sink's measurement, fields and tags and metrics the agents really send.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any, cast

import pytest

import drivers.camera.base
import drivers.cleaner.base
import drivers.laser.base
import drivers.scale.base
from agent.outbox import Outbox
from agent.telemetry import sample_station
from hub.telemetry.line_protocol import MEASUREMENT, TEXT_FIELD, VALUE_FIELD

DASHBOARD = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "benchfleet-dashboard.json"
SINK_TAGS = {"station", "device", "metric"}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def queries(dashboard: dict[str, Any]) -> list[str]:
    return [t["query"] for p in dashboard["panels"] for t in p["targets"]]


def known_metrics() -> set[str]:
    modules = (drivers.laser.base, drivers.cleaner.base, drivers.scale.base, drivers.camera.base)
    families = [c for m in modules for c in vars(m).values() if hasattr(c, "METRICS")]
    assert len(families) >= 4
    driver_metrics = {spec.name for family in families for spec in family.METRICS}
    station = sample_station(cast(Outbox, _EmptyOutbox()), "/")  # a real sample of this PC
    return driver_metrics | set(station)


class _EmptyOutbox:
    def depth(self) -> defaultdict[int, int]:
        return defaultdict(int)


def test_panels_cover_the_floor(dashboard: dict[str, Any]) -> None:
    titles = {p["title"] for p in dashboard["panels"]}
    for wanted in ("Points/s per station", "Laser state", "Laser power", "Cleaner temperature",
                   "Scale weight", "Camera focus", "Station CPU", "Outbox depth"):  # fmt: skip
        assert wanted in titles
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_every_panel_uses_the_datasource_variable(dashboard: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "influxdb"
    for panel in dashboard["panels"]:
        assert panel["datasource"] == {"type": "influxdb", "uid": "${datasource}"}


def test_queries_name_what_the_sink_writes(dashboard: dict[str, Any]) -> None:
    for query in queries(dashboard):
        assert query.startswith('from(bucket: "${bucket}")')
        assert f'r._measurement == "{MEASUREMENT}"' in query
        fields = set(re.findall(r'r\._field == "(\w+)"', query))
        assert fields <= {VALUE_FIELD, TEXT_FIELD}
        tags = set(re.findall(r"r\.(\w+) (?:==|=~)", query)) - {"_measurement", "_field"}
        assert tags <= SINK_TAGS, query
        for metric in re.findall(r'r\.metric == "(\w+)"', query):
            assert metric in known_metrics(), f"no agent sends metric {metric!r}"
