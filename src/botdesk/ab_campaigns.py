"""A/B test campaigns: variants, the seeded split at start, the metric, the decision, the winner.

An A/B test is a parent campaign plus one child campaign per variant (``store.models.AbTest``):

- ``create``: every variant is validated like a campaign; the parent (state ``draft``) and the
  children (state ``ab-variant``: never started on their own) are stored with the metric, the
  test share, the window and a freshly drawn seed.
- ``start_split`` (called by ``Campaigns.start`` for a parent): the audience snapshot is split
  with ``abtest.split_audience``; each child gets pending deliveries for its group and runs like
  any campaign (same worker, same limiter, same ledger); the holdout is recorded; the parent is
  ``testing``.
- ``decide`` after the window: the metric per variant, ``abtest.decide``, and either the winner's
  text to the holdout (a new snapshot of deliveries on the parent, which then runs) or "no
  significant difference" (parent ``undecided``; nothing is sent until ``decide(pick=N)``).

The metric per recipient of a variant that was delivered (``sent``), from the test's start to the
end of the window: ``replies`` = wrote to the bot (inbox ``messages``, in, author user, not a
/command);
``unsubscribes`` = did not unsubscribe or block (consent events), so higher is better for every
metric. Unsubscribing or blocking in the window also cancels a reply or a click: unsubscribes
count against a variant whatever the metric.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import and_, case, exists, func, insert, literal, select, update

from botdesk import abtest
from botdesk.bots import BotRecord
from botdesk.campaigns import Campaigns, CampaignSpec
from botdesk.errors import DeliveryError, NotFoundError, ValidationError
from botdesk.log import get_logger
from botdesk.segments import audience_filter
from botdesk.store.db import Database
from botdesk.store.models import (
    AB_METRICS,
    AbHoldout,
    AbTest,
    AbVariant,
    Campaign,
    Click,
    ConsentEvent,
    Conversation,
    Delivery,
    Message,
    Subscriber,
)

log = get_logger(__name__)
Metric = Literal["clicks", "replies", "unsubscribes"]
VARIANT_STATE = "ab-variant"  # a child waiting for its parent's start
TESTING, UNDECIDED = "testing", "undecided"
LEAVING_KINDS = ("unsubscribe", "block")
# The metrics a test can be decided on, for the interfaces (the CLI's --metric, the GUI).
METRICS: tuple[str, ...] = tuple(AB_METRICS)
# The clicks metric counts rows of the clicks ledger (clicks.py); see clicked_recipients.
CLICKS_AVAILABLE = True
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``24h``, ``2d``."""
    m = _DURATION.match(text)
    if not m or float(m.group(1)) <= 0:
        raise ValidationError(f"a duration is a positive number with s, m, h or d: {text!r}")
    return timedelta(seconds=float(m.group(1)) * _UNIT_S[m.group(2)])


def variant_label(number: int) -> str:
    return "ABCD"[number - 1]


@dataclass(frozen=True)
class VariantResult:
    number: int
    campaign_id: int
    delivered: int  # trials: recipients the variant reached
    successes: int
    left: int  # unsubscribed or blocked in the window


@dataclass(frozen=True)
class DecideOutcome:
    campaign_id: int
    metric: str
    window_end: datetime
    variants: tuple[VariantResult, ...]
    decision: abtest.Decision | None  # None when the operator picked without a test
    sent_to: int | None  # the variant sent to the holdout, or None
    holdout: int  # deliveries created for the holdout


async def is_test(conn: Any, campaign_id: int) -> bool:
    row = await conn.execute(select(AbTest.campaign_id).where(AbTest.campaign_id == campaign_id))
    return row.first() is not None


async def variant_campaigns(db: Database, campaign_id: int) -> list[int]:
    """The children of A/B test ``campaign_id`` (none when it is not one)."""
    async with db.read() as conn:
        rows = await conn.execute(
            select(AbVariant.campaign_id)
            .where(AbVariant.parent_id == campaign_id)
            .order_by(AbVariant.number)
        )
        return [r[0] for r in rows]


