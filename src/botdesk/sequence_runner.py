"""The sequence runner: enrol on triggers, apply stop rules, settle and issue due steps.

How steps are sent and why a crash neither skips nor repeats one: ``sequences.py``.

``tick`` runs once a second per bot in the process that holds the bot's lease (the engine's
feed loop calls it through ``Campaigns.start_due``). An idle tick costs two read statements
and no write: the bot's active sequences, and one probe (``_has_work``) naming those with a
step due, an issued row settled, a trigger to enrol or an enrolment at its goal tag. Each of
those runs four phases, each one short write transaction:

1. enrol: /start consent events and clicks after the sequence's cursor; subscribers carrying
   the trigger tag not yet enrolled (holders of the tag when the sequence was created are
   ``excluded``). Only active, non-group subscribers of this bot; once per sequence.
2. stop: enrolments whose subscriber left (unsubscribed, blocked), reached the goal tag, or
   sent an inbound message (not a command, not a button or menu press) after enrolment;
   their step row still ``pending`` is cancelled. The same rules are applied first in the
   transaction of the update that triggers them (``stop_now``, called by the runtime's update
   batch: a reply, /stop, a block, a goal tag from a rule, menu or button): the step row is
   cancelled before the engine can commit it ``sending``, so no step leaves after the reply
   that stopped it, even one claimed already. A goal tag given from the CLI, the console or
   a subscriber import stops it in that transaction too (``stop_tagged``). This phase
   catches the rest (a chat a send found blocked) before the sequence issues a step.
3. settle: a step row in a final state moves the enrolment to the next step (due after its
   delay, out of quiet hours) or completes it.
4. issue: due steps: in quiet hours -> moved to the window's end; older than ``expires`` ->
   ``expired`` (the sequence goes on with the next step); segment not matched -> ``skipped``
   (goes on); else a ``pending`` row for the engine.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from botdesk import sequence_schedule as sched
from botdesk.log import get_logger
from botdesk.segments import audience_filter
from botdesk.sequence_file import SequenceDef, Step
from botdesk.sequences import BATCH, OPEN_ROW_STATES, _button_index, _definition, _insert_ignore
from botdesk.store.db import Database
from botdesk.store.models import (
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
_E = SequenceEnrolment
# Inbound texts that are not a reply: commands, and what button and menu presses record.
NOT_A_REPLY = ("/", "[button]", "[menu]")


def is_reply(text: str) -> bool:
    """Does this inbound message stop a sequence with ``stop: {on_reply: true}``?"""
    return not text.startswith(NOT_A_REPLY)


async def _cancel_steps(conn: AsyncConnection, rows: Any, *, now: datetime) -> None:
    """A step issued but not yet sent is not sent to someone who stopped (``rows``: the
    delivery ids, a list or a subquery); one already ``sending`` is on its way."""
    await conn.execute(
        update(Delivery)
        .where(Delivery.id.in_(rows), Delivery.state == "pending")
        .values(state="cancelled", error="sequence stopped", updated_at=now, lease_owner=None)
    )


async def _sequences(conn: AsyncConnection, bot_id: int, states: tuple[str, ...]) -> Any:
    """The bot's sequences in ``states``: id, version, source, filename, trigger cursor."""
    return (
        await conn.execute(
            select(
                DripSequence.id,
                DripSequence.version,
                DripSequence.source,
                DripSequence.filename,
                DripSequence.cursor,
            ).where(DripSequence.bot_id == bot_id, DripSequence.state.in_(states))
        )
    ).all()


