"""opaque personal links: each subscriber gets a random link id that tokens carry instead of
the address

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscriber", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("link_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True)
        )
    connection = op.get_bind()
    subscriber = sa.table("subscriber", sa.column("id", sa.Integer), sa.column("link_id"))
    ids = [row for (row,) in connection.execute(sa.select(subscriber.c.id))]
    for row in ids:  # a fresh random handle each; links mailed before stop working
        connection.execute(
            subscriber.update()
            .where(subscriber.c.id == row)
            .values(link_id=secrets.token_urlsafe(16))
        )
    with op.batch_alter_table("subscriber", schema=None) as batch_op:
        batch_op.alter_column(
            "link_id", existing_type=sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False
        )
        batch_op.create_index(batch_op.f("ix_subscriber_link_id"), ["link_id"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("subscriber", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subscriber_link_id"))
        batch_op.drop_column("link_id")