async def summary(db: Database, campaign_id: int) -> dict[str, Any] | None:
    """The test's settings, variants and recorded decision (None when it is not a test)."""
    async with db.read() as conn:
        test = (await conn.execute(select(AbTest).where(AbTest.campaign_id == campaign_id))).first()
    if test is None:
        return None
    started = test.started_at
    return {
        "metric": test.metric,
        "test_share": test.test_share,
        "seed": test.seed,
        "decide_after_s": test.decide_after_s,
        "started_at": started.isoformat() if started else None,
        "window_end": (
            (started + timedelta(seconds=test.decide_after_s)).isoformat() if started else None
        ),
        "decided_at": test.decided_at.isoformat() if test.decided_at else None,
        "variant_campaigns": await variant_campaigns(db, campaign_id),
        "winner": test.winner,
        "decision": test.decision,
    }


async def start_split(
    conn: Any, campaign_id: int, bot_id: int, segment: str | None, *, now: datetime
) -> None:
    """The parent's start, inside ``Campaigns.start``'s transaction: split and start children."""
    test = (await conn.execute(select(AbTest).where(AbTest.campaign_id == campaign_id))).one()
    children = (
        await conn.execute(
            select(AbVariant.number, AbVariant.campaign_id, Campaign.state)
            .join(Campaign, Campaign.id == AbVariant.campaign_id)
            .where(AbVariant.parent_id == campaign_id)
            .order_by(AbVariant.number)
        )
    ).all()
    if any(state != VARIANT_STATE for _n, _c, state in children):
        raise DeliveryError(f"campaign {campaign_id}: a variant is no longer waiting to start")
    rows = (
        await conn.execute(
            select(Subscriber.id, Subscriber.chat_id).where(
                audience_filter(bot_id, segment, now=now)
            )
        )
    ).all()
    if not rows:
        raise DeliveryError("the audience is empty now: nothing to send, campaign not started")
    chat = dict(rows)
    split = abtest.split_audience(
        list(chat), variants=len(children), test_share=test.test_share, seed=test.seed
    )
    for (_number, child, _state), group in zip(children, split.groups, strict=True):
        await conn.execute(
            insert(Delivery),
            [
                {
                    "campaign_id": child,
                    "subscriber_id": s,
                    "chat_id": chat[s],
                    "state": "pending",
                    "attempts": 0,
                }
                for s in group
            ],
        )
        await conn.execute(
            update(Campaign)
            .where(Campaign.id == child)
            .values(state="running", audience=len(group), started_at=now)
        )
    if split.holdout:
        await conn.execute(
            insert(AbHoldout),
            [
                {"parent_id": campaign_id, "subscriber_id": s, "chat_id": chat[s]}
                for s in split.holdout
            ],
        )
    await conn.execute(
        update(Campaign).where(Campaign.id == campaign_id).values(state=TESTING, started_at=now)
    )
    await conn.execute(
        update(AbTest).where(AbTest.campaign_id == campaign_id).values(started_at=now)
    )


def clicked_recipients(bot_id: int, campaign_id: int, end: datetime) -> Any:
    """The condition "this delivery's recipient clicked a button of ``campaign_id`` before
    ``end``", for the clicks metric: a press of a callback button or an opening of a tracked
    link, both rows of the clicks ledger tied to the delivery that carried the button."""
    return (
        exists()
        .where(Click.campaign_id == campaign_id, Click.delivery_id == Delivery.id, Click.at <= end)
        .correlate(Delivery)
    )


async def decide_due(db: Database, bot_id: int, *, now: datetime) -> list[DecideOutcome]:
    """``serve``'s automatic decision: every test of ``bot_id`` whose window has ended."""
    async with db.read() as conn:
        rows = (
            await conn.execute(
                select(AbTest.campaign_id, AbTest.started_at, AbTest.decide_after_s)
                .join(Campaign, Campaign.id == AbTest.campaign_id)
                .where(Campaign.bot_id == bot_id, Campaign.state == TESTING)
            )
        ).all()
    done = []
    tests = AbTests(db)
    for cid, started, after in rows:
        if started is None or now < started + timedelta(seconds=after):
            continue
        try:
            done.append(await tests.decide(cid, now=now))
        except DeliveryError as exc:  # decided by someone else meanwhile
            log.info("A/B test not decided here", campaign=cid, reason=str(exc))
            continue
        log.info("A/B test decided", campaign=cid, result=" | ".join(describe(done[-1])))
    return done


