"""Alarms with an active -> acknowledged -> cleared lifecycle (issue 5).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    pass  # filled in by the work


def downgrade() -> None:
    pass
