"""subscribers.timezone (an IANA name, backfilled from the custom field); sequence_dropped_steps

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from botdesk.store.models import TZDateTime
from botdesk.timezones import is_zone

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("timezone", sa.String(length=64), nullable=True))
    # Backfill from the custom field that served as the time zone until now, where it names a
    # real zone (the distinct names are few: each is checked once, then set with one UPDATE).
    subs = sa.table("subscribers", sa.column("timezone", sa.String), sa.column("fields", sa.JSON))
    field = subs.c.fields["timezone"].as_string()
    conn = op.get_bind()
    names = [n for (n,) in conn.execute(sa.select(field).where(field.is_not(None)).distinct())]
    for name in names:
        if is_zone(name):
            conn.execute(sa.update(subs).where(field == name).values(timezone=name))
    op.create_table(
        "sequence_dropped_steps",
        sa.Column("campaign_id", _ID, nullable=False),
        sa.Column("sequence_id", _ID, nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("dropped_at", TZDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_sequence_dropped_steps_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sequence_id"],
            ["sequences.id"],
            name=op.f("fk_sequence_dropped_steps_sequence_id_sequences"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", name=op.f("pk_sequence_dropped_steps")),
    )
    op.create_index(
        op.f("ix_sequence_dropped_steps_sequence_id"),
        "sequence_dropped_steps",
        ["sequence_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_sequence_dropped_steps_sequence_id"), table_name="sequence_dropped_steps"
    )
    op.drop_table("sequence_dropped_steps")
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("timezone")