class AbTests:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.campaigns = Campaigns(db)

    async def create(
        self,
        spec: CampaignSpec,
        variants: list[str],
        bot: BotRecord,
        *,
        test_share: float,
        metric: str,
        decide_after: timedelta,
        now: datetime,
        seed: int | None = None,
    ) -> int:
        """Validate every variant and store the parent and its children; returns the parent id."""
        if not abtest.MIN_VARIANTS <= len(variants) <= abtest.MAX_VARIANTS:
            raise ValidationError(
                f"--variant: an A/B test needs {abtest.MIN_VARIANTS}-{abtest.MAX_VARIANTS} "
                f"variants, got {len(variants)}"
            )
        if metric not in AB_METRICS:
            raise ValidationError(f"--metric must be one of {', '.join(AB_METRICS)}")
        if metric == "clicks" and not CLICKS_AVAILABLE:
            raise ValidationError(
                "--metric clicks needs button clicks, not in this build yet; "
                "use replies or unsubscribes"
            )
        if not 0 < test_share <= 1:
            raise ValidationError(f"--test-share must be in (0, 1], got {test_share:g}")
        if spec.at is not None:
            raise ValidationError("an A/B test starts with `campaign start`, not --at")
        checked = [
            await self.campaigns.validate(replace(spec, text=v), bot, now=now) for v in variants
        ]
        name = spec.name or f"{bot.name} {now:%Y-%m-%d %H:%M} A/B"
        parent = await self.campaigns.create(
            replace(spec, text=variants[0], name=name), bot, now=now, checked=checked[0]
        )
        children = []
        for i, (text, est) in enumerate(zip(variants, checked, strict=True), start=1):
            child = await self.campaigns.create(
                replace(spec, text=text, name=f"{name} [{variant_label(i)}]"),
                bot,
                now=now,
                checked=est,
            )
            children.append(child.id)
        async with self.db.write() as conn:
            await conn.execute(
                insert(AbTest).values(
                    campaign_id=parent.id,
                    metric=metric,
                    test_share=test_share,
                    decide_after_s=decide_after.total_seconds(),
                    seed=secrets.randbits(62) if seed is None else seed,
                )
            )
            await conn.execute(
                insert(AbVariant),
                [
                    {"parent_id": parent.id, "number": i, "campaign_id": c}
                    for i, c in enumerate(children, start=1)
                ],
            )
            await conn.execute(
                update(Campaign).where(Campaign.id.in_(children)).values(state=VARIANT_STATE)
            )
        return parent.id

    async def _load(self, conn: Any, campaign_id: int) -> tuple[Any, Any, list[Any]]:
        test = (await conn.execute(select(AbTest).where(AbTest.campaign_id == campaign_id))).first()
        if test is None:
            raise NotFoundError(f"campaign {campaign_id} is not an A/B test")
        parent = (
            await conn.execute(
                select(Campaign.state, Campaign.bot_id, Campaign.segment).where(
                    Campaign.id == campaign_id
                )
            )
        ).one()
        children = (
            await conn.execute(
                select(AbVariant.number, AbVariant.campaign_id, Campaign.text)
                .join(Campaign, Campaign.id == AbVariant.campaign_id)
                .where(AbVariant.parent_id == campaign_id)
                .order_by(AbVariant.number)
            )
        ).all()
        return test, parent, children

    async def results(self, campaign_id: int, *, now: datetime) -> DecideOutcome:
        """The metric per variant so far (the window's end, or now if earlier), no decision."""
        async with self.db.read() as conn:
            test, parent, children = await self._load(conn, campaign_id)
            if test.started_at is None:
                raise DeliveryError(f"campaign {campaign_id} has not started its test")
            end = test.started_at + timedelta(seconds=test.decide_after_s)
            rows = [
                await self._measure(
                    conn, parent.bot_id, child, number, test.metric, test.started_at, min(end, now)
                )
                for number, child, _text in children
            ]
        return DecideOutcome(campaign_id, test.metric, end, tuple(rows), None, None, 0)

    async def _measure(
        self,
        conn: Any,
        bot_id: int,
        child: int,
        number: int,
        metric: str,
        start: datetime,
        end: datetime,
    ) -> VariantResult:
        # The window opens at the test's start for everyone, not at each delivery's ``sent``
        # time: the ledger records that in batches, a moment after the send, and a quick reply
        # must not fall before it. The split is random, so the earlier start biases no variant.
        left = (
            exists()
            .where(
                ConsentEvent.bot_id == bot_id,
                ConsentEvent.chat_id == Delivery.chat_id,
                ConsentEvent.kind.in_(LEAVING_KINDS),
                ConsentEvent.at >= start,
                ConsentEvent.at <= end,
            )
            .correlate(Delivery)
        )
        if metric == "replies":
            did = (
                exists()
                .where(
                    Conversation.bot_id == bot_id,
                    Conversation.chat_id == Delivery.chat_id,
                    Message.conversation_id == Conversation.id,
                    Message.direction == "in",
                    Message.author == "user",
                    # Commands (/start, /stop, /help) are not answers to the message.
                    ~Message.text.startswith("/"),
                    Message.at >= start,
                    Message.at <= end,
                )
                .correlate(Delivery)
            )
            success = and_(did, ~left)
        elif metric == "clicks":
            success = and_(clicked_recipients(bot_id, child, end), ~left)
        else:
            success = ~left
        row = (
            await conn.execute(
                select(
                    func.count(),
                    func.coalesce(func.sum(case((success, 1), else_=0)), 0),
                    func.coalesce(func.sum(case((left, 1), else_=0)), 0),
                ).where(
                    Delivery.campaign_id == child,
                    Delivery.state == "sent",
                )
            )
        ).one()
        return VariantResult(number, child, int(row[0]), int(row[1]), int(row[2]))

    async def decide(
        self, campaign_id: int, *, now: datetime, pick: int | None = None
    ) -> DecideOutcome:
        """After the window: test and send the winner, or record no significant difference.
        ``pick``: the operator's choice of variant, sent whatever the test says."""
        out = await self.results(campaign_id, now=now)
        async with self.db.read() as conn:
            test, parent, children = await self._load(conn, campaign_id)
        if parent.state not in (TESTING, UNDECIDED):
            raise DeliveryError(
                f"campaign {campaign_id} is {parent.state}: "
                + ("already decided" if test.decided_at else "no test to decide")
            )
        if now < out.window_end:
            raise DeliveryError(
                f"the test window ends at {out.window_end:%Y-%m-%d %H:%M:%S} UTC; deciding "
                "earlier would be peeking (see docs/engagement.md)"
            )
        if pick is not None and not 1 <= pick <= len(children):
            raise ValidationError(f"--pick must be 1-{len(children)}")
        decision: abtest.Decision | None = None
        if all(v.delivered > 0 for v in out.variants):
            decision = abtest.decide(
                [abtest.Arm(v.successes, v.delivered) for v in out.variants], seed=test.seed
            )
        # else a variant reached nobody: no test is possible, only the operator's pick.
        chosen = pick
        if chosen is None and isinstance(decision, abtest.Winner):
            chosen = decision.best + 1
        record = _decision_record(out, decision)
        sent = 0
        async with self.db.write() as conn:
            # The claim: of two deciders (serve and the CLI, or two workers) one moves the
            # parent out of testing/undecided; the other finds it decided and sends nothing.
            claimed = await conn.execute(
                update(Campaign)
                .where(Campaign.id == campaign_id, Campaign.state.in_((TESTING, UNDECIDED)))
                .values(state=UNDECIDED)
            )
            if not claimed.rowcount:
                raise DeliveryError(f"campaign {campaign_id} was decided meanwhile")
            if chosen is not None:
                text = children[chosen - 1].text
                sent = await self._send_winner(conn, campaign_id, parent, text, now=now)
            await conn.execute(
                update(AbTest)
                .where(AbTest.campaign_id == campaign_id)
                .values(decision=record, decided_at=now, winner=chosen)
            )
        return replace(out, decision=decision, sent_to=chosen, holdout=sent)

    async def _send_winner(
        self, conn: Any, campaign_id: int, parent: Any, text: str, *, now: datetime
    ) -> int:
        # Only holdout members still in the audience now (consent is checked again).
        src = (
            select(
                literal(campaign_id),
                Subscriber.id,
                Subscriber.chat_id,
                literal("pending"),
                literal(0),
            )
            .join(AbHoldout, AbHoldout.subscriber_id == Subscriber.id)
            .where(
                AbHoldout.parent_id == campaign_id,
                audience_filter(parent.bot_id, parent.segment, now=now),
            )
        )
        res = await conn.execute(
            insert(Delivery).from_select(
                ["campaign_id", "subscriber_id", "chat_id", "state", "attempts"], src
            )
        )
        n = int(res.rowcount or 0)
        await conn.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id)
            .values(
                text=text,
                audience=n,
                state="running" if n else "completed",
                finished_at=None if n else now,
            )
        )
        return n


