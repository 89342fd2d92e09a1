"""The schema of the whole product, as SQLAlchemy 2 declarative tables.

Services use these tables through Core statements on an ``AsyncConnection`` (see ``db.py``):
set-based writes keep the delivery ledger fast, and no ORM identity map grows with the
audience. Interfaces (CLI, GUI) never import this module.

Times are stored as timezone-aware UTC. Status and state columns are short strings so that
both SQLite and PostgreSQL index them the same way; the allowed values live beside them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BigInteger primary keys autoincrement on PostgreSQL; SQLite only autoincrements INTEGER.
BigId = BigInteger().with_variant(Integer(), "sqlite")

SUBSCRIBER_STATUSES = ("active", "unsubscribed", "blocked", "deactivated", "gone")
CONSENT_KINDS = (
    "subscribe",
    "resubscribe",
    "unsubscribe",
    "block",
    "unblock",
    "deactivated",
    "gone",
    "imported",  # recorded by `subscribers import`: started the bot before it came to botdesk
)
CAMPAIGN_STATES = ("draft", "scheduled", "running", "paused", "completed", "cancelled")
DELIVERY_STATES = ("pending", "sending", "sent", "failed", "suppressed", "uncertain", "cancelled")


def utcnow() -> datetime:
    return datetime.now(UTC)


class TZDateTime(TypeDecorator[datetime]):
    """DateTime that stores UTC and always hands back aware values (SQLite keeps naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC)
            if dialect.name == "sqlite":
                value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Bot(Base):
    __tablename__ = "bots"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    telegram_id: Mapped[int] = mapped_column(BigInteger)
    username: Mapped[str] = mapped_column(String(64))
    api_base: Mapped[str | None] = mapped_column(String(512))
    # The secret's name in the SecretStore; the token itself never enters the database.
    token_secret: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default="active")
    status_reason: Mapped[str | None] = mapped_column(Text)
    # Long-polling offset: the next update id to ask for, committed with the processed ids.
    update_offset: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
    # Send rates (msg/s) learned from Telegram's 429s, free and paid; NULL: the configured one.
    learned_rate: Mapped[float | None] = mapped_column(Float)
    learned_paid_rate: Mapped[float | None] = mapped_column(Float)


class Subscriber(Base):
    __tablename__ = "subscribers"
    __table_args__ = (
        UniqueConstraint("bot_id", "chat_id"),
        Index("ix_subscribers_bot_status", "bot_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    bot_id: Mapped[int] = mapped_column(ForeignKey("bots.id", ondelete="CASCADE"))
    chat_id: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="active")
    source: Mapped[str | None] = mapped_column(String(80))
    first_name: Mapped[str | None] = mapped_column(String(256))
    username: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str | None] = mapped_column(String(16))
    is_group: Mapped[bool] = mapped_column(Boolean, default=False)
    fields: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    timezone: Mapped[str | None] = mapped_column(String(64))  # IANA name (checked on write)
    joined_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
    left_at: Mapped[datetime | None] = mapped_column(TZDateTime())
    last_seen_at: Mapped[datetime | None] = mapped_column(TZDateTime())
    updated_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)


class SubscriberTag(Base):
    __tablename__ = "subscriber_tags"

    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class ConsentEvent(Base):
    """Append-only: who opted in or out of which bot, when, and why."""

    __tablename__ = "consent_events"
    __table_args__ = (Index("ix_consent_bot_chat", "bot_id", "chat_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    bot_id: Mapped[int] = mapped_column(ForeignKey("bots.id", ondelete="CASCADE"))
    chat_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    source: Mapped[str | None] = mapped_column(String(80))
    update_id: Mapped[int | None] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)


class ProcessedUpdate(Base):
    """Update ids already handled, per bot: a restart never handles an update twice."""

    __tablename__ = "processed_updates"

    bot_id: Mapped[int] = mapped_column(ForeignKey("bots.id", ondelete="CASCADE"), primary_key=True)
    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)


