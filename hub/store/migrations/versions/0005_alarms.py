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
    op.create_table(
        "alarms",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("station_id", sa.String(64), nullable=False),
        sa.Column("device", sa.String(64), nullable=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("source", sa.String(80), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("open_key", sa.String(200), nullable=True),
        sa.Column("since", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("acknowledged_at", TS, nullable=True),
        sa.Column("acknowledged_by", sa.String(80), nullable=True),
        sa.Column("cleared_at", TS, nullable=True),
        sa.Column("cleared_by", sa.String(80), nullable=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("last_value", sa.String(200), nullable=True),
    )
    op.create_index("ix_alarms_station_state", "alarms", ["station_id", "state"])
    op.create_index("ix_alarms_state", "alarms", ["state"])
    op.create_index("ux_alarms_open_key", "alarms", ["open_key"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_alarms_open_key", table_name="alarms")
    op.drop_index("ix_alarms_state", table_name="alarms")
    op.drop_index("ix_alarms_station_state", table_name="alarms")
    op.drop_table("alarms")
