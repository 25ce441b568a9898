"""Job engine: order requests with due dates, job plans and progress, station alarms,
idempotent API transitions, evidence codes and sign-offs, the hash-chained audit log.

Orders of the walking skeleton (one line: sku, serial, engraving text) are carried over into
the new ``request`` column, so their jobs can still be dispatched.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import hashlib
import json

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
GENESIS = "0" * 64


def upgrade() -> None:
    with op.batch_alter_table("stations") as batch:
        batch.add_column(sa.Column("alarm", sa.Text(), nullable=True))
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("due_at", TS, nullable=True))
        batch.add_column(sa.Column("rush", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("integrator", sa.String(64), nullable=False, server_default=""))
        batch.add_column(sa.Column("content_sha256", sa.String(64), nullable=True))
        batch.add_column(sa.Column("request", sa.JSON(), nullable=True))
    _carry_over_orders()
    with op.batch_alter_table("orders") as batch:
        batch.alter_column("due_at", existing_type=TS, nullable=False)
        batch.alter_column("content_sha256", existing_type=sa.String(64), nullable=False)
        batch.alter_column("request", existing_type=sa.JSON(), nullable=False)
        batch.alter_column("rush", server_default=None)
        batch.alter_column("integrator", server_default=None)
        batch.drop_column("sku")
        batch.drop_column("serial")
        batch.drop_column("engraving_text")
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("line_index", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("line_id", sa.String(64), nullable=False, server_default="1"))
        batch.add_column(sa.Column("progress", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("due_at", TS, nullable=True))
        batch.add_column(sa.Column("rush", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("estimate_s", sa.Float(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("origin", sa.String(80), nullable=False, server_default="order"))
        batch.add_column(sa.Column("approved_by", sa.String(64), nullable=True))
    op.execute("UPDATE jobs SET progress = '{}', due_at = created_at")
    with op.batch_alter_table("jobs") as batch:
        batch.alter_column("progress", existing_type=sa.JSON(), nullable=False)
        batch.alter_column("due_at", existing_type=TS, nullable=False)
        for column in ("line_index", "line_id", "rush", "estimate_s", "origin"):
            batch.alter_column(column, server_default=None)
        batch.create_index("ix_jobs_order_id", ["order_id"])
    with op.batch_alter_table("job_transitions") as batch:
        batch.add_column(sa.Column("request_id", sa.String(80), nullable=True))
        batch.create_index("ux_job_transitions_request", ["job_id", "request_id"], unique=True)
    with op.batch_alter_table("evidence") as batch:
        batch.add_column(sa.Column("code", sa.String(128), nullable=True))
        batch.add_column(sa.Column("by", sa.String(64), nullable=True))
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor", sa.String(80), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=True),
        sa.Column("job_id", sa.Uuid(), nullable=True),
        sa.Column("station_id", sa.String(64), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_log_order_id", "audit_log", ["order_id"])
    op.create_index("ix_audit_log_job_id", "audit_log", ["job_id"])
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": GENESIS}])


def _carry_over_orders() -> None:
    connection = op.get_bind()
    rows = connection.execute(
        sa.text("SELECT id, external_id, created_at, sku, serial, engraving_text FROM orders")
    ).fetchall()
    for order_id, external_id, created_at, sku, serial, text in rows:
        line: dict[str, object] = {"line_id": "1", "piece": {"sku": sku, "serial": serial}}
        if text:
            line["engraving"] = {"text": text}
        request = {"external_id": external_id, "lines": [line]}
        canonical = json.dumps(request, sort_keys=True, separators=(",", ":"))
        connection.execute(
            sa.text(
                "UPDATE orders SET request = :request, content_sha256 = :sha, due_at = :due "
                "WHERE id = :id"
            ).bindparams(sa.bindparam("request", type_=sa.JSON())),
            {
                "request": request,
                "sha": hashlib.sha256(canonical.encode()).hexdigest(),
                "due": created_at,
                "id": order_id,
            },
        )


def downgrade() -> None:
    raise NotImplementedError("0002 is not reversible: the order lines do not fit 0001's columns")
