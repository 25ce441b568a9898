"""Lossless telemetry: a key per point, ledger per batch, totals, gaps, rollups, sink cursors.

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
POINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    _extend_points()
    op.create_table(
        "telemetry_ledger",
        sa.Column("station_id", sa.String(64), primary_key=True),
        sa.Column("epoch", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("points_received", sa.Integer(), nullable=False),
        sa.Column("points_stored", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.JSON(), nullable=False),
        sa.Column("historical", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_telemetry_ledger_received_at", "telemetry_ledger", ["received_at"])
    op.create_table(
        "telemetry_station_totals",
        sa.Column("station_id", sa.String(64), primary_key=True),
        sa.Column("batches", sa.Integer(), nullable=False),
        sa.Column("points_received", sa.BigInteger(), nullable=False),
        sa.Column("points_stored", sa.BigInteger(), nullable=False),
        sa.Column("points_rejected", sa.JSON(), nullable=False),
        sa.Column("duplicate_batches", sa.Integer(), nullable=False),
        sa.Column("duplicate_points", sa.BigInteger(), nullable=False),
        sa.Column("points_expired", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_at", TS, nullable=True),
    )
    op.create_table(
        "telemetry_seq_marks",
        sa.Column("station_id", sa.String(64), primary_key=True),
        sa.Column("epoch", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("watermark", sa.Integer(), nullable=False),
        sa.Column("progress_at", TS, nullable=False),
        sa.Column("last_resync_at", TS, nullable=True),
    )
    op.create_table(
        "telemetry_gaps",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("station_id", sa.String(64), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("first_seq", sa.Integer(), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("detected_at", TS, nullable=False),
        sa.Column("opened_at", TS, nullable=True),
        sa.Column("closed_at", TS, nullable=True),
        sa.Column("resyncs", sa.Integer(), nullable=False),
    )
    op.create_index("ix_telemetry_gaps_station_state", "telemetry_gaps", ["station_id", "state"])
    _create_rollups()
    op.create_table(
        "telemetry_sink_cursors",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("last_id", POINT_ID, nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )


def _extend_points() -> None:
    with op.batch_alter_table("telemetry_points") as batch:
        batch.add_column(sa.Column("epoch", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("seq", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("idx", sa.Integer(), nullable=True))
        batch.create_index("ix_telemetry_points_ts", ["ts"])
        batch.create_index(
            "ux_telemetry_points_key", ["station_id", "epoch", "seq", "idx"], unique=True
        )
    if op.get_bind().dialect.name == "postgresql":
        # SQLite's rowid is 64-bit already; PostgreSQL's SERIAL is not.
        op.alter_column("telemetry_points", "id", type_=sa.BigInteger(), existing_nullable=False)
        op.execute("ALTER SEQUENCE telemetry_points_id_seq AS BIGINT")


def _create_rollups() -> None:
    op.create_table(
        "telemetry_rollups_1m",
        sa.Column("station_id", sa.String(64), primary_key=True),
        sa.Column("device", sa.String(64), primary_key=True),
        sa.Column("metric", sa.String(64), primary_key=True),
        sa.Column("bucket", TS, primary_key=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("num_count", sa.Integer(), nullable=False),
        sa.Column("value_min", sa.Float(), nullable=True),
        sa.Column("value_max", sa.Float(), nullable=True),
        sa.Column("value_sum", sa.Float(), nullable=True),
        sa.Column("last_ts", TS, nullable=False),
        sa.Column("last_num", sa.Float(), nullable=True),
        sa.Column("last_text", sa.Text(), nullable=True),
    )
    op.create_index("ix_telemetry_rollups_1m_bucket", "telemetry_rollups_1m", ["bucket"])


def downgrade() -> None:
    for table in (
        "telemetry_sink_cursors",
        "telemetry_rollups_1m",
        "telemetry_gaps",
        "telemetry_seq_marks",
        "telemetry_station_totals",
        "telemetry_ledger",
    ):
        op.drop_table(table)
    with op.batch_alter_table("telemetry_points") as batch:
        batch.drop_index("ux_telemetry_points_key")
        batch.drop_index("ix_telemetry_points_ts")
        batch.drop_column("idx")
        batch.drop_column("seq")
        batch.drop_column("epoch")
