"""Clicks: campaign callback buttons and their actions, the click ledger, click reports.

A campaign button is ``(label, target)``: a URL (``https://...``, ``tg://...``) or a callback
``cb:ACTION`` where ACTION is ``tag=NAME`` (tag the subscriber), ``reply=TEXT`` (the bot
answers), a plain name that is only recorded, or a self-segmenting menu choice: ``pick=NAME``
(tag NAME and remove the tags of the message's other ``pick=`` buttons: one choice of several)
and/or ``tz=ZONE`` (set the subscriber's time zone), joined by ``,`` with each other or with
``tag=`` (``cb:pick=berlin,tz=Europe/Berlin``); a menu choice is answered "Saved: LABEL", or
with the operator's text: a last part ``say=TEXT`` (the rest of the target, commas included;
``{label}`` is the pressed button's label), which a sequence file's ``menu: {answer: ...}``
writes.

Telegram receives ``callback_data`` of the form ``bdc:<campaign id>:<button index>``: an
address into botdesk's own tables, never the action itself, so an edited callback can at most
name another button, and it counts only when the presser received that campaign's message
(checked against the delivery ledger).

A click is a row of ``clicks`` written in the same transaction as the update that carried it
(and its action: the tag, the menu choice's tags and time zone, or the reply queued in the
outbox), so a redelivered update, skipped by ``processed_updates``, neither counts twice nor
acts twice.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from botdesk.errors import ValidationError
from botdesk.links import LinkSigner
from botdesk.segments import check_tag
from botdesk.store.db import Database, dialect_insert
from botdesk.store.models import (
    Campaign,
    Click,
    ClickTracking,
    Delivery,
    Outbox,
    Subscriber,
    SubscriberTag,
)
from botdesk.telegram.gateway import CALLBACK_TARGET as WIRE_CALLBACK
from botdesk.timezones import check_zone

CALLBACK_PREFIX = "cb:"
DATA_PREFIX = "bdc:"
REPLY_LIMIT = 4096


MENU_ANSWER = "Saved: {label}"  # what Telegram shows on a menu choice (as rules menus)
ANSWER_LIMIT = 200  # Telegram shows at most 200 characters of a callback answer
_SAY = ",say="
_MENU_KEYS = ("tag", "pick", "tz")


@dataclass(frozen=True)
class Action:
    kind: str  # tag | reply | record | menu
    value: str  # tag: the tag; reply: the text; record: the name; menu: the tag ("" for none)
    timezone: str | None = None  # menu: the time zone it sets
    exclusive: bool = False  # menu (pick=): the tags of the message's other picks are removed
    label: str = ""  # the pressed button's label (set by record_callback)
    say: str = MENU_ANSWER  # menu: the answer's text (``say=`` in the target)

    def answer(self) -> str | None:
        """The callback answer Telegram shows: a menu choice says what it saved."""
        return self.say.replace("{label}", self.label) if self.kind == "menu" else None


def is_callback(target: str) -> bool:
    return target.startswith(CALLBACK_PREFIX)


def parse_action(target: str) -> Action:
    """The action of a ``cb:...`` button target; ``ValidationError`` if it makes no sense."""
    body = target[len(CALLBACK_PREFIX) :]
    key, sep, value = body.partition("=")
    if sep and key == "reply":
        if not value.strip() or len(value) > REPLY_LIMIT:
            raise ValidationError(f"cb:reply= needs a text of 1-{REPLY_LIMIT} characters")
        return Action("reply", value)
    if sep and key in _MENU_KEYS:
        return _menu_action(body)
    if sep:
        raise ValidationError(
            f"unknown button action {key!r}: use cb:tag=NAME, cb:pick=NAME, cb:tz=ZONE, "
            "cb:reply=TEXT or cb:NAME"
        )
    if not body.strip() or len(body) > 64:
        raise ValidationError("cb:NAME needs a name of 1-64 characters")
    return Action("record", body)


def _menu_action(body: str) -> Action:
    """``tag=NAME``, or a menu choice: ``pick=NAME`` and/or ``tz=ZONE`` (with ``tag=``),
    optionally ending in ``say=TEXT`` (its answer)."""
    body, has_say, say = body.partition(_SAY)
    if has_say and not (say.strip() and len(say) <= ANSWER_LIMIT):
        raise ValidationError(f"say= needs an answer text of 1-{ANSWER_LIMIT} characters")
    parts: dict[str, str] = {}
    for part in body.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep or key not in _MENU_KEYS:
            raise ValidationError(
                f"button action {body!r}: join tag=NAME, pick=NAME and tz=ZONE with ','"
            )
        if key in parts or (key in ("tag", "pick") and ({"tag", "pick"} & set(parts))):
            raise ValidationError(
                f"button action {body!r}: at most one tag (tag= or pick=) and one tz="
            )
        parts[key] = value.strip()
    tag = parts.get("pick", parts.get("tag", ""))
    if tag:
        check_tag(tag)
    zone = check_zone(parts["tz"]) if "tz" in parts else None
    if zone is None and "pick" not in parts:
        if has_say:
            raise ValidationError("say= answers a menu choice (pick= or tz=), not cb:tag=")
        return Action("tag", tag)  # the plain cb:tag=NAME of before
    return Action(
        "menu", tag, timezone=zone, exclusive="pick" in parts, say=say if has_say else MENU_ANSWER
    )


def menu_choice(item: Any) -> tuple[str, str | None, str | None]:
    """A menu button as a file writes it, ``{label, tag, timezone}`` (a tag, a time zone or
    both): its (label, tag, zone), checked; ``ValidationError`` says what is wrong. Shared by
    the rules file's menus and the sequence file's step menus."""
    label = item.get("label") if isinstance(item, dict) else None
    if not isinstance(label, str) or not label.strip():
        raise ValidationError("each menu button needs a 'label' and a 'tag' and/or a 'timezone'")
    tag, zone = item.get("tag"), item.get("timezone")
    if tag is None and zone is None:
        raise ValidationError(f"menu button {label!r} needs a 'tag' and/or a 'timezone'")
    if tag is not None:
        check_tag(str(tag))
    if zone is not None:
        check_zone(str(zone))
    return label.strip(), None if tag is None else str(tag), None if zone is None else str(zone)


def menu_target(
    tag: str | None, zone: str | None, *, exclusive: bool, answer: str | None = None
) -> str:
    """The ``cb:`` target of a menu choice (``cb:pick=NAME,tz=ZONE``, ``cb:tz=ZONE``, ...),
    ending in ``say=ANSWER`` when the menu has its own answer text."""
    parts = [f"{'pick' if exclusive else 'tag'}={tag}"] if tag else []
    if zone:
        parts.append(f"tz={zone}")
    target = CALLBACK_PREFIX + ",".join(parts)
    return target + _SAY + answer if answer is not None else target


def callback_data(campaign_id: int, button: int) -> str:
    return f"{DATA_PREFIX}{campaign_id}:{button}"


def parse_data(data: str | None) -> tuple[int, int] | None:
    if not data or not data.startswith(DATA_PREFIX):
        return None
    cid, sep, idx = data[len(DATA_PREFIX) :].partition(":")
    if not sep or not cid.isdigit() or not idx.isdigit():
        return None
    return int(cid), int(idx)


def wire_buttons(campaign_id: int, buttons: Any) -> tuple[tuple[str, str], ...]:
    """The buttons as the gateway sends them: callbacks become opaque callback data."""
    out = []
    for i, (label, target) in enumerate(buttons or []):
        if is_callback(target):
            out.append((label, WIRE_CALLBACK + callback_data(campaign_id, i)))
        else:
            out.append((label, target))
    return tuple(out)


# -- recording ----------------------------------------------------------------------------


async def _insert(
    conn: AsyncConnection,
    cid: int,
    button: int,
    delivery_id: int,
    sub_id: int,
    chat_id: int,
    via: str,
    update_id: int | None,
    now: datetime,
) -> None:
    await conn.execute(
        insert(Click).values(
            campaign_id=cid,
            button=button,
            delivery_id=delivery_id,
            subscriber_id=sub_id,
            chat_id=chat_id,
            via=via,
            update_id=update_id,
            at=now,
        )
    )


async def record_callback(
    conn: AsyncConnection,
    *,
    bot_id: int,
    chat_id: int,
    data: str | None,
    message_id: int | None,
    update_id: int,
    now: datetime,
) -> Action | None:
    """Record a press of a campaign button and perform its action in ``conn``'s transaction.

    None when the data is not a campaign button's, or the presser was not sent that message.
    """
    addr = parse_data(data)
    if addr is None:
        return None
    cid, idx = addr
    row = (
        await conn.execute(
            select(Delivery.id, Delivery.subscriber_id, Delivery.message_id, Campaign.buttons)
            .join(Campaign, Campaign.id == Delivery.campaign_id)
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .where(
                Delivery.campaign_id == cid,
                Campaign.bot_id == bot_id,
                Subscriber.bot_id == bot_id,
                Subscriber.chat_id == chat_id,
            )
        )
    ).first()
    if row is None:
        return None
    delivery_id, sub_id, sent_mid, buttons = row
    if not buttons or idx >= len(buttons) or not is_callback(buttons[idx][1]):
        return None
    if message_id is not None and sent_mid is not None and message_id != sent_mid:
        return None  # a callback naming a message this campaign did not send here
    action = replace(parse_action(buttons[idx][1]), label=buttons[idx][0])
    await _insert(conn, cid, idx, delivery_id, sub_id, chat_id, "callback", update_id, now)
    if action.kind in ("tag", "menu") and action.value:
        if action.exclusive:  # one choice of the menu: the other picks' tags go
            others = [a.value for a in _picks(buttons) if a.value != action.value]
            if others:
                await conn.execute(
                    delete(SubscriberTag).where(
                        SubscriberTag.subscriber_id == sub_id, SubscriberTag.tag.in_(others)
                    )
                )
        await conn.execute(
            dialect_insert(conn.dialect.name, SubscriberTag)
            .values(subscriber_id=sub_id, tag=action.value)
            .on_conflict_do_nothing(index_elements=["subscriber_id", "tag"])
        )
    if action.timezone is not None:
        await conn.execute(
            update(Subscriber)
            .where(Subscriber.id == sub_id)
            .values(timezone=action.timezone, updated_at=now)
        )
    elif action.kind == "reply":
        # Through the outbox: durable with the click, sent by the bot's owner at reply priority.
        await conn.execute(
            insert(Outbox).values(
                bot_id=bot_id,
                chat_id=chat_id,
                text=action.value,
                author="bot",
                state="pending",
                created_at=now,
            )
        )
    return action


def _picks(buttons: Any) -> list[Action]:
    """The ``pick=`` choices among a message's buttons (one menu per message)."""
    out = []
    for _label, target in buttons or []:
        if is_callback(target):
            a = parse_action(target)
            if a.exclusive:
                out.append(a)
    return out


