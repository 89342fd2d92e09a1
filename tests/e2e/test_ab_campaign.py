"""A/B test campaigns through the sandbox: split, variants delivered, replies decide, the
holdout gets the winner; no winner from noise, then the operator's pick. Both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from tests.e2e.campaign_support import copies, seed
from tests.e2e.support import app_on, eventually, register, running, write_config

from botdesk import abtest
from botdesk.ab_campaigns import AbTests
from botdesk.app import App
from botdesk.bots import BotRegistry
from botdesk.campaigns import Campaigns, CampaignSpec
from botdesk.errors import DeliveryError, ValidationError
from botdesk.runtime.foreground import run_campaign
from botdesk.sandbox.testing import running_sandbox
from botdesk.store.models import AbTest, AbVariant, Click, Delivery, Message

BOT = "shop_bot"
A, B = "Spring sale: 10% off everything", "Spring sale: a gift with every order"
WINDOW = timedelta(hours=1)


@pytest.fixture
async def ab_app(backend: tuple[str, str | None], home: Path) -> AsyncIterator[App]:
    write_config(home)
    async with app_on(home, *backend) as a:
        yield a


@pytest.fixture
async def fast_sandbox() -> AsyncIterator[Any]:
    async with running_sandbox(seed=5, limits=False) as sb:
        yield sb


async def _create(app: App, buttons: list[tuple[str, str]] | None = None, **kw: Any) -> int:
    rec = await BotRegistry(app.db, app.secrets).get("shop")
    kw.setdefault("test_share", 0.5)
    kw.setdefault("metric", "replies")
    kw.setdefault("decide_after", WINDOW)
    spec = CampaignSpec(bot="shop", text="(variants)", buttons=buttons or [])
    return await AbTests(app.db).create(spec, [A, B], rec, now=datetime.now(UTC), **kw)


async def _children(app: App, parent: int) -> list[int]:
    async with app.db.read() as conn:
        rows = await conn.execute(
            select(AbVariant.campaign_id)
            .where(AbVariant.parent_id == parent)
            .order_by(AbVariant.number)
        )
        return [r[0] for r in rows]


async def _sent(app: App, campaign_ids: list[int]) -> int:
    async with app.db.read() as conn:
        q = select(func.count()).where(
            Delivery.campaign_id.in_(campaign_ids), Delivery.state == "sent"
        )
        return int((await conn.execute(q)).scalar() or 0)


async def test_replies_pick_variant_b_and_the_holdout_gets_it(
    ab_app: App, fast_sandbox: Any
) -> None:
    sb, app = fast_sandbox, ab_app
    await register(app, sb, "shop", BOT)
    users = await seed(app, sb, "shop", BOT, 400)
    parent = await _create(app, seed=123)
    children = await _children(app, parent)
    started = datetime.now(UTC)
    async with running(app):
        info = await Campaigns(app.db).start(parent, now=started)
        assert info.state == "testing"

        async def test_share_sent() -> bool:
            return await _sent(app, children) == 200

        await eventually(test_share_sent, within=30)
        got_a, got_b = copies(sb, BOT, A), copies(sb, BOT, B)
        assert len(got_a) == len(got_b) == 100 and not set(got_a) & set(got_b)
        # Variant B's recipients answer far more often; one of them answers and then leaves,
        # which counts against B.
        repliers_b, repliers_a = sorted(got_b)[:40], sorted(got_a)[:8]
        for chat in repliers_a + repliers_b:
            await sb.user_send(chat, BOT, "tell me more")
        await sb.user_send(repliers_b[0], BOT, "/stop")

        async def replies_stored() -> bool:
            async with app.db.read() as conn:
                q = select(func.count()).where(
                    Message.direction == "in", Message.text == "tell me more"
                )
                return (await conn.execute(q)).scalar() == 48

        await eventually(replies_stored, within=30)
        ab = AbTests(app.db)
        with pytest.raises(DeliveryError, match="peeking"):
            await ab.decide(parent, now=datetime.now(UTC))
    out = await ab.decide(parent, now=started + WINDOW + timedelta(seconds=1))
    assert [(v.delivered, v.successes, v.left) for v in out.variants] == [
        (100, 8, 0),
        (100, 39, 1),
    ]
    assert isinstance(out.decision, abtest.Winner)
    assert out.decision.best == 1 and out.decision.interval.low > 0
    assert out.sent_to == 2
    # The holdout is the other 200 (the one who left was in the test share).
    assert out.holdout == 200
    await run_campaign(app, parent)
    holdout_got = copies(sb, BOT, B).keys() - got_b.keys()
    everyone = {u.id for u in users}
    assert holdout_got == everyone - set(got_a) - set(got_b)
    assert set(copies(sb, BOT, A)) == set(got_a)  # A never went to the holdout
    assert max(copies(sb, BOT, "Spring sale").values()) == 1  # nobody got two variants
    async with app.db.read() as conn:
        test = (await conn.execute(select(AbTest).where(AbTest.campaign_id == parent))).one()
    assert test.seed == 123 and test.winner == 2
    assert test.decision["outcome"] == "winner" and test.decision["p_value"] < 0.001
    with pytest.raises(DeliveryError, match="already decided"):
        await ab.decide(parent, now=started + 2 * WINDOW)


async def test_no_difference_sends_nothing_until_the_operator_picks(
    ab_app: App, fast_sandbox: Any
) -> None:
    sb, app = fast_sandbox, ab_app
    await register(app, sb, "shop", BOT)
    await seed(app, sb, "shop", BOT, 60)
    parent = await _create(app, test_share=0.4)
    started = datetime.now(UTC)
    await Campaigns(app.db).start(parent, now=started)
    for child in await _children(app, parent):
        await run_campaign(app, child)
    ab = AbTests(app.db)
    later = started + WINDOW + timedelta(seconds=1)
    out = await ab.decide(parent, now=later)
    assert isinstance(out.decision, abtest.NoSignificantDifference)
    assert out.decision.interval.contains(0.0)
    assert out.sent_to is None and out.holdout == 0
    assert (await Campaigns(app.db).get(parent)).state == "undecided"
    assert len(copies(sb, BOT, "Spring sale")) == 24  # the test share only
    with pytest.raises(ValidationError):
        await ab.decide(parent, now=later, pick=3)
    picked = await ab.decide(parent, now=later, pick=1)
    assert picked.sent_to == 1 and picked.holdout == 36
    await run_campaign(app, parent)
    assert len(copies(sb, BOT, A)) == 12 + 36 and len(copies(sb, BOT, B)) == 12


async def test_variants_cannot_be_started_alone(ab_app: App, fast_sandbox: Any) -> None:
    sb, app = fast_sandbox, ab_app
    await register(app, sb, "shop", BOT)
    await seed(app, sb, "shop", BOT, 10)
    parent = await _create(app)
    child = (await _children(app, parent))[0]
    with pytest.raises(DeliveryError, match="ab-variant"):
        await Campaigns(app.db).start(child, now=datetime.now(UTC))
    with pytest.raises(ValidationError, match="fewer than one per variant"):
        small = await _create(app, test_share=0.1)
        await Campaigns(app.db).start(small, now=datetime.now(UTC))


async def test_serve_decides_when_the_window_ends(ab_app: App, fast_sandbox: Any) -> None:
    sb, app = fast_sandbox, ab_app
    await register(app, sb, "shop", BOT)
    await seed(app, sb, "shop", BOT, 40)
    parent = await _create(app, decide_after=timedelta(seconds=4))
    camps = Campaigns(app.db)
    async with running(app):
        await camps.start(parent, now=datetime.now(UTC))

        async def decided() -> bool:
            return (await camps.get(parent)).state == "undecided"

        await eventually(decided, within=30)
    async with app.db.read() as conn:
        test = (await conn.execute(select(AbTest).where(AbTest.campaign_id == parent))).one()
    # Nobody replied: no winner, nothing sent to the holdout, the decision recorded.
    assert test.decision["outcome"] == "no significant difference" and test.winner is None
    assert test.decided_at is not None
    assert len(copies(sb, BOT, "Spring sale")) == 20
    # Deciding again (the window's counts are fixed) gives the same answer and sends nothing.
    again = await AbTests(app.db).decide(parent, now=datetime.now(UTC))
    assert isinstance(again.decision, abtest.NoSignificantDifference) and again.sent_to is None


async def test_unsubscribes_count_against_the_variant_that_drove_them(
    ab_app: App, fast_sandbox: Any
) -> None:
    sb, app = fast_sandbox, ab_app
    await register(app, sb, "shop", BOT)
    await seed(app, sb, "shop", BOT, 100)
    parent = await _create(app, test_share=1.0, metric="unsubscribes")
    children = await _children(app, parent)
    started = datetime.now(UTC)
    async with running(app):
        await Campaigns(app.db).start(parent, now=started)

        async def all_sent() -> bool:
            return await _sent(app, children) == 100

        await eventually(all_sent, within=30)
        got_a, got_b = copies(sb, BOT, A), copies(sb, BOT, B)
        leavers = sorted(got_a)[:20] + sorted(got_b)[:2]
        for chat in leavers[:-1]:
            await sb.user_send(chat, BOT, "/stop")
        await sb.user_block(leavers[-1], BOT)  # blocking counts as leaving too

        async def recorded() -> bool:
            out = await AbTests(app.db).results(parent, now=datetime.now(UTC))
            return sum(v.left for v in out.variants) == 22

        await eventually(recorded, within=30)
    out = await AbTests(app.db).decide(parent, now=started + WINDOW + timedelta(seconds=1))
    assert [(v.delivered, v.successes, v.left) for v in out.variants] == [
        (50, 30, 20),
        (50, 48, 2),
    ]
    assert isinstance(out.decision, abtest.Winner) and out.decision.best == 1
    # A test share of 1.0 leaves no holdout: the winner is recorded, nothing more is sent.
    assert out.sent_to == 2 and out.holdout == 0
    assert (await Campaigns(app.db).get(parent)).state == "completed"


async def test_cancelling_the_test_cancels_its_variants(ab_app: App, fast_sandbox: Any) -> None:
    sb, app = fast_sandbox, ab_app
    await register(app, sb, "shop", BOT)
    await seed(app, sb, "shop", BOT, 30)
    camps = Campaigns(app.db)
    draft = await _create(app)
    assert (await camps.cancel(draft, now=datetime.now(UTC))).state == "cancelled"
    assert {(await camps.get(c)).state for c in await _children(app, draft)} == {"cancelled"}
    with pytest.raises(DeliveryError):
        await camps.start(draft, now=datetime.now(UTC))
    parent = await _create(app)
    await camps.start(parent, now=datetime.now(UTC))  # nothing delivers: no worker runs
    assert (await camps.cancel(parent, now=datetime.now(UTC))).state == "cancelled"
    for child in await _children(app, parent):
        st = await camps.status(child, now=datetime.now(UTC))
        assert (st["state"], st["pending"], st["cancelled"]) == ("cancelled", 0, st["audience"])
    with pytest.raises(DeliveryError):
        await AbTests(app.db).decide(parent, now=datetime.now(UTC) + 2 * WINDOW)
    assert sb.messages(bot=BOT) == []


async def test_clicks_decide_from_the_click_ledger(ab_app: App, fast_sandbox: Any) -> None:
    """The clicks metric: sandbox users press variant A's callback button far more often;
    a second press by the same recipient is one success, not two."""
    sb, app = fast_sandbox, ab_app
    await register(app, sb, "shop", BOT)
    await seed(app, sb, "shop", BOT, 200)
    parent = await _create(app, buttons=[("Show me", "cb:interested")], metric="clicks", seed=7)
    children = await _children(app, parent)
    started = datetime.now(UTC)
    async with running(app):
        await Campaigns(app.db).start(parent, now=started)

        async def test_share_sent() -> bool:
            return await _sent(app, children) == 100

        await eventually(test_share_sent, within=30)
        pressers = sorted(copies(sb, BOT, A))[:30] + sorted(copies(sb, BOT, B))[:3]
        for chat in pressers:
            (m,) = [m for m in sb.messages(bot=BOT, chat_id=chat) if "Spring" in m["text"]]
            data = m["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
            for _ in range(2 if chat == pressers[0] else 1):
                await sb.user_press(chat, BOT, m["message_id"], data)

        async def counted() -> bool:
            async with app.db.read() as conn:
                q = select(func.count()).select_from(Click)
                return (await conn.execute(q)).scalar() == len(pressers) + 1

        await eventually(counted, within=30)
    out = await AbTests(app.db).decide(parent, now=started + WINDOW + timedelta(seconds=1))
    assert [(v.delivered, v.successes) for v in out.variants] == [(50, 30), (50, 3)]
    assert isinstance(out.decision, abtest.Winner) and out.decision.best == 0
