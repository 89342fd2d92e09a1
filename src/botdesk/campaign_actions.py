"""Edit and recall a sent campaign: validate, plan, start, status and report of an action.

An action works on the campaign's delivered messages (rows ``sent`` with a message id), not
on its audience: recipients whose delivery is uncertain have no message id botdesk could
name, and messages an earlier recall deleted are left out. The new text of an edit is
checked like a new campaign's (template, markup, the length for every recipient who has
the message, buttons) before any row exists. The action engine
(``delivery/action_worker.py``) does the work, in ``serve`` or in the foreground.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import func, insert, literal, select, update

from botdesk.campaigns import Campaigns, CampaignSpec, ParseModeName, _check_buttons
from botdesk.delivery import action_ledger, templates
from botdesk.errors import DeliveryError, NotFoundError
from botdesk.store.db import Database
from botdesk.store.models import (
    ACTION_ROW_STATES,
    Bot,
    Campaign,
    CampaignAction,
    CampaignActionRow,
    Delivery,
    Subscriber,
)

ActionKind = Literal["edit", "recall"]
# A campaign still sending would get messages the action never sees.
ACTIONABLE_STATES = ("completed", "cancelled")
DONE_STATE = {"edit": "edited", "recall": "recalled"}


@dataclass(frozen=True)
class ActionSpec:
    campaign_id: int
    kind: ActionKind
    text: str | None = None  # edit: the new text (or caption)
    parse_mode: ParseModeName = "plain"
    # edit: replace the keyboard; None keeps the campaign's buttons (an edit without a
    # keyboard removes it, so the kept one is sent again), () removes it.
    buttons: tuple[tuple[str, str], ...] | None = None


@dataclass(frozen=True)
class ActionPlan:
    campaign_id: int
    bot: str
    kind: ActionKind
    messages: int  # delivered messages the action will edit or delete
    unknown: int  # uncertain deliveries: no message id to act on
    media_kind: str | None

    def describe(self) -> str:
        what = "caption" if self.media_kind else "text"
        verb = f"replace the {what} of" if self.kind == "edit" else "delete"
        line = f"{verb} {self.messages} delivered messages of campaign {self.campaign_id}"
        if self.unknown:
            line += f" ({self.unknown} uncertain deliveries have no message id and are left)"
        return line


def _targets(campaign_id: int) -> Any:
    """Deliveries with a message, minus those an earlier recall deleted."""
    recalled = (
        select(CampaignActionRow.delivery_id)
        .join(CampaignAction, CampaignAction.id == CampaignActionRow.action_id)
        .where(
            CampaignAction.campaign_id == campaign_id,
            CampaignAction.kind == "recall",
            CampaignActionRow.state == "recalled",
        )
    )
    return select(Delivery).where(
        Delivery.campaign_id == campaign_id,
        Delivery.state == "sent",
        Delivery.message_id.is_not(None),
        Delivery.id.not_in(recalled),
    )


class CampaignActions:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def plan(self, spec: ActionSpec) -> ActionPlan:
        """Everything checked before anything is touched; raises one clear error."""
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(Campaign.state, Campaign.media_kind, Bot.name)
                    .join(Bot, Bot.id == Campaign.bot_id)
                    .where(Campaign.id == spec.campaign_id)
                )
            ).first()
            if row is None:
                raise NotFoundError(f"no campaign with id {spec.campaign_id}")
            state, media_kind, bot = row
            if media_kind == "album" and spec.kind == "edit":
                raise DeliveryError(
                    f"campaign {spec.campaign_id} is an album: botdesk does not edit albums "
                    "yet (recall it and send a new one)"
                )
            if media_kind == "copy" and spec.kind == "edit":
                raise DeliveryError(
                    f"campaign {spec.campaign_id} is a copy of another message: botdesk does not "
                    "know whether it has a text or a caption; recall it and send a new one"
                )
            if state not in ACTIONABLE_STATES:
                raise DeliveryError(
                    f"campaign {spec.campaign_id} is {state}; only a completed or cancelled "
                    f"campaign can be {'edited' if spec.kind == 'edit' else 'recalled'}"
                )
            open_ = await self._open(conn, spec.campaign_id)
            if open_ is not None:
                raise DeliveryError(
                    f"campaign {spec.campaign_id} has an unfinished {open_[1]} (action "
                    f"{open_[0]}); finish it first with `botdesk campaign actions "
                    f"{spec.campaign_id} --resume`"
                )
            t = _targets(spec.campaign_id).subquery()
            messages = int((await conn.execute(select(func.count()).select_from(t))).scalar() or 0)
            unknown = int(
                (
                    await conn.execute(
                        select(func.count()).where(
                            Delivery.campaign_id == spec.campaign_id,
                            Delivery.state == "uncertain",
                        )
                    )
                ).scalar()
                or 0
            )
        if messages == 0:
            raise DeliveryError(f"campaign {spec.campaign_id} has no delivered message to act on")
        if spec.kind == "edit":
            if spec.text is None:
                raise DeliveryError("an edit needs the new text")
            if spec.buttons:
                _check_buttons(list(spec.buttons))
            limit = templates.CAPTION_LIMIT if media_kind else templates.TEXT_LIMIT
            who = Subscriber.id.in_(select(t.c.subscriber_id))
            await Campaigns(self.db).check_template(
                CampaignSpec(bot=bot, text=spec.text, parse_mode=spec.parse_mode),
                who,
                limit=limit,
            )
        return ActionPlan(spec.campaign_id, bot, spec.kind, messages, unknown, media_kind)

    @staticmethod
    async def _open(conn: Any, campaign_id: int) -> tuple[int, str] | None:
        row = (
            await conn.execute(
                select(CampaignAction.id, CampaignAction.kind).where(
                    CampaignAction.campaign_id == campaign_id, CampaignAction.state == "running"
                )
            )
        ).first()
        return None if row is None else (int(row[0]), str(row[1]))

    async def start(self, spec: ActionSpec, *, now: datetime) -> int:
        """Validate, then store the action and one pending row per delivered message."""
        plan = await self.plan(spec)
        async with self.db.write() as conn:
            if await self._open(conn, spec.campaign_id) is not None:  # raced another start
                raise DeliveryError(f"campaign {spec.campaign_id} has an unfinished action")
            buttons: list[list[str]] | None = None
            if spec.kind == "edit":
                if spec.buttons is None:
                    kept = (
                        await conn.execute(
                            select(Campaign.buttons).where(Campaign.id == spec.campaign_id)
                        )
                    ).scalar()
                    buttons = kept or None
                else:
                    buttons = [list(b) for b in spec.buttons] or None
            aid = (
                await conn.execute(
                    insert(CampaignAction)
                    .values(
                        campaign_id=spec.campaign_id,
                        kind=spec.kind,
                        state="running",
                        text=spec.text if spec.kind == "edit" else None,
                        parse_mode=spec.parse_mode if spec.kind == "edit" else None,
                        buttons=buttons,
                        media_kind=plan.media_kind,
                        total=0,
                        created_at=now,
                    )
                    .returning(CampaignAction.id)
                )
            ).scalar_one()
            t = _targets(spec.campaign_id).subquery()
            res = await conn.execute(
                insert(CampaignActionRow).from_select(
                    [
                        "action_id",
                        "delivery_id",
                        "subscriber_id",
                        "chat_id",
                        "message_id",
                        "state",
                        "attempts",
                    ],
                    select(
                        literal(aid),
                        t.c.id,
                        t.c.subscriber_id,
                        t.c.chat_id,
                        t.c.message_id,
                        literal("pending"),
                        literal(0),
                    ),
                )
            )
            await conn.execute(
                update(CampaignAction)
                .where(CampaignAction.id == aid)
                .values(total=int(res.rowcount or 0))
            )
        return int(aid)

    async def current_text(self, campaign_id: int) -> str:
        """What the delivered messages say now: the last completed edit's text, else the
        campaign's (where an operator starts an edit from)."""
        async with self.db.read() as conn:
            edited = (
                await conn.execute(
                    select(CampaignAction.text)
                    .where(
                        CampaignAction.campaign_id == campaign_id,
                        CampaignAction.kind == "edit",
                        CampaignAction.state == "completed",
                    )
                    .order_by(CampaignAction.id.desc())
                    .limit(1)
                )
            ).scalar()
            if edited is not None:
                return str(edited)
            text = (
                await conn.execute(select(Campaign.text).where(Campaign.id == campaign_id))
            ).scalar()
        if text is None:
            raise NotFoundError(f"no campaign with id {campaign_id}")
        return str(text)

    async def open_action(self, campaign_id: int) -> int | None:
        async with self.db.read() as conn:
            found = await self._open(conn, campaign_id)
        return None if found is None else found[0]

    async def bot_of(self, action_id: int) -> str:
        async with self.db.read() as conn:
            name = (
                await conn.execute(
                    select(Bot.name)
                    .join(Campaign, Campaign.bot_id == Bot.id)
                    .join(CampaignAction, CampaignAction.campaign_id == Campaign.id)
                    .where(CampaignAction.id == action_id)
                )
            ).scalar()
        if name is None:
            raise NotFoundError(f"no campaign action with id {action_id}")
        return str(name)

    async def status(self, action_id: int) -> dict[str, Any]:
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(
                        CampaignAction.id,
                        CampaignAction.campaign_id,
                        CampaignAction.kind,
                        CampaignAction.state,
                        CampaignAction.total,
                        CampaignAction.created_at,
                        CampaignAction.finished_at,
                    ).where(CampaignAction.id == action_id)
                )
            ).first()
            if row is None:
                raise NotFoundError(f"no campaign action with id {action_id}")
            counts = await action_ledger.counts(conn, action_id)
            reasons = (
                await conn.execute(
                    select(CampaignActionRow.state, CampaignActionRow.error, func.count())
                    .where(
                        CampaignActionRow.action_id == action_id,
                        CampaignActionRow.error.is_not(None),
                    )
                    .group_by(CampaignActionRow.state, CampaignActionRow.error)
                    .order_by(func.count().desc())
                )
            ).all()
        out: dict[str, Any] = {
            "id": row.id,
            "campaign_id": row.campaign_id,
            "kind": row.kind,
            "state": row.state,
            "total": row.total,
            "created_at": row.created_at.isoformat(),
            "finished_at": row.finished_at.isoformat() if row.finished_at else None,
        }
        for s in ACTION_ROW_STATES:
            out[s] = counts.get(s, 0)
        out["reasons"] = [{"state": r[0], "reason": r[1], "count": int(r[2])} for r in reasons]
        return out

    async def for_campaign(self, campaign_id: int) -> list[dict[str, Any]]:
        """Every action of a campaign, oldest first, with its counts."""
        async with self.db.read() as conn:
            if (
                await conn.execute(select(Campaign.id).where(Campaign.id == campaign_id))
            ).first() is None:
                raise NotFoundError(f"no campaign with id {campaign_id}")
            ids = list(
                (
                    await conn.execute(
                        select(CampaignAction.id)
                        .where(CampaignAction.campaign_id == campaign_id)
                        .order_by(CampaignAction.id)
                    )
                ).scalars()
            )
        return [await self.status(i) for i in ids]

    async def cancel(self, campaign_id: int, *, now: datetime) -> int:
        """Stop the campaign's unfinished action: its pending rows become ``cancelled``
        (requests already on the wire finish and are recorded). Returns the action's id."""
        aid = await self.open_action(campaign_id)
        if aid is None:
            await self.for_campaign(campaign_id)  # a clear error for an unknown campaign
            raise DeliveryError(f"campaign {campaign_id} has no unfinished edit or recall")
        async with self.db.write() as conn:
            await conn.execute(
                update(CampaignActionRow)
                .where(CampaignActionRow.action_id == aid, CampaignActionRow.state == "pending")
                .values(state="cancelled", updated_at=now)
            )
            await conn.execute(
                update(CampaignAction)
                .where(CampaignAction.id == aid, CampaignAction.state == "running")
                .values(state="cancelled", finished_at=now)
            )
        return aid

    async def complete_if_done(self, action_id: int, *, now: datetime) -> bool:
        async with self.db.write() as conn:
            if await action_ledger.open_work(conn, action_id):
                return False
            res = await conn.execute(
                update(CampaignAction)
                .where(CampaignAction.id == action_id, CampaignAction.state == "running")
                .values(state="completed", finished_at=now)
            )
            return bool(res.rowcount)