def _decision_record(out: DecideOutcome, d: abtest.Decision | None) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "metric": out.metric,
        "variants": [
            {"number": v.number, "delivered": v.delivered, "successes": v.successes, "left": v.left}
            for v in out.variants
        ],
    }
    if d is None:
        rec["outcome"] = "no test: a variant reached nobody"
    else:
        rec |= {
            "outcome": "winner" if isinstance(d, abtest.Winner) else "no significant difference",
            "best": d.best + 1,
            "runner_up": d.runner_up + 1,
            "difference": d.difference,
            "interval": [d.interval.low, d.interval.high],
            "level": d.interval.level,
            "test": d.omnibus.method,
            "statistic": d.omnibus.statistic,
            "p_value": d.omnibus.p_value,
        }
    return rec


_DID = {"replies": "replied", "unsubscribes": "stayed subscribed", "clicks": "clicked"}


def outcome_dict(out: DecideOutcome) -> dict[str, Any]:
    return {
        "campaign": out.campaign_id,
        "window_end": out.window_end.isoformat(),
        "sent_to": out.sent_to,
        "holdout": out.holdout,
    } | _decision_record(out, out.decision)


def recorded_difference(d: dict[str, Any]) -> str:
    """A recorded decision's (``ab_tests.decision``) difference, interval and test in words."""
    best, runner = variant_label(d["best"]), variant_label(d["runner_up"])
    low, high = d["interval"]
    ci = f"{d['level']:.1%} CI {low * 100:+.1f} to {high * 100:+.1f} points"
    test = f"{d['test']} test p = {d['p_value']:.3g}"
    return f"{best} − {runner} = {d['difference'] * 100:+.1f} points ({ci}); {test}"


