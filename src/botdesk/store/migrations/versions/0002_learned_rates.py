"""bots: send rates learned from Telegram's 429 answers

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bots", schema=None) as batch_op:
        batch_op.add_column(sa.Column("learned_rate", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("learned_paid_rate", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("bots", schema=None) as batch_op:
        batch_op.drop_column("learned_paid_rate")
        batch_op.drop_column("learned_rate")
