"""outbox: every conversational reply is written ahead (meta, group flag, media and buttons)

Revision ID: 0010
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as t:
        t.add_column(sa.Column("meta", sa.JSON(), nullable=True))
        t.add_column(sa.Column("payload", sa.JSON(), nullable=True))
        t.add_column(sa.Column("is_group", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as t:
        t.drop_column("is_group")
        t.drop_column("payload")
        t.drop_column("meta")
