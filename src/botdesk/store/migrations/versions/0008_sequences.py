"""sequences, sequence_steps, sequence_enrolments: drip sequences after /start, a tag, a click

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from botdesk.store.models import TZDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "sequences",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("bot_id", _ID, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=256), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("cursor", sa.BigInteger(), nullable=False),
        sa.Column("created_at", TZDateTime(), nullable=False),
        sa.Column("updated_at", TZDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["bot_id"], ["bots.id"], name=op.f("fk_sequences_bot_id_bots"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sequences")),
        sa.UniqueConstraint("bot_id", "name", name=op.f("uq_sequences_bot_id")),
    )
    op.create_table(
        "sequence_steps",
        sa.Column("sequence_id", _ID, nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("campaign_id", _ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["sequence_id"],
            ["sequences.id"],
            name=op.f("fk_sequence_steps_sequence_id_sequences"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_sequence_steps_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("sequence_id", "number", name=op.f("pk_sequence_steps")),
    )
    op.create_index(
        op.f("ix_sequence_steps_campaign_id"), "sequence_steps", ["campaign_id"], unique=False
    )
    op.create_table(
        "sequence_enrolments",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("sequence_id", _ID, nullable=False),
        sa.Column("subscriber_id", sa.BigInteger(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("stop_reason", sa.String(length=16), nullable=True),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("due_at", TZDateTime(), nullable=True),
        sa.Column("waiting", sa.BigInteger(), nullable=True),
        sa.Column("seen_message", sa.BigInteger(), nullable=False),
        sa.Column("enrolled_at", TZDateTime(), nullable=False),
        sa.Column("finished_at", TZDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["sequence_id"],
            ["sequences.id"],
            name=op.f("fk_sequence_enrolments_sequence_id_sequences"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sequence_enrolments")),
        sa.UniqueConstraint(
            "sequence_id", "subscriber_id", name=op.f("uq_sequence_enrolments_sequence_id")
        ),
    )
    op.create_index(
        "ix_sequence_enrolments_due",
        "sequence_enrolments",
        ["sequence_id", "state", "due_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_sequence_enrolments_due", table_name="sequence_enrolments")
    op.drop_table("sequence_enrolments")
    op.drop_index(op.f("ix_sequence_steps_campaign_id"), table_name="sequence_steps")
    op.drop_table("sequence_steps")
    op.drop_table("sequences")