async def stop_now(
    conn: AsyncConnection, *, bot_id: int, chats: Mapping[int, bool], now: datetime
) -> int:
    """Apply the stop rules to these chats' enrolments in the caller's transaction: the
    update batch that recorded what may stop them. ``chats``: chat id -> whether it sent a
    reply (``is_reply``) in this batch; the status and goal tag are read as the batch left
    them. Sequences active or paused. Returns how many enrolments stopped."""
    if not chats:
        return 0
    seqs = await _sequences(conn, bot_id, ("active", "paused"))
    if not seqs:
        return 0
    defs = {sid: _definition(sid, v, src, fn) for sid, v, src, fn, _cursor in seqs}
    rows = (
        await conn.execute(
            select(_E.id, _E.sequence_id, _E.waiting, _E.chat_id, Subscriber.id, Subscriber.status)
            .join(Subscriber, Subscriber.id == _E.subscriber_id)
            .where(
                _E.sequence_id.in_(list(defs)),
                _E.state == "active",
                Subscriber.bot_id == bot_id,
                Subscriber.chat_id.in_(list(chats)),
            )
        )
    ).all()
    if not rows:
        return 0
    goals = {d.goal_tag for d in defs.values() if d.goal_tag}
    tagged: set[tuple[int, str]] = set()
    if goals:
        found = await conn.execute(
            select(SubscriberTag.subscriber_id, SubscriberTag.tag).where(
                SubscriberTag.subscriber_id.in_({r[4] for r in rows}), SubscriberTag.tag.in_(goals)
            )
        )
        tagged = {(int(a), str(b)) for a, b in found}
    stops: list[dict[str, Any]] = []
    for eid, seq, waiting, chat, sid, status in rows:
        d = defs[seq]
        reason = None
        if status == "unsubscribed":
            reason = "unsubscribed"
        elif status != "active":
            reason = "blocked"
        elif d.goal_tag and (sid, d.goal_tag) in tagged:
            reason = "goal"
        elif d.stop_on_reply and chats.get(chat):
            reason = "replied"
        if reason is not None:
            stops.append({"eid": eid, "why": reason, "waiting": waiting})
    if not stops:
        return 0
    await conn.execute(
        update(_E)
        .where(_E.id == bindparam("eid"), _E.state == "active")
        .values(state="stopped", stop_reason=bindparam("why"), finished_at=now),
        [{"eid": s["eid"], "why": s["why"]} for s in stops],
    )
    waiting_rows = [s["waiting"] for s in stops if s["waiting"] is not None]
    if waiting_rows:
        await _cancel_steps(conn, waiting_rows, now=now)
    return len(stops)


async def stop_tagged(
    conn: AsyncConnection, *, bot_id: int, tags: Iterable[str], subscribers: Any, now: datetime
) -> int:
    """``stop_now`` for subscribers just given ``tags`` outside an update batch (the CLI,
    the desktop console, subscriber import), in the caller's transaction: one reaching a
    sequence's goal tag is stopped there, its issued step cancelled if not yet sending.
    ``subscribers``: their ids (a list or a subquery). Returns how many enrolments stopped."""
    goals = {
        d.goal_tag
        for sid, v, src, fn, _cursor in await _sequences(conn, bot_id, ("active", "paused"))
        if (d := _definition(sid, v, src, fn)).goal_tag
    } & set(tags)
    if not goals:
        return 0
    chats = (
        await conn.execute(
            select(_E.chat_id)
            .join(SubscriberTag, SubscriberTag.subscriber_id == _E.subscriber_id)
            .where(
                _E.state == "active",
                _E.subscriber_id.in_(subscribers),
                SubscriberTag.tag.in_(goals),
            )
            .distinct()
        )
    ).scalars()
    return await stop_now(conn, bot_id=bot_id, chats=dict.fromkeys(chats, False), now=now)


# -- the runner: one tick per bot and second, in the bot's lease owner -----------------------


