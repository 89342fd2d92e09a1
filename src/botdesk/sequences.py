"""Drip sequences: store a sequence (its steps as campaigns), enrol on triggers, schedule and
issue steps, stop rules, pause/resume, statistics.

How a step is sent: each step is a campaign of its own (``sequence_steps``), kept ``running``
while the sequence runs. Issuing step N to a subscriber is one transaction that inserts the
subscriber's delivery row into step N's campaign and records it on the enrolment
(``waiting``); the bot's delivery engine sends it like any campaign row (same limiter, replies
first, ``pending -> sending -> sent | failed | suppressed | uncertain``). So a crash never
repeats a step (one row per subscriber and step campaign, the ledger's no-resend rule for
``sending``) and never skips one (the enrolment only moves on after reading the row's final
state). A step not sent because it expired or its segment did not match is a row too, in the
states ``expired`` or ``skipped``, so every step's rows add up to the enrolments that reached it.

``tick`` runs once a second per bot in the process that holds the bot's lease (the engine's
feed loop calls it through ``Campaigns.start_due``); each phase is one short write transaction:

1. enrol: /start consent events and clicks after the sequence's cursor; subscribers carrying
   the trigger tag not yet enrolled (holders of the tag when the sequence was created are
   ``excluded``). Only active, non-group subscribers of this bot; once per sequence.
2. stop: enrolments whose subscriber left (unsubscribed, blocked), reached the goal tag, or
   sent an inbound message (not a command, not a button) after enrolment; their step row
   still ``pending`` is cancelled.
3. settle: a step row in a final state moves the enrolment to the next step (due after its
   delay, out of quiet hours) or completes it.
4. issue: due steps: in quiet hours -> moved to the window's end; older than ``expires`` ->
   ``expired`` (the sequence goes on with the next step); segment not matched -> ``skipped``
   (goes on); else a ``pending`` row for the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import and_, delete, exists, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from botdesk import campaigns as campaigns_mod
from botdesk import clicks as clicks_mod
from botdesk import sequence_schedule as sched
from botdesk.bots import BotRecord
from botdesk.errors import NotFoundError, ValidationError
from botdesk.log import get_logger
from botdesk.segments import audience_filter
from botdesk.sequence_file import SequenceDef, Step, parse_sequence, read_sequence
from botdesk.store.db import Database
from botdesk.store.models import (
    Bot,
    Campaign,
    Click,
    ConsentEvent,
    Conversation,
    Delivery,
    DripSequence,
    Message,
    SequenceEnrolment,
    SequenceStep,
    Subscriber,
    SubscriberTag,
)

log = get_logger(__name__)

BATCH = 500
OPEN_ROW_STATES = ("pending", "sending")
# A step row is a delivery row, plus the two states of a step not sent (no message left).
STEP_ROW_STATES = (*campaigns_mod.STATES, "expired", "skipped")
_E = SequenceEnrolment


@dataclass(frozen=True)
class SequenceInfo:
    id: int
    bot: str
    name: str
    state: str
    version: int
    filename: str
    definition: SequenceDef
    steps: tuple[int, ...]  # campaign id per step
    created_at: datetime
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        d = self.definition
        return {
            "id": self.id,
            "bot": self.bot,
            "name": self.name,
            "state": self.state,
            "version": self.version,
            "filename": self.filename,
            "trigger": d.trigger.describe(),
            "stop_on_reply": d.stop_on_reply,
            "goal_tag": d.goal_tag,
            "quiet_hours": d.quiet.describe() if d.quiet else None,
            "steps": [
                {
                    "number": s.number,
                    "campaign_id": cid,
                    "text": s.text,
                    "parse_mode": s.parse_mode,
                    "photo": s.photo,
                    "document": s.document,
                    "buttons": [{"label": lab, "target": t} for lab, t in s.buttons],
                    "delay_s": s.delay.total_seconds(),
                    "after": s.after,
                    "segment": s.segment,
                    "expires_s": s.expires.total_seconds() if s.expires else None,
                }
                for s, cid in zip(d.steps, self.steps, strict=False)
            ],
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


_parsed: dict[tuple[str, str], SequenceDef] = {}
MAX_PARSED = 256


def _definition(seq_id: int, version: int, source: str, filename: str) -> SequenceDef:
    """The stored YAML parsed again, cached by its text (ids repeat across databases, e.g.
    two homes in one process; the text of a version does not change)."""
    key = (source, filename)
    d = _parsed.get(key)
    if d is None:
        d = parse_sequence(source, filename=filename)
        if len(_parsed) >= MAX_PARSED:
            _parsed.clear()
        _parsed[key] = d
    return d


def _insert_ignore(conn: AsyncConnection, table: Any) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def _step_values(step: Step, *, name: str, bot_id: int, now: datetime) -> dict[str, Any]:
    media = step.photo or step.document
    kind = "photo" if step.photo else "document" if step.document else None
    return {
        "bot_id": bot_id,
        "name": f"sequence {name} · step {step.number}",
        "text": step.text,
        "parse_mode": step.parse_mode,
        "media_kind": kind,
        "media_path": media,
        "media_file_id": None,
        "buttons": [list(b) for b in step.buttons] or None,
        "segment": step.segment,
        "audience": 0,
        "started_at": now,
    }


def _check_media(step: Step, bot: str) -> None:
    if step.photo or step.document:
        spec = campaigns_mod.CampaignSpec(
            bot=bot,
            text=step.text,
            photo=Path(step.photo) if step.photo else None,
            document=Path(step.document) if step.document else None,
        )
        try:
            campaigns_mod._check_media(spec)
        except ValidationError as exc:
            raise ValidationError(f"step {step.number}: {exc}") from None


class Sequences:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- storing ---------------------------------------------------------------------

    async def create(
        self, path: Path, bot: BotRecord, *, now: datetime, update_existing: bool = False
    ) -> tuple[SequenceInfo, bool]:
        """Validate ``path`` and store it as a new sequence of ``bot`` (or, with
        ``update_existing``, as the new version of the sequence of that name). True if new."""
        definition, source = read_sequence(path)
        for step in definition.steps:
            _check_media(step, bot.name)
        async with self.db.write() as conn:
            await self._resolve_click(conn, definition, bot.id)
            existing = (
                await conn.execute(
                    select(DripSequence.id, DripSequence.version, DripSequence.state).where(
                        DripSequence.bot_id == bot.id, DripSequence.name == definition.name
                    )
                )
            ).first()
            if existing is not None and not update_existing:
                raise ValidationError(
                    f"{bot.name} already has a sequence {definition.name!r} "
                    "(add --update to replace its steps)"
                )
            if existing is None:
                seq_id = await self._insert(conn, definition, source, path.name, bot, now)
                created = True
            else:
                seq_id = existing[0]
                await self._replace(conn, seq_id, existing, definition, source, path.name, bot, now)
                created = False
        return await self.get(seq_id), created

    async def _resolve_click(
        self, conn: AsyncConnection, d: SequenceDef, bot_id: int
    ) -> int | None:
        """A click trigger's button index in its campaign (checked to exist on this bot)."""
        t = d.trigger
        if t.kind != "click":
            return None
        row = (
            await conn.execute(
                select(Campaign.bot_id, Campaign.buttons).where(Campaign.id == t.campaign)
            )
        ).first()
        if row is None or row[0] != bot_id:
            raise ValidationError(f"trigger: no campaign {t.campaign} on this bot")
        return _button_index(d, row[1])

    async def _insert(
        self,
        conn: AsyncConnection,
        d: SequenceDef,
        source: str,
        filename: str,
        bot: BotRecord,
        now: datetime,
    ) -> int:
        cursor = 0
        if d.trigger.kind == "start":  # only /starts from now on
            cursor = int(
                (
                    await conn.execute(
                        select(func.max(ConsentEvent.id)).where(ConsentEvent.bot_id == bot.id)
                    )
                ).scalar()
                or 0
            )
        elif d.trigger.kind == "click":
            cursor = int((await conn.execute(select(func.max(Click.id)))).scalar() or 0)
        seq_id = (
            await conn.execute(
                insert(DripSequence)
                .values(
                    bot_id=bot.id,
                    name=d.name,
                    state="active",
                    version=1,
                    filename=filename[:256],
                    source=source,
                    cursor=cursor,
                    created_at=now,
                    updated_at=now,
                )
                .returning(DripSequence.id)
            )
        ).scalar_one()
        for step in d.steps:
            await self._add_step(conn, seq_id, step, d.name, bot.id, "running", now)
        if d.trigger.kind == "tag":  # those who carry the tag already were not "tagged now"
            holders = (
                await conn.execute(
                    select(Subscriber.id, Subscriber.chat_id).where(
                        Subscriber.bot_id == bot.id,
                        Subscriber.id.in_(
                            select(SubscriberTag.subscriber_id).where(
                                SubscriberTag.tag == d.trigger.tag
                            )
                        ),
                    )
                )
            ).all()
            if holders:
                await conn.execute(
                    insert(_E),
                    [
                        {
                            "sequence_id": seq_id,
                            "subscriber_id": sid,
                            "chat_id": chat,
                            "state": "excluded",
                            "step": 0,
                            "seen_message": 0,
                            "enrolled_at": now,
                        }
                        for sid, chat in holders
                    ],
                )
        return int(seq_id)

    async def _add_step(
        self,
        conn: AsyncConnection,
        seq_id: int,
        step: Step,
        name: str,
        bot_id: int,
        state: str,
        now: datetime,
    ) -> None:
        cid = (
            await conn.execute(
                insert(Campaign)
                .values(**_step_values(step, name=name, bot_id=bot_id, now=now), state=state)
                .returning(Campaign.id)
            )
        ).scalar_one()
        await conn.execute(
            insert(SequenceStep).values(sequence_id=seq_id, number=step.number, campaign_id=cid)
        )

    async def _replace(
        self,
        conn: AsyncConnection,
        seq_id: int,
        existing: Any,
        d: SequenceDef,
        source: str,
        filename: str,
        bot: BotRecord,
        now: datetime,
    ) -> None:
        """A new version: steps that exist get the new content (rows already issued keep
        what they were sent with); new steps get campaigns; dropped steps are cancelled and
        enrolments past the new end complete."""
        _id, version, state = existing
        old = await self._old_trigger(conn, seq_id)
        if old is not None and old != (d.trigger.kind, d.trigger.tag, d.trigger.campaign):
            raise ValidationError(
                "an update cannot change the trigger; create a sequence with another name"
            )
        steps = dict(
            (
                await conn.execute(
                    select(SequenceStep.number, SequenceStep.campaign_id).where(
                        SequenceStep.sequence_id == seq_id
                    )
                )
            ).all()
        )
        camp_state = "running" if state == "active" else "paused"
        for step in d.steps:
            if step.number in steps:
                values = _step_values(step, name=d.name, bot_id=bot.id, now=now)
                values.pop("started_at")
                values.pop("audience")
                await conn.execute(
                    update(Campaign).where(Campaign.id == steps[step.number]).values(**values)
                )
            else:
                await self._add_step(conn, seq_id, step, d.name, bot.id, camp_state, now)
        for number, cid in steps.items():
            if number > len(d.steps):
                await conn.execute(
                    update(Delivery)
                    .where(Delivery.campaign_id == cid, Delivery.state == "pending")
                    .values(state="cancelled", updated_at=now, lease_owner=None)
                )
                await conn.execute(
                    update(Campaign)
                    .where(Campaign.id == cid)
                    .values(state="cancelled", finished_at=now)
                )
                await conn.execute(
                    delete(SequenceStep).where(
                        SequenceStep.sequence_id == seq_id, SequenceStep.number == number
                    )
                )
        await conn.execute(
            update(DripSequence)
            .where(DripSequence.id == seq_id)
            .values(version=version + 1, source=source, filename=filename[:256], updated_at=now)
        )

    async def _old_trigger(
        self, conn: AsyncConnection, seq_id: int
    ) -> tuple[str, str | None, int | None] | None:
        row = (
            await conn.execute(
                select(DripSequence.version, DripSequence.source, DripSequence.filename).where(
                    DripSequence.id == seq_id
                )
            )
        ).first()
        if row is None:
            return None
        t = _definition(seq_id, row[0], row[1], row[2]).trigger
        return (t.kind, t.tag, t.campaign)

    # -- reading ---------------------------------------------------------------------

    async def _rows(self, conn: AsyncConnection, where: Any) -> list[SequenceInfo]:
        rows = (
            await conn.execute(
                select(
                    DripSequence.id,
                    Bot.name,
                    DripSequence.name,
                    DripSequence.state,
                    DripSequence.version,
                    DripSequence.filename,
                    DripSequence.source,
                    DripSequence.created_at,
                    DripSequence.updated_at,
                )
                .join(Bot, Bot.id == DripSequence.bot_id)
                .where(where)
                .order_by(DripSequence.id)
            )
        ).all()
        out = []
        for r in rows:
            steps = tuple(
                (
                    await conn.execute(
                        select(SequenceStep.campaign_id)
                        .where(SequenceStep.sequence_id == r[0])
                        .order_by(SequenceStep.number)
                    )
                ).scalars()
            )
            out.append(
                SequenceInfo(
                    id=r[0],
                    bot=r[1],
                    name=r[2],
                    state=r[3],
                    version=r[4],
                    filename=r[5],
                    definition=_definition(r[0], r[4], r[6], r[5]),
                    steps=steps,
                    created_at=r[7],
                    updated_at=r[8],
                )
            )
        return out

    async def get(self, seq_id: int) -> SequenceInfo:
        async with self.db.read() as conn:
            found = await self._rows(conn, DripSequence.id == seq_id)
        if not found:
            raise NotFoundError(f"no sequence with id {seq_id}")
        return found[0]

    async def find(self, ref: str, *, bot: str | None = None) -> SequenceInfo:
        """A sequence by id or by name (``bot`` tells same-named sequences apart)."""
        where: Any = DripSequence.id == int(ref) if ref.isdigit() else DripSequence.name == ref
        if bot is not None:
            where = and_(where, Bot.name == bot)
        async with self.db.read() as conn:
            found = await self._rows(conn, where)
        if not found:
            raise NotFoundError(f"no sequence {ref!r}" + (f" on {bot}" if bot else ""))
        if len(found) > 1:
            bots = ", ".join(s.bot for s in found)
            raise ValidationError(f"several sequences are named {ref!r} ({bots}): add --bot")
        return found[0]

    async def list(self, *, bot: str | None = None) -> list[SequenceInfo]:
        async with self.db.read() as conn:
            return await self._rows(conn, Bot.name == bot if bot else DripSequence.id > 0)

    # -- pause / resume --------------------------------------------------------------

    async def set_state(
        self, ref: str, state: str, *, bot: str | None, now: datetime
    ) -> SequenceInfo:
        """``paused``: no step is issued or sent (rows already issued wait); ``active``: go on
        (steps that fell due meanwhile are sent now, unless expired)."""
        info = await self.find(ref, bot=bot)
        camp = "running" if state == "active" else "paused"
        async with self.db.write() as conn:
            await conn.execute(
                update(DripSequence)
                .where(DripSequence.id == info.id)
                .values(state=state, updated_at=now)
            )
            await conn.execute(
                update(Campaign)
                .where(Campaign.id.in_(info.steps), Campaign.state.in_(("running", "paused")))
                .values(state=camp)
            )
        return await self.get(info.id)

    # -- statistics ------------------------------------------------------------------

    async def stats(self, ref: str, *, bot: str | None = None) -> dict[str, Any]:
        info = await self.find(ref, bot=bot)
        async with self.db.read() as conn:
            by = (
                await conn.execute(
                    select(_E.state, _E.stop_reason, func.count())
                    .where(_E.sequence_id == info.id, _E.state != "excluded")
                    .group_by(_E.state, _E.stop_reason)
                )
            ).all()
            steps = []
            for number, cid in enumerate(info.steps, start=1):
                counts = dict(
                    (
                        await conn.execute(
                            select(Delivery.state, func.count())
                            .where(Delivery.campaign_id == cid)
                            .group_by(Delivery.state)
                        )
                    ).all()
                )
                row: dict[str, Any] = {"step": number, "campaign_id": cid}
                row.update({s: int(counts.get(s, 0)) for s in STEP_ROW_STATES})
                sent = row["sent"]
                button_stats = await clicks_mod.summary(conn, cid, delivered=sent)
                row["clicks"] = button_stats
                steps.append(row)
        stopped: dict[str, int] = {}
        totals = {"active": 0, "completed": 0, "stopped": 0}
        for state, reason, n in by:
            totals[state] = totals.get(state, 0) + int(n)
            if state == "stopped":
                stopped[reason or "unknown"] = stopped.get(reason or "unknown", 0) + int(n)
        return {
            "id": info.id,
            "name": info.name,
            "bot": info.bot,
            "state": info.state,
            "enrolled": sum(totals.values()),
            "active": totals["active"],
            "completed": totals["completed"],
            "stopped": totals["stopped"],
            "stopped_by": stopped,
            "steps": steps,
        }