class Campaign(Base):
    __tablename__ = "campaigns"
    __table_args__ = (Index("ix_campaigns_state_at", "state", "scheduled_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    bot_id: Mapped[int] = mapped_column(ForeignKey("bots.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16), default="draft")
    text: Mapped[str] = mapped_column(Text)
    parse_mode: Mapped[str] = mapped_column(String(16), default="plain")
    # photo | document | video | animation | audio | voice | album | copy
    media_kind: Mapped[str | None] = mapped_column(String(16))
    media_path: Mapped[str | None] = mapped_column(Text)
    media_file_id: Mapped[str | None] = mapped_column(String(256))
    # An album's items [{"kind", "path", "file_id"}] (media_kind "album", migration 0009).
    media_items: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    # A copy's source {"chat": id or "@name", "message_id": n} (media_kind "copy").
    copy_from: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    buttons: Mapped[list[list[str]] | None] = mapped_column(JSON)
    segment: Mapped[str | None] = mapped_column(Text)
    paid: Mapped[bool] = mapped_column(Boolean, default=False)
    # How every message of the campaign is sent (campaigns.SendOptions as JSON; NULL: defaults).
    options: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    audience: Mapped[int] = mapped_column(Integer, default=0)
    scheduled_at: Mapped[datetime | None] = mapped_column(TZDateTime())
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(TZDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(TZDateTime())


class Delivery(Base):
    """One row per recipient of a campaign: the ledger. See DESIGN.md, delivery semantics."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("campaign_id", "subscriber_id"),
        Index("ix_deliveries_campaign_state", "campaign_id", "state", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int] = mapped_column(BigInteger)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    # Every message of an album, in order (message_id is the first); NULL for one message.
    message_ids: Mapped[list[int] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    not_before: Mapped[float | None] = mapped_column(Float)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime | None] = mapped_column(TZDateTime())


class BotLease(Base):
    """Which worker owns a bot's sending right now (heartbeat renews, expiry frees it)."""

    __tablename__ = "bot_leases"

    bot_id: Mapped[int] = mapped_column(ForeignKey("bots.id", ondelete="CASCADE"), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(TZDateTime())


class Worker(Base):
    """Live `botdesk serve` processes (heartbeat), so they can share the bots fairly."""

    __tablename__ = "workers"

    owner: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(TZDateTime())


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("bot_id", "chat_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    bot_id: Mapped[int] = mapped_column(ForeignKey("bots.id", ondelete="CASCADE"))
    chat_id: Mapped[int] = mapped_column(BigInteger)
    needs_human: Mapped[bool] = mapped_column(Boolean, default=False)
    handoff_reason: Mapped[str | None] = mapped_column(Text)
    last_message_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_conversation", "conversation_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    direction: Mapped[str] = mapped_column(String(4))  # in | out
    author: Mapped[str] = mapped_column(String(16))  # user | bot | assistant | operator
    text: Mapped[str] = mapped_column(Text)
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)
    update_id: Mapped[int | None] = mapped_column(BigInteger)
    meta: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)


class Outbox(Base):
    """Conversational replies (welcome, rule reply, assistant answer, operator reply) to send.

    Written ahead: an operator's reply when it is queued, the bot's own replies in the
    transaction of the update they answer. The process that owns the bot sends them through
    its one rate limiter (reply priority): ``pending -> sending -> sent | failed |
    uncertain``; ``sending`` is committed before the request leaves, so a row found
    ``sending`` after a crash becomes ``uncertain`` and is never resent. A question for the
    assistant is written ahead ``asking`` (its answer not computed yet) and becomes
    ``pending`` with the answer, or ``failed`` when it goes to a human (inbox.answer_ask).
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_bot_state", "bot_id", "state", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    bot_id: Mapped[int] = mapped_column(ForeignKey("bots.id", ondelete="CASCADE"))
    chat_id: Mapped[int] = mapped_column(BigInteger)
    text: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(16), default="operator")
    state: Mapped[str] = mapped_column(String(16), default="pending")
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(TZDateTime())
    meta: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # An OutgoingMessage's media and buttons (a rule's reply), see runtime/outbox.py.
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    is_group: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class KnowledgeEntryRow(Base):
    __tablename__ = "knowledge_entries"
    __table_args__ = (UniqueConstraint("scope", "key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # The bot's name, or "*" for the shared knowledge base.
    scope: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(200))
    question: Mapped[str] = mapped_column(Text)
    variants: Mapped[list[str]] = mapped_column(JSON)
    answer: Mapped[str] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
    # {"ru": {"question": ..., "variants": [...], "answer": ...}}: versions in other languages
    translations: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


# -- campaign actions (edit / recall after sending): one block, see campaign_actions.py -------

ACTION_KINDS = ("edit", "recall")
ACTION_STATES = ("running", "completed", "cancelled")
ACTION_ROW_STATES = (
    "pending",
    "acting",
    "edited",
    "recalled",
    "failed",
    "uncertain",
    "suppressed",
    "cancelled",
)


class CampaignAction(Base):
    """An edit or a recall of a campaign's delivered messages (what, and how far it got)."""

    __tablename__ = "campaign_actions"
    __table_args__ = (Index("ix_campaign_actions_state", "state", "campaign_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # edit | recall
    state: Mapped[str] = mapped_column(String(16), default="running")
    # An edit's new content; NULL buttons keep none (an edit without a keyboard drops it).
    text: Mapped[str | None] = mapped_column(Text)
    parse_mode: Mapped[str | None] = mapped_column(String(16))
    buttons: Mapped[list[list[str]] | None] = mapped_column(JSON)
    media_kind: Mapped[str | None] = mapped_column(String(16))  # caption edit when set
    total: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(TZDateTime())


class CampaignActionRow(Base):
    """One delivered message an action edits or deletes: the action's own ledger.

    ``pending -> acting -> edited | recalled | failed | suppressed | uncertain`` (or
    ``cancelled`` while still pending); ``acting`` is committed before the request leaves and
    becomes ``uncertain`` after a crash.
    """

    __tablename__ = "campaign_action_rows"
    __table_args__ = (
        UniqueConstraint("action_id", "delivery_id"),
        Index("ix_campaign_action_rows_state", "action_id", "state", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    action_id: Mapped[int] = mapped_column(ForeignKey("campaign_actions.id", ondelete="CASCADE"))
    delivery_id: Mapped[int] = mapped_column(BigInteger)
    subscriber_id: Mapped[int] = mapped_column(BigInteger)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    not_before: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[datetime | None] = mapped_column(TZDateTime())


# -- clicks (issue 14) --------------------------------------------------------------------


class Click(Base):
    """One press of a campaign's button (callback) or one opening of its tracked link:
    written before the action it triggers. Every click is a row; unique clickers are the
    distinct subscribers per button."""

    __tablename__ = "clicks"
    __table_args__ = (Index("ix_clicks_campaign_button", "campaign_id", "button", "subscriber_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    button: Mapped[int] = mapped_column(Integer)  # index into the campaign's buttons
    delivery_id: Mapped[int] = mapped_column(BigInteger)
    subscriber_id: Mapped[int] = mapped_column(BigInteger)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    via: Mapped[str] = mapped_column(String(8))  # callback | link
    update_id: Mapped[int | None] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)


class ClickTracking(Base):
    """How a campaign's URL buttons went out: as tracked links (True) or plain URLs (False);
    written by each engine that sends it, so a campaign sent both ways shows both rows."""

    __tablename__ = "click_tracking"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    tracked: Mapped[bool] = mapped_column(Boolean, primary_key=True)


# --- A/B tests (issue 14) ------------------------------------------------------------------
# An A/B test is a campaign (the parent, which later carries the winner to the holdout) with
# one child campaign per variant: each child is an ordinary campaign the delivery worker sends
# unchanged, so every test delivery records its variant through its campaign.
AB_METRICS = ("clicks", "replies", "unsubscribes")


class AbTest(Base):
    __tablename__ = "ab_tests"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    metric: Mapped[str] = mapped_column(String(16))
    test_share: Mapped[float] = mapped_column(Float)
    decide_after_s: Mapped[float] = mapped_column(Float)
    seed: Mapped[int] = mapped_column(BigInteger)  # the split's seed, recorded
    started_at: Mapped[datetime | None] = mapped_column(TZDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(TZDateTime())
    winner: Mapped[int | None] = mapped_column(Integer)  # 1-based variant sent to the holdout
    decision: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class AbVariant(Base):
    __tablename__ = "ab_variants"

    parent_id: Mapped[int] = mapped_column(
        ForeignKey("ab_tests.campaign_id", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[int] = mapped_column(Integer, primary_key=True)  # 1-based
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))


class AbHoldout(Base):
    """The recipients outside the test share, fixed at the split; they get the winner."""

    __tablename__ = "ab_holdout"

    parent_id: Mapped[int] = mapped_column(
        ForeignKey("ab_tests.campaign_id", ondelete="CASCADE"), primary_key=True
    )
    subscriber_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)


# -- reply rules (issue 14: keyword replies and menus) ------------------------------------


class ReplyRuleSet(Base):
    """A bot's keyword rules as the operator loaded them: the validated YAML itself.

    Every worker serving the bot parses ``source`` again when ``version`` changes (the home may
    be shared through PostgreSQL, so no worker reads the operator's file).
    """

    __tablename__ = "reply_rule_sets"

    bot_id: Mapped[int] = mapped_column(ForeignKey("bots.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    filename: Mapped[str] = mapped_column(String(256))
    source: Mapped[str] = mapped_column(Text)
    loaded_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)


# -- sequences (issue 14: drip) ------------------------------------------------------------
# A sequence's steps are campaigns (state "running" while the sequence runs, "paused" while it
# is paused): each step sent to a subscriber is an ordinary delivery row of its step's campaign,
# so the delivery engine, its limiter and its ledger send it unchanged. ``sequences.py`` owns
# enrolment and scheduling; ``sequence_file.py`` the YAML format.
SEQUENCE_STATES = ("active", "paused")
ENROLMENT_STATES = ("active", "completed", "stopped", "excluded")
STOP_REASONS = ("unsubscribed", "blocked", "replied", "goal")


class DripSequence(Base):
    __tablename__ = "sequences"
    __table_args__ = (UniqueConstraint("bot_id", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    bot_id: Mapped[int] = mapped_column(ForeignKey("bots.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="active")
    version: Mapped[int] = mapped_column(Integer, default=1)
    filename: Mapped[str] = mapped_column(String(256))
    source: Mapped[str] = mapped_column(Text)  # the validated YAML, parsed again on each tick
    # Trigger cursor: the last consent event (start) or click (click) already looked at.
    cursor: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)


class SequenceStep(Base):
    __tablename__ = "sequence_steps"

    sequence_id: Mapped[int] = mapped_column(
        ForeignKey("sequences.id", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[int] = mapped_column(Integer, primary_key=True)  # 1-based
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )


class SequenceDroppedStep(Base):
    """A step campaign that ``sequence create --update`` dropped (cancelled): still a
    sequence's step for the campaign lists (hidden there) and ``sequence show``."""

    __tablename__ = "sequence_dropped_steps"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    sequence_id: Mapped[int] = mapped_column(
        ForeignKey("sequences.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)  # the step number it had
    version: Mapped[int] = mapped_column(Integer)  # the version that dropped it
    dropped_at: Mapped[datetime] = mapped_column(TZDateTime())


class SequenceEnrolment(Base):
    """One subscriber's way through one sequence (at most one per subscriber and sequence).

    ``step`` is the step being worked on; ``waiting`` the delivery row issued for it whose
    outcome is not yet read (NULL: the step is not issued yet, it is due at ``due_at``)."""

    __tablename__ = "sequence_enrolments"
    __table_args__ = (
        UniqueConstraint("sequence_id", "subscriber_id"),
        Index("ix_sequence_enrolments_due", "sequence_id", "state", "due_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    sequence_id: Mapped[int] = mapped_column(ForeignKey("sequences.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int] = mapped_column(BigInteger)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16), default="active")
    stop_reason: Mapped[str | None] = mapped_column(String(16))
    step: Mapped[int] = mapped_column(Integer, default=1)
    due_at: Mapped[datetime | None] = mapped_column(TZDateTime())
    waiting: Mapped[int | None] = mapped_column(BigInteger)
    # Inbound messages up to this id were there before enrolment (they are not replies).
    seen_message: Mapped[int] = mapped_column(BigInteger, default=0)
    enrolled_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(TZDateTime())


TABLES = Base.metadata