def describe(out: DecideOutcome) -> list[str]:
    """The decision in words, one line a fact (for the CLI)."""
    lines = []
    for v in out.variants:
        share = f" ({v.successes / v.delivered:.1%})" if v.delivered else ""
        lines.append(
            f"variant {variant_label(v.number)}: {v.successes} of {v.delivered} "
            f"{_DID[out.metric]}{share}, {v.left} unsubscribed or blocked"
        )
    d = out.decision
    if d is not None:
        best, runner = variant_label(d.best + 1), variant_label(d.runner_up + 1)
        ci = (
            f"{d.interval.level:.1%} CI {d.interval.low * 100:+.1f} to "
            f"{d.interval.high * 100:+.1f} points"
        )
        test = f"{d.omnibus.method} test p = {d.omnibus.p_value:.3g}"
        if isinstance(d, abtest.Winner):
            lines.append(
                f"winner: variant {best}, {d.difference * 100:+.1f} points over {runner} "
                f"({ci}); {test}"
            )
        else:
            lines.append(
                f"no significant difference: {best} - {runner} = {d.difference * 100:+.1f} "
                f"points ({ci}); {test}"
            )
    if out.sent_to is not None:
        lines.append(
            f"variant {variant_label(out.sent_to)} goes to the rest: {out.holdout} recipients"
        )
    else:
        lines.append(
            f"nothing sent; choose with `botdesk campaign decide {out.campaign_id} --pick N`"
        )
    return lines
