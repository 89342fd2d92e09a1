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

The runner that enrols and issues steps is ``sequence_runner.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from botdesk import campaigns as campaigns_mod
from botdesk import clicks as clicks_mod
from botdesk.bots import BotRecord
from botdesk.errors import NotFoundError, ValidationError
from botdesk.sequence_file import SequenceDef, Step, parse_sequence, read_sequence
from botdesk.store.db import Database, dialect_insert
from botdesk.store.models import (
    Bot,
    Campaign,
    Click,
    ConsentEvent,
    Delivery,
    DripSequence,
    SequenceDroppedStep,
    SequenceEnrolment,
    SequenceStep,
    Subscriber,
    SubscriberTag,
)

BATCH = 500
OPEN_ROW_STATES = ("pending", "sending")
# A step row is a delivery row, plus the two states of a step not sent (no message left).
STEP_ROW_STATES = (*campaigns_mod.STATES, "expired", "skipped")
_E = SequenceEnrolment


@dataclass(frozen=True)
class DroppedStep:
    """A step an update removed: its campaign is cancelled, its rows stay in the ledger."""

    number: int
    campaign_id: int
    version: int  # the version that dropped it
    dropped_at: datetime
    rows: dict[str, int]  # its delivery rows by state (sent before the drop, cancelled, ...)

    def as_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "campaign_id": self.campaign_id,
            "dropped_in_version": self.version,
            "dropped_at": self.dropped_at.isoformat(),
            "rows": self.rows,
        }


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
    dropped: tuple[DroppedStep, ...] = ()

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
            "dropped_steps": [x.as_dict() for x in self.dropped],
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
    return dialect_insert(conn.dialect.name, table)


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
                    insert(SequenceDroppedStep).values(
                        campaign_id=cid,
                        sequence_id=seq_id,
                        number=number,
                        version=version + 1,
                        dropped_at=now,
                    )
                )
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
                    dropped=await _dropped(conn, r[0]),
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


async def _dropped(conn: AsyncConnection, seq_id: int) -> tuple[DroppedStep, ...]:
    """The steps updates dropped from a sequence, oldest drop first, with their rows."""
    D = SequenceDroppedStep
    found = (
        await conn.execute(
            select(D.number, D.campaign_id, D.version, D.dropped_at)
            .where(D.sequence_id == seq_id)
            .order_by(D.dropped_at, D.number)
        )
    ).all()
    counts: dict[int, dict[str, int]] = {cid: {} for _n, cid, _v, _at in found}
    if counts:
        for cid, state, n in (
            await conn.execute(
                select(Delivery.campaign_id, Delivery.state, func.count())
                .where(Delivery.campaign_id.in_(list(counts)))
                .group_by(Delivery.campaign_id, Delivery.state)
            )
        ).all():
            counts[cid][state] = int(n)
    return tuple(DroppedStep(n, cid, v, at, counts[cid]) for n, cid, v, at in found)


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
