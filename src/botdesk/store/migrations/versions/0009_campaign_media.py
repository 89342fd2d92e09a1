"""campaigns: more media, albums and copies; deliveries: an album's message ids

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        # An album's items [{"kind", "path", "file_id"}]; a copy's source {"chat", "message_id"}.
        batch_op.add_column(sa.Column("media_items", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("copy_from", sa.JSON(), nullable=True))
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("message_ids", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("message_ids")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_column("copy_from")
        batch_op.drop_column("media_items")