async def tick(db: Database, bot_id: int, *, now: datetime) -> None:
    """Enrol, stop, settle and issue for the bot's active sequences that have work.

    An idle tick is two read statements and no write transaction: the bot's active
    sequences, then one probe (``_has_work``) telling which of them have anything to do
    now. Only those run their four phases."""
    async with db.read() as conn:
        seqs = await _sequences(conn, bot_id, ("active",))
        if not seqs:
            return
        defs: dict[int, SequenceDef] = {}
        for seq_id, version, source, filename, _cursor in seqs:
            try:
                defs[seq_id] = _definition(seq_id, version, source, filename)
            except Exception as exc:
                log.error("sequence tick failed", sequence=seq_id, error=str(exc))
        probes = [
            _has_work(bot_id, seq_id, defs[seq_id], cursor, now).label(f"s{seq_id}")
            for seq_id, *_rest, cursor in seqs
            if seq_id in defs
        ]
        if not probes:
            return
        flags = (await conn.execute(select(*probes))).one()
    busy = [row for row, flag in zip((r for r in seqs if r[0] in defs), flags, strict=True) if flag]
    for seq_id, _version, _source, _filename, cursor in busy:
        try:
            runner = _Runner(db, bot_id, seq_id, defs[seq_id], now)
            await runner.run(cursor)
        except Exception as exc:  # one broken sequence must not stop the bot's sending
            log.error("sequence tick failed", sequence=seq_id, error=str(exc))


def _has_work(bot_id: int, seq_id: int, d: SequenceDef, cursor: int, now: datetime) -> Any:
    """Whether the sequence has something to do at ``now``, as one SQL boolean: a step due
    (or a row issued for one that reached a final state: such an enrolment's ``due_at`` is
    past, it was due when issued), a trigger to enrol, or an active enrolment at the goal
    tag. The other stop rules (unsubscribed, blocked, replied) are applied in the
    transaction that records them (``stop_now``), by the engine's consent check at sending,
    and in any case by ``stop`` before this sequence issues its next step."""
    mine = and_(_E.sequence_id == seq_id, _E.state == "active")
    row_state = (
        select(Delivery.state).where(Delivery.id == _E.waiting).correlate(_E).scalar_subquery()
    )
    conds: list[Any] = [
        exists().where(
            mine,
            _E.due_at <= now,
            or_(_E.waiting.is_(None), row_state.not_in(OPEN_ROW_STATES)),
        )
    ]
    t = d.trigger
    if t.kind == "start":
        conds.append(
            exists().where(
                ConsentEvent.bot_id == bot_id,
                ConsentEvent.id > cursor,
                ConsentEvent.kind.in_(("subscribe", "resubscribe")),
            )
        )
    elif t.kind == "click":
        conds.append(exists().where(Click.campaign_id == t.campaign, Click.id > cursor))
    else:
        conds.append(_tag_holders(bot_id, seq_id, str(t.tag)).exists())
    if d.goal_tag:
        conds.append(
            exists().where(
                mine,
                _E.subscriber_id.in_(
                    select(SubscriberTag.subscriber_id).where(SubscriberTag.tag == d.goal_tag)
                ),
            )
        )
    return or_(*conds)


