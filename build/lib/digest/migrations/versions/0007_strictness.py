"""relevance floor: each subscription's strictness replaces the z-score threshold (which was
relative to the day's candidates, so every section filled up whatever the day held)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 10:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscription", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "strictness",
                sqlmodel.sql.sqltypes.AutoString(length=16),
                nullable=False,
                server_default="balanced",
            )
        )
        batch_op.drop_column("threshold")


def downgrade() -> None:
    with op.batch_alter_table("subscription", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("threshold", sa.Float(), nullable=False, server_default="0")
        )
        batch_op.drop_column("strictness")
