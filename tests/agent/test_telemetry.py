"""Station telemetry: one batch of station metrics per sample, through the outbox."""

from __future__ import annotations

from typing import Any

import pytest

from agent.telemetry import TelemetrySampler
from protocol.models import TelemetryBatch


@pytest.mark.asyncio
async def test_sample_goes_to_the_outbox_as_a_batch(make_context: Any) -> None:
    ctx = await make_context()
    TelemetrySampler(ctx).sample_once()
    (entry,) = ctx.outbox.due(now=0, window=10)
    batch = TelemetryBatch.model_validate_json(entry.payload)
    metrics = {point.metric: point.value for point in batch.points}
    assert {"cpu_percent", "disk_used_percent", "outbox_jobs"} <= set(metrics)
    assert 0 <= float(metrics["disk_used_percent"]) <= 100
    assert entry.priority == 2
