"""Campaign actions' storage on both backends: plan and snapshot, claim, acting, recovery."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from tests.helpers import add_bot, add_campaign, add_delivery, add_subscriber

from botdesk.campaign_actions import ActionSpec, CampaignActions
from botdesk.delivery import action_ledger
from botdesk.errors import DeliveryError, TemplateError
from botdesk.store.db import Database

NOW = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


async def _sent(db: Database) -> tuple[int, int]:
    """A completed campaign: ann and bob sent, cy uncertain (no message id), dee blocked
    since (sent). Returns (bot id, campaign id)."""
    async with db.write() as conn:
        bot_id = await add_bot(conn)
        cid = await add_campaign(conn, bot_id, name="c", state="completed", text="hi", audience=4)
        people = [
            ("ann", 101, "active", "sent", 7),
            ("bob", 102, "active", "sent", 8),
            ("cy", 103, "active", "uncertain", None),
            ("dee", 104, "blocked", "sent", 9),
        ]
        for name, chat, status, state, mid in people:
            sid = await add_subscriber(conn, bot_id, chat, status=status, first_name=name.title())
            await add_delivery(conn, cid, sid, chat, state=state, message_id=mid)
    return bot_id, cid


async def test_plan_start_claim_and_recover(db: Any) -> None:
    bot_id, cid = await _sent(db)
    service = CampaignActions(db)
    plan = await service.plan(ActionSpec(campaign_id=cid, kind="edit", text="Hi {first_name}"))
    assert (plan.messages, plan.unknown, plan.bot) == (3, 1, "shop")
    assert "replace the text of 3 delivered messages" in plan.describe()
    with pytest.raises(TemplateError, match="for chat"):
        await service.plan(
            ActionSpec(campaign_id=cid, kind="edit", text="x" * 4094 + "{first_name}")
        )

    aid = await service.start(ActionSpec(campaign_id=cid, kind="recall"), now=NOW)
    with pytest.raises(DeliveryError, match="unfinished recall"):
        await service.start(ActionSpec(campaign_id=cid, kind="recall"), now=NOW)
    async with db.write() as conn:
        claimed = await action_ledger.claim(conn, action_id=aid, limit=10, now_ts=0.0, now=NOW)
    assert sorted(c.message_id for c in claimed) == [7, 8]  # dee is suppressed
    assert claimed[0].values["first_name"] in ("Ann", "Bob")
    ann, bob = sorted(claimed, key=lambda c: c.message_id)
    async with db.write() as conn:
        assert await action_ledger.mark_acting(conn, ann.id, now=NOW)
        assert not await action_ledger.mark_acting(conn, ann.id, now=NOW)  # once only
        await action_ledger.finish(conn, ann.id, state="recalled", now=NOW)
        assert await action_ledger.mark_acting(conn, bob.id, now=NOW)
    # A crash here: bob's request may have left. The next owner finds it acting.
    async with db.write() as conn:
        assert await action_ledger.recover(conn, bot_id=bot_id, now=NOW) == 1
        held = await action_ledger.claim(conn, action_id=aid, limit=10, now_ts=0.0, now=NOW)
    assert held == []
    assert await service.complete_if_done(aid, now=NOW)
    st = await service.status(aid)
    assert (st["state"], st["total"], st["recalled"], st["uncertain"], st["suppressed"]) == (
        "completed",
        3,
        1,
        1,
        1,
    )
    reasons = {r["state"]: r["reason"] for r in st["reasons"]}
    assert reasons["uncertain"].startswith("interrupted while deleting")
    assert reasons["suppressed"] == "subscriber blocked since the campaign"
    # Ann's message is gone: a later edit has bob's and dee's left.
    plan = await service.plan(ActionSpec(campaign_id=cid, kind="edit", text="ok"))
    assert plan.messages == 2
    assert [a["id"] for a in await service.for_campaign(cid)] == [aid]


async def test_cancel_an_unfinished_action(db: Any) -> None:
    _bot_id, cid = await _sent(db)
    service = CampaignActions(db)
    with pytest.raises(DeliveryError, match="no unfinished edit or recall"):
        await service.cancel(cid, now=NOW)
    aid = await service.start(ActionSpec(campaign_id=cid, kind="edit", text="fixed"), now=NOW)
    async with db.write() as conn:
        (first, *_rest) = await action_ledger.claim(
            conn, action_id=aid, limit=1, now_ts=0.0, now=NOW
        )
        assert await action_ledger.mark_acting(conn, first.id, now=NOW)
    assert await service.cancel(cid, now=NOW) == aid
    async with db.write() as conn:  # the request on the wire still finishes and is recorded
        await action_ledger.finish(conn, first.id, state="edited", now=NOW)
        assert not await action_ledger.mark_acting(conn, first.id + 1, now=NOW)
    st = await service.status(aid)
    assert (st["state"], st["edited"], st["cancelled"], st["pending"]) == ("cancelled", 1, 2, 0)
    assert st["edited"] + st["cancelled"] == st["total"] == 3
    # Nothing running any more: a new action may start.
    assert await service.open_action(cid) is None
    await service.plan(ActionSpec(campaign_id=cid, kind="recall"))


@pytest.mark.parametrize("kind", ["edit", "recall"])
async def test_a_subscriber_who_leaves_after_the_claim_is_not_acted_on(db: Any, kind: str) -> None:
    # Consent is re-read in the statement that marks a row acting (as for ``sending``): ann
    # sends /stop and bob is removed between the claim and the mark; neither is touched.
    from sqlalchemy import delete, update

    from botdesk.store.models import Subscriber

    _bot_id, cid = await _sent(db)
    service = CampaignActions(db)
    text = "fixed" if kind == "edit" else None
    aid = await service.start(ActionSpec(campaign_id=cid, kind=kind, text=text), now=NOW)
    async with db.write() as conn:
        claimed = await action_ledger.claim(conn, action_id=aid, limit=10, now_ts=0.0, now=NOW)
    ann, bob = sorted(claimed, key=lambda c: c.message_id)
    async with db.write() as conn:
        await conn.execute(
            update(Subscriber).where(Subscriber.chat_id == ann.chat_id).values(status="stopped")
        )
        await conn.execute(delete(Subscriber).where(Subscriber.chat_id == bob.chat_id))
    async with db.write() as conn:
        assert not await action_ledger.mark_acting(conn, ann.id, now=NOW)
        assert not await action_ledger.mark_acting(conn, bob.id, now=NOW)
    st = await service.status(aid)
    assert (st["acting"] if "acting" in st else 0) == 0
    assert st["suppressed"] == 3  # dee (blocked at the claim), ann and bob
    reasons = sorted(r["reason"] for r in st["reasons"] if r["state"] == "suppressed")
    assert "subscriber stopped before acting" in reasons
    assert "subscriber removed before acting" in reasons