def _button_index(d: SequenceDef, buttons: Any) -> int:
    t = d.trigger
    labels = [b[0] for b in buttons or []]
    if isinstance(t.button, int):
        if t.button >= len(labels):
            raise ValidationError(
                f"trigger: campaign {t.campaign} has {len(labels)} button(s), not {t.button + 1}"
            )
        return t.button
    if t.button not in labels:
        raise ValidationError(f"trigger: campaign {t.campaign} has no button {t.button!r}")
    return labels.index(t.button)


# -- the runner: one tick per bot and second, in the bot's lease owner -----------------------


async def tick(db: Database, bot_id: int, *, now: datetime) -> None:
    """Enrol, stop, settle and issue for every active sequence of the bot."""
    async with db.read() as conn:
        seqs = (
            await conn.execute(
                select(
                    DripSequence.id,
                    DripSequence.version,
                    DripSequence.source,
                    DripSequence.filename,
                    DripSequence.cursor,
                ).where(DripSequence.bot_id == bot_id, DripSequence.state == "active")
            )
        ).all()
    for seq_id, version, source, filename, cursor in seqs:
        try:
            d = _definition(seq_id, version, source, filename)
            runner = _Runner(db, bot_id, seq_id, d, now)
            await runner.run(cursor)
        except Exception as exc:  # one broken sequence must not stop the bot's sending
            log.error("sequence tick failed", sequence=seq_id, error=str(exc))


