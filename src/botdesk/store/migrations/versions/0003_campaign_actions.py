"""campaign actions: edit and recall of delivered messages, with their own ledger

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "campaign_actions",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("campaign_id", _ID, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("parse_mode", sa.String(length=16), nullable=True),
        sa.Column("buttons", sa.JSON(), nullable=True),
        sa.Column("media_kind", sa.String(length=16), nullable=True),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_actions_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_actions")),
    )
    op.create_index(
        "ix_campaign_actions_state", "campaign_actions", ["state", "campaign_id"], unique=False
    )
    op.create_table(
        "campaign_action_rows",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("action_id", _ID, nullable=False),
        sa.Column("delivery_id", sa.BigInteger(), nullable=False),
        sa.Column("subscriber_id", sa.BigInteger(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("not_before", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["action_id"],
            ["campaign_actions.id"],
            name=op.f("fk_campaign_action_rows_action_id_campaign_actions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_action_rows")),
        sa.UniqueConstraint(
            "action_id", "delivery_id", name=op.f("uq_campaign_action_rows_action_id")
        ),
    )
    op.create_index(
        "ix_campaign_action_rows_state",
        "campaign_action_rows",
        ["action_id", "state", "id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_campaign_action_rows_state", table_name="campaign_action_rows")
    op.drop_table("campaign_action_rows")
    op.drop_index("ix_campaign_actions_state", table_name="campaign_actions")
    op.drop_table("campaign_actions")
