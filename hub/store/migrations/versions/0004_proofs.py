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
    pass  # filled in by the work


def downgrade() -> None:
    pass