async def record_link(
    conn: AsyncConnection, *, delivery_id: int, button: int, now: datetime
) -> str | None:
    """Record an opened tracked link; the URL to redirect to, or None if it names nothing."""
    row = (
        await conn.execute(
            select(Delivery.campaign_id, Delivery.subscriber_id, Delivery.chat_id, Campaign.buttons)
            .join(Campaign, Campaign.id == Delivery.campaign_id)
            .where(Delivery.id == delivery_id)
        )
    ).first()
    if row is None:
        return None
    cid, sub_id, chat_id, buttons = row
    if not buttons or button >= len(buttons) or is_callback(buttons[button][1]):
        return None
    await _insert(conn, cid, button, delivery_id, sub_id, chat_id, "link", None, now)
    return str(buttons[button][1])


# -- reports ------------------------------------------------------------------------------


def _median_s(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


async def summary(
    conn: AsyncConnection, campaign_id: int, *, delivered: int, tracked: bool | None = None
) -> dict[str, Any]:
    """Per campaign and per button: unique clickers, clicks, click-through rate (unique
    clickers / delivered) and the median time from delivery to a clicker's first click.

    ``tracked``: whether URL buttons went out as tracked links; None: as the engines that
    sent the campaign recorded (``note_tracking``). Untracked URL buttons have no figures
    ("not tracked"): nobody can tell whether they were opened."""
    buttons = (
        await conn.execute(select(Campaign.buttons).where(Campaign.id == campaign_id))
    ).scalar() or []
    modes = set(
        (
            await conn.execute(
                select(ClickTracking.tracked).where(ClickTracking.campaign_id == campaign_id)
            )
        ).scalars()
    )
    if tracked is None:
        tracked = True in modes
    partly = modes == {True, False}
    firsts = (
        await conn.execute(
            select(
                Click.button,
                Click.subscriber_id,
                func.count(),
                func.min(Click.at),
                func.max(Delivery.updated_at),
            )
            .join(Delivery, Delivery.id == Click.delivery_id)
            .where(Click.campaign_id == campaign_id)
            .group_by(Click.button, Click.subscriber_id)
        )
    ).all()
    per: dict[int, list[Any]] = {}
    first_any: dict[int, float] = {}
    total = 0
    for b, sub, n, first, sent_at in firsts:
        wait = (first - sent_at).total_seconds() if first and sent_at else None
        per.setdefault(int(b), []).append((int(n), wait))
        total += int(n)
        if wait is not None:
            first_any[sub] = min(first_any.get(sub, wait), wait)
        else:
            first_any.setdefault(sub, 0.0)

    def rate(unique: int) -> float | None:
        return round(unique / delivered, 4) if delivered else None

    rows = []
    for i, (label, target) in enumerate(buttons):
        got = per.get(i, [])
        kind = "callback" if is_callback(target) else "url"
        unique = len(got)
        if kind == "url" and (not tracked or i not in trackable(buttons)):
            rows.append(
                {
                    "button": i,
                    "label": label,
                    "kind": kind,
                    "tracked": False,
                    "unique": None,
                    "clicks": None,
                    "ctr": None,
                    "median_first_click_s": None,
                }
            )
            continue
        rows.append(
            {
                "button": i,
                "label": label,
                "kind": kind,
                "tracked": "partly" if kind == "url" and partly else True,
                "unique": unique,
                "clicks": sum(n for n, _ in got),
                "ctr": rate(unique),
                "median_first_click_s": _median_s([w for _, w in got if w is not None]),
            }
        )
    return {
        "delivered": delivered,
        "unique": len(first_any),
        "clicks": total,
        "ctr": rate(len(first_any)),
        "median_first_click_s": _median_s(list(first_any.values())),
        "buttons": rows,
    }


async def per_recipient(conn: AsyncConnection, campaign_id: int) -> dict[int, tuple[str, str]]:
    """chat id -> (clicked button indexes, "0;2", and the first click's time) for the CSV."""
    rows = (
        await conn.execute(
            select(Click.chat_id, Click.button, func.min(Click.at))
            .where(Click.campaign_id == campaign_id)
            .group_by(Click.chat_id, Click.button)
            .order_by(Click.chat_id, Click.button)
        )
    ).all()
    out: dict[int, tuple[list[str], datetime]] = {}
    for chat, button, first in rows:
        got = out.setdefault(int(chat), ([], first))
        got[0].append(str(button))
        if first < got[1]:
            out[int(chat)] = (got[0], first)
    return {c: (";".join(b), f.isoformat()) for c, (b, f) in out.items()}


# -- tracked links ------------------------------------------------------------------------


def trackable(buttons: Any) -> tuple[int, ...]:
    """Indexes of the buttons that can go out as tracked links (http and https URLs)."""
    return tuple(
        i for i, (_l, t) in enumerate(buttons or []) if t.startswith(("http://", "https://"))
    )


def personal_buttons(
    wire: tuple[tuple[str, str], ...],
    tracked: tuple[int, ...],
    signer: LinkSigner,
    delivery_id: int,
    *,
    now: datetime,
) -> tuple[tuple[str, str], ...]:
    """One recipient's buttons: each trackable URL replaced by its signed redirect."""
    return tuple(
        (label, signer.url(delivery_id, i, now=now) if i in tracked else target)
        for i, (label, target) in enumerate(wire)
    )


async def note_tracking(db: Database, campaign_id: int, *, tracked: bool) -> None:
    async with db.write() as conn:
        await conn.execute(
            dialect_insert(db.dialect, ClickTracking)
            .values(campaign_id=campaign_id, tracked=tracked)
            .on_conflict_do_nothing(index_elements=["campaign_id", "tracked"])
        )