def _tag_holders(bot_id: int, seq_id: int, tag: str) -> Any:
    """Active, non-group subscribers of the bot carrying ``tag`` and not enrolled yet."""
    return (
        select(Subscriber.id, Subscriber.chat_id, Subscriber.timezone)
        .join(SubscriberTag, SubscriberTag.subscriber_id == Subscriber.id)
        .where(
            Subscriber.bot_id == bot_id,
            Subscriber.status == "active",
            Subscriber.is_group.is_(False),
            SubscriberTag.tag == tag,
            ~exists().where(_E.sequence_id == seq_id, _E.subscriber_id == Subscriber.id),
        )
    )


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
        self, step: Step, tz: str | None, *, enrolled_at: datetime, done: datetime | None
    ) -> datetime:
        zone = sched.zone_for(tz, self.default_tz)
        at = sched.due(step, enrolled_at=enrolled_at, previous_done=done)
        return sched.outside_quiet(at, self.d.quiet, zone)

    # 1. enrol ----------------------------------------------------------------------

    async def enrol(self, cursor: int) -> None:
        t = self.d.trigger
        async with self.db.write() as conn:
            if t.kind == "start":
                rows: Any = (
                    await conn.execute(
                        select(
                            ConsentEvent.id,
                            ConsentEvent.source,
                            ConsentEvent.at,
                            Subscriber.id,
                            Subscriber.chat_id,
                            Subscriber.status,
                            Subscriber.is_group,
                            Subscriber.timezone,
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
                for eid, src, at, sid, chat, status, group, tz in rows:
                    cursor = max(cursor, eid)
                    if t.source is not None and src != t.source:
                        continue
                    if status == "active" and not group:
                        await self._enrol_one(conn, sid, chat, tz, at)
            elif t.kind == "click":
                idx = await self._click_button(conn)
                rows = (
                    await conn.execute(
                        select(
                            Click.id,
                            Click.button,
                            Click.at,
                            Subscriber.id,
                            Subscriber.chat_id,
                            Subscriber.status,
                            Subscriber.timezone,
                        )
                        .join(Subscriber, Subscriber.id == Click.subscriber_id)
                        .where(
                            Click.campaign_id == t.campaign,
                            Click.id > cursor,
                        )
                        .order_by(Click.id)
                        .limit(BATCH)
                    )
                ).all()
                for cid, button, at, sid, chat, status, tz in rows:
                    cursor = max(cursor, cid)  # past other buttons' clicks too
                    if button == idx and status == "active":
                        await self._enrol_one(conn, sid, chat, tz, at)
            else:
                holders = _tag_holders(self.bot_id, self.seq_id, str(t.tag)).limit(BATCH)
                rows = (await conn.execute(holders)).all()
                for sid, chat, tz in rows:
                    await self._enrol_one(conn, sid, chat, tz, self.now)
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
        self, conn: AsyncConnection, sid: int, chat: int, tz: str | None, at: datetime
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
                due_at=self._due(first, tz, enrolled_at=at, done=None),
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
                    *(~Message.text.startswith(p) for p in NOT_A_REPLY),
                )
                await conn.execute(
                    update(_E).where(active, replied).values(**stopped, stop_reason="replied")
                )
            # A step issued but not yet sent is not sent to someone who stopped.
            await _cancel_steps(
                conn,
                select(_E.waiting).where(
                    _E.sequence_id == self.seq_id,
                    _E.state == "stopped",
                    _E.finished_at == self.now,
                    _E.waiting.is_not(None),
                ),
                now=self.now,
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
                        Subscriber.timezone,
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
            for eid, step, waiting, enrolled_at, done_at, tz in rows:
                nxt = step + 1
                guard = and_(_E.id == eid, _E.waiting == waiting)
                if nxt > len(self.d.steps):
                    await conn.execute(
                        update(_E).where(guard).values(state="completed", finished_at=self.now)
                    )
                    continue
                due_at = self._due(
                    self.d.steps[nxt - 1], tz, enrolled_at=enrolled_at, done=done_at or self.now
                )
                await conn.execute(
                    update(_E).where(guard).values(step=nxt, waiting=None, due_at=due_at)
                )

    # 4. issue ----------------------------------------------------------------------

    async def issue(self) -> None:
        async with self.db.write() as conn:
            rows: Any = (  # due_at is set on every row this selects
                await conn.execute(
                    select(
                        _E.id, _E.step, _E.due_at, _E.subscriber_id, _E.chat_id, Subscriber.timezone
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
            for eid, number, due_at, sid, chat, tz in rows:
                guard = and_(_E.id == eid, _E.waiting.is_(None), _E.state == "active")
                if number > len(self.d.steps) or number not in self.steps:
                    await conn.execute(
                        update(_E).where(guard).values(state="completed", finished_at=self.now)
                    )
                    continue
                step = self.d.steps[number - 1]
                zone = sched.zone_for(tz, self.default_tz)
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
