"""Proof photos (content-addressed, assembled from chunks) and engraving verifications (issue 8).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "proof_chunks",
        sa.Column("proof_sha256", sa.String(64), primary_key=True),
        sa.Column("idx", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("total_bytes", sa.Integer(), nullable=False),
        sa.Column("content_type", sa.String(32), nullable=False),
        sa.Column("station_id", sa.String(64), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=True),
        sa.Column("step", sa.String(64), nullable=True),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", TS, nullable=False),
    )
    op.create_table(
        "proofs",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("content_type", sa.String(32), nullable=False),
        sa.Column("station_id", sa.String(64), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=True),
        sa.Column("step", sa.String(64), nullable=True),
        sa.Column("received_at", TS, nullable=False),
    )
    op.create_index("ix_proofs_job_id", "proofs", ["job_id"])
    op.create_table(
        "verifications",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.Uuid(), nullable=True),
        sa.Column("step", sa.String(64), nullable=True),
        sa.Column("proof_sha256", sa.String(64), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("read_text", sa.Text(), nullable=False),
        sa.Column("diff", sa.JSON(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("engine", sa.String(80), nullable=False),
        sa.Column("elapsed_ms", sa.Float(), nullable=False),
        sa.Column("at", TS, nullable=False),
    )
    op.create_index(
        "ux_verifications_job_step_proof",
        "verifications",
        ["job_id", "step", "proof_sha256"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("ux_verifications_job_step_proof", table_name="verifications")
    op.drop_table("verifications")
    op.drop_index("ix_proofs_job_id", table_name="proofs")
    op.drop_table("proofs")
    op.drop_table("proof_chunks")
