"""clicks: presses of campaign callback buttons and openings of tracked links

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from botdesk.store.models import TZDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "clicks",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "campaign_id",
            BigId,
            sa.ForeignKey(
                "campaigns.id", ondelete="CASCADE", name="fk_clicks_campaign_id_campaigns"
            ),
            nullable=False,
        ),
        sa.Column("button", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.BigInteger(), nullable=False),
        sa.Column("subscriber_id", sa.BigInteger(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("via", sa.String(8), nullable=False),
        sa.Column("update_id", sa.BigInteger(), nullable=True),
        sa.Column("at", TZDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_clicks"),
    )
    op.create_index(
        "ix_clicks_campaign_button", "clicks", ["campaign_id", "button", "subscriber_id"]
    )
    op.create_table(
        "click_tracking",
        sa.Column(
            "campaign_id",
            BigId,
            sa.ForeignKey(
                "campaigns.id", ondelete="CASCADE", name="fk_click_tracking_campaign_id_campaigns"
            ),
            nullable=False,
        ),
        sa.Column("tracked", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "tracked", name="pk_click_tracking"),
    )


def downgrade() -> None:
    op.drop_table("click_tracking")
    op.drop_index("ix_clicks_campaign_button", table_name="clicks")
    op.drop_table("clicks")
