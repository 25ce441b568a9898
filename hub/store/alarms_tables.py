"""ORM tables of alarms (migration 0005). Registered on :class:`hub.store.models.Base` by the
import at the end of :mod:`hub.store.models`."""

from __future__ import annotations

from hub.store.models import Base

__all__ = ["Base"]
