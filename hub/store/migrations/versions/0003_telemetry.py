"""Lossless telemetry: ledger per batch, rollups for downsampling, sink cursors (issue 5).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    pass  # filled in by the work


def downgrade() -> None:
    pass