class _Runner:
    def __init__(self, db: Database, bot_id: int, seq_id: int, d: SequenceDef, now: datetime):
        self.db = db
        self.bot_id = bot_id
        self.seq_id = seq_id
        self.d = d
        self.now = now
        self.default_tz = d.quiet.timezone if d.quiet else "UTC"

    async def run(self, cursor: int) -> None:
        async with self.db.read() as conn:
            self.steps: dict[int, int] = dict(
                (
                    await conn.execute(
                        select(SequenceStep.number, SequenceStep.campaign_id).where(
                            SequenceStep.sequence_id == self.seq_id
                        )
                    )
                ).all()
            )
        await self.enrol(cursor)
        await self.stop()
        await self.settle()
        await self.issue()

    def _due(
        self, step: Step, fields: Any, *, enrolled_at: datetime, done: datetime | None
    ) -> datetime:
        zone = sched.zone_for(fields, self.default_tz)
        at = sched.due(step, enrolled_at=enrolled_at, previous_done=done)
        return sched.outside_quiet(at, self.d.quiet, zone)

    # 1. enrol ----------------------------------------------------------------------

    async def enrol(self, cursor: int) -> None:
        t = self.d.trigger
        async with self.db.write() as conn:
            if t.kind == "start":
                rows = (
                    await conn.execute(
                        select(
                            ConsentEvent.id,
                            ConsentEvent.source,
                            ConsentEvent.at,
                            Subscriber.id,
                            Subscriber.chat_id,
                            Subscriber.status,
                            Subscriber.is_group,
                            Subscriber.fields,
                        )
                        .join(
                            Subscriber,
                            and_(
                                Subscriber.bot_id == ConsentEvent.bot_id,
                                Subscriber.chat_id == ConsentEvent.chat_id,
                            ),
                        )
                        .where(
                            ConsentEvent.bot_id == self.bot_id,
                            ConsentEvent.id > cursor,
                            ConsentEvent.kind.in_(("subscribe", "resubscribe")),
                        )
                        .order_by(ConsentEvent.id)
                        .limit(BATCH)
                    )
                ).all()
                for eid, src, at, sid, chat, status, group, fields in rows:
                    cursor = max(cursor, eid)
                    if t.source is not None and src != t.source:
                        continue
                    if status == "active" and not group:
                        await self._enrol_one(conn, sid, chat, fields, at)
            elif t.kind == "click":
                idx = await self._click_button(conn)
                rows = (
                    await conn.execute(
                        select(
                            Click.id,
                            Click.at,
                            Subscriber.id,
                            Subscriber.chat_id,
                            Subscriber.status,
                            Subscriber.fields,
                        )
                        .join(Subscriber, Subscriber.id == Click.subscriber_id)
                        .where(
                            Click.campaign_id == t.campaign,
                            Click.button == idx,
                            Click.id > cursor,
                        )
                        .order_by(Click.id)
                        .limit(BATCH)
                    )
                ).all()
                for cid, at, sid, chat, status, fields in rows:
                    cursor = max(cursor, cid)
                    if status == "active":
                        await self._enrol_one(conn, sid, chat, fields, at)
            else:
                rows = (
                    await conn.execute(
                        select(Subscriber.id, Subscriber.chat_id, Subscriber.fields)
                        .join(SubscriberTag, SubscriberTag.subscriber_id == Subscriber.id)
                        .where(
                            Subscriber.bot_id == self.bot_id,
                            Subscriber.status == "active",
                            Subscriber.is_group.is_(False),
                            SubscriberTag.tag == t.tag,
                            ~exists().where(
                                _E.sequence_id == self.seq_id, _E.subscriber_id == Subscriber.id
                            ),
                        )
                        .limit(BATCH)
                    )
                ).all()
                for sid, chat, fields in rows:
                    await self._enrol_one(conn, sid, chat, fields, self.now)
            await conn.execute(
                update(DripSequence)
                .where(DripSequence.id == self.seq_id, DripSequence.cursor < cursor)
                .values(cursor=cursor)
            )

    async def _click_button(self, conn: AsyncConnection) -> int:
        buttons = (
            await conn.execute(
                select(Campaign.buttons).where(Campaign.id == self.d.trigger.campaign)
            )
        ).scalar()
        return _button_index(self.d, buttons)

    async def _enrol_one(
        self, conn: AsyncConnection, sid: int, chat: int, fields: Any, at: datetime
    ) -> None:
        seen = (
            await conn.execute(
                select(func.max(Message.id))
                .join(Conversation, Conversation.id == Message.conversation_id)
                .where(Conversation.bot_id == self.bot_id, Conversation.chat_id == chat)
            )
        ).scalar() or 0
        first = self.d.steps[0]
        await conn.execute(
            _insert_ignore(conn, _E)
            .values(
                sequence_id=self.seq_id,
                subscriber_id=sid,
                chat_id=chat,
                state="active",
                step=1,
                due_at=self._due(first, fields, enrolled_at=at, done=None),
                seen_message=int(seen),
                enrolled_at=at,
            )
            .on_conflict_do_nothing(index_elements=["sequence_id", "subscriber_id"])
        )

    # 2. stop -----------------------------------------------------------------------

    async def stop(self) -> None:
        active = and_(_E.sequence_id == self.seq_id, _E.state == "active")
        stopped = {"state": "stopped", "finished_at": self.now}
        subs = select(Subscriber.id).where(Subscriber.bot_id == self.bot_id)
        async with self.db.write() as conn:
            await conn.execute(
                update(_E)
                .where(
                    active, _E.subscriber_id.in_(subs.where(Subscriber.status == "unsubscribed"))
                )
                .values(**stopped, stop_reason="unsubscribed")
            )
            await conn.execute(
                update(_E)
                .where(
                    active,
                    _E.subscriber_id.in_(
                        subs.where(Subscriber.status.not_in(("active", "unsubscribed")))
                    ),
                )
                .values(**stopped, stop_reason="blocked")
            )
            if self.d.goal_tag:
                await conn.execute(
                    update(_E)
                    .where(
                        active,
                        _E.subscriber_id.in_(
                            select(SubscriberTag.subscriber_id).where(
                                SubscriberTag.tag == self.d.goal_tag
                            )
                        ),
                    )
                    .values(**stopped, stop_reason="goal")
                )
            if self.d.stop_on_reply:
                replied = exists().where(
                    Conversation.bot_id == self.bot_id,
                    Conversation.chat_id == _E.chat_id,
                    Message.conversation_id == Conversation.id,
                    Message.direction == "in",
                    Message.id > _E.seen_message,
                    ~Message.text.startswith("/"),
                    ~Message.text.startswith("[button]"),
                )
                await conn.execute(
                    update(_E).where(active, replied).values(**stopped, stop_reason="replied")
                )
            # A step issued but not yet sent is not sent to someone who stopped.
            await conn.execute(
                update(Delivery)
                .where(
                    Delivery.id.in_(
                        select(_E.waiting).where(
                            _E.sequence_id == self.seq_id,
                            _E.state == "stopped",
                            _E.finished_at == self.now,
                            _E.waiting.is_not(None),
                        )
                    ),
                    Delivery.state == "pending",
                )
                .values(
                    state="cancelled",
                    error="sequence stopped",
                    updated_at=self.now,
                    lease_owner=None,
                )
            )

    # 3. settle ---------------------------------------------------------------------

    async def settle(self) -> None:
        async with self.db.write() as conn:
            rows = (
                await conn.execute(
                    select(
                        _E.id,
                        _E.step,
                        _E.waiting,
                        _E.enrolled_at,
                        Delivery.updated_at,
                        Subscriber.fields,
                    )
                    .join(Delivery, Delivery.id == _E.waiting)
                    .join(Subscriber, Subscriber.id == _E.subscriber_id, isouter=True)
                    .where(
                        _E.sequence_id == self.seq_id,
                        _E.state == "active",
                        _E.waiting.is_not(None),
                        Delivery.state.not_in(OPEN_ROW_STATES),
                    )
                    .limit(BATCH)
                )
            ).all()
            for eid, step, waiting, enrolled_at, done_at, fields in rows:
                nxt = step + 1
                guard = and_(_E.id == eid, _E.waiting == waiting)
                if nxt > len(self.d.steps):
                    await conn.execute(
                        update(_E).where(guard).values(state="completed", finished_at=self.now)
                    )
                    continue
                due_at = self._due(
                    self.d.steps[nxt - 1], fields, enrolled_at=enrolled_at, done=done_at or self.now
                )
                await conn.execute(
                    update(_E).where(guard).values(step=nxt, waiting=None, due_at=due_at)
                )

    # 4. issue ----------------------------------------------------------------------

    async def issue(self) -> None:
        async with self.db.write() as conn:
            rows = (
                await conn.execute(
                    select(
                        _E.id, _E.step, _E.due_at, _E.subscriber_id, _E.chat_id, Subscriber.fields
                    )
                    .join(Subscriber, Subscriber.id == _E.subscriber_id, isouter=True)
                    .where(
                        _E.sequence_id == self.seq_id,
                        _E.state == "active",
                        _E.waiting.is_(None),
                        _E.due_at <= self.now,
                    )
                    .order_by(_E.due_at)
                    .limit(BATCH)
                )
            ).all()
            for eid, number, due_at, sid, chat, fields in rows:
                guard = and_(_E.id == eid, _E.waiting.is_(None), _E.state == "active")
                if number > len(self.d.steps) or number not in self.steps:
                    await conn.execute(
                        update(_E).where(guard).values(state="completed", finished_at=self.now)
                    )
                    continue
                step = self.d.steps[number - 1]
                zone = sched.zone_for(fields, self.default_tz)
                quiet = sched.quiet_end(self.now, self.d.quiet, zone)
                if quiet is not None:  # came due (or the worker came back) in quiet hours
                    await conn.execute(update(_E).where(guard).values(due_at=quiet))
                    continue
                state, error = "pending", None
                if sched.expired(step, due_at=due_at, now=self.now):
                    state = "expired"
                    error = f"due at {due_at.isoformat()}, not sent within {step.expires}"
                elif step.segment and not await self._matches(conn, sid, step.segment):
                    state, error = "skipped", "segment condition not met"
                rid = await self._row(conn, self.steps[number], sid, chat, state, error)
                await conn.execute(update(_E).where(guard).values(waiting=rid))

    async def _matches(self, conn: AsyncConnection, sid: int, segment: str) -> bool:
        where = audience_filter(self.bot_id, segment, now=self.now)
        found = (
            await conn.execute(select(Subscriber.id).where(where, Subscriber.id == sid))
        ).first()
        return found is not None

    async def _row(
        self, conn: AsyncConnection, cid: int, sid: int, chat: int, state: str, error: str | None
    ) -> int:
        final = state != "pending"
        res = await conn.execute(
            _insert_ignore(conn, Delivery)
            .values(
                campaign_id=cid,
                subscriber_id=sid,
                chat_id=chat,
                state=state,
                attempts=0,
                error=error,
                updated_at=self.now if final else None,
            )
            .on_conflict_do_nothing(index_elements=["campaign_id", "subscriber_id"])
            .returning(Delivery.id)
        )
        rid = res.scalar()
        if rid is None:  # issued before (cannot happen with the guard; never twice anyway)
            rid = (
                await conn.execute(
                    select(Delivery.id).where(
                        Delivery.campaign_id == cid, Delivery.subscriber_id == sid
                    )
                )
            ).scalar_one()
        return int(rid)
