"""Station events through the outbox: one helper so every component reports the same way."""

from __future__ import annotations

import logging
from uuid import UUID

from agent.outbox import Outbox, OutboxFullError
from protocol import topics
from protocol.models import Event, Scalar, Severity


def emit_event(
    outbox: Outbox,
    *,
    station_id: str,
    kind: str,
    severity: Severity,
    message: str,
    job_id: UUID | None = None,
    device: str | None = None,
    data: dict[str, Scalar] | None = None,
) -> bool:
    """Queue an :class:`Event` for the hub (durable; delivered like every outbox message);
    False when the outbox refused it (its disk budget, or a full disk): logged, never raised."""

    def build(epoch: int, seq: int) -> Event:
        return Event(
            station_id=station_id,
            epoch=epoch,
            seq=seq,
            kind=kind,
            severity=severity,
            message=message[:1024],
            job_id=job_id,
            device=device,
            data=data or {},
        )

    try:
        outbox.enqueue(topics.Up.EVENT, build)
    except OutboxFullError as err:  # the disk budget sheds events before job evidence
        logging.getLogger(__name__).warning("event %s not stored: %s", kind, err.reason)
        return False
    return True
