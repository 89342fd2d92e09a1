"""Campaign delivery through the sandbox: everyone once, the ledger adds up, faults handled."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from tests.e2e.campaign_support import accounted, copies, create, seed, status
from tests.e2e.support import register
from tests.integration.test_campaign_validation import _png

from botdesk.app import App, open_app
from botdesk.runtime.foreground import run_campaign
from botdesk.sandbox.testing import running_sandbox
from botdesk.store.models import Campaign, Subscriber

FAST = "[delivery]\nrate = 1000.0\n[network]\nread_timeout = 1.0\nconnect_timeout = 1.0\n"


@pytest.fixture
async def fast_app(home: Path) -> AsyncIterator[App]:
    (home / "botdesk.toml").write_text(FAST)
    async with open_app(home, configure_logs=False) as a:
        yield a


@pytest.fixture
async def fast_sandbox() -> AsyncIterator[Any]:
    # Limits lifted: these tests are about correctness, not pacing (bench/ measures pacing).
    async with running_sandbox(seed=3, limits=False) as sb:
        yield sb


async def test_every_subscriber_gets_one_personal_copy(fast_app: App, fast_sandbox: Any) -> None:
    sb = fast_sandbox
    await register(fast_app, sb, "shop", "shop_bot")
    users = await seed(fast_app, sb, "shop", "shop_bot", 120)
    cid = await create(fast_app, "shop", "Hi <b>{first_name}</b>, spring sale!", parse_mode="html")
    stats = await run_campaign(fast_app, cid)
    st = await status(fast_app, cid)
    assert st["state"] == "completed"
    assert st["sent"] == st["audience"] == 120 == stats.sent
    got = copies(sb, "shop_bot", "spring sale")
    assert set(got) == {u.id for u in users} and set(got.values()) == {1}
    by_chat = {m["chat_id"]: m["text"] for m in sb.messages(bot="shop_bot")}
    assert all(by_chat[u.id] == f"Hi {u.first_name}, spring sale!" for u in users)


async def test_unreachable_users_are_suppressed_and_skipped_later(
    fast_app: App, fast_sandbox: Any
) -> None:
    sb = fast_sandbox
    await register(fast_app, sb, "shop", "shop_bot")
    users = await seed(fast_app, sb, "shop", "shop_bot", 30)
    await sb.user_block(users[0].id, "shop_bot")
    sb.user_deactivate(users[1].id)
    sb.user_delete(users[2].id)
    cid = await create(fast_app, "shop", "first news")
    await run_campaign(fast_app, cid)
    st = await status(fast_app, cid)
    assert (st["sent"], st["suppressed"], accounted(st)) == (27, 3, 30)
    async with fast_app.db.read() as conn:
        rows = dict((await conn.execute(select(Subscriber.chat_id, Subscriber.status))).all())
    assert rows[users[0].id] == "blocked"
    assert rows[users[1].id] == "deactivated"
    assert rows[users[2].id] == "gone"
    cid2 = await create(fast_app, "shop", "second news")
    await run_campaign(fast_app, cid2)
    st2 = await status(fast_app, cid2)
    assert (st2["audience"], st2["sent"], st2["suppressed"]) == (27, 27, 0)


async def test_storms_and_resets_lose_nobody_and_duplicate_nothing(
    fast_app: App, fast_sandbox: Any
) -> None:
    sb = fast_sandbox
    await register(fast_app, sb, "shop", "shop_bot")
    users = await seed(fast_app, sb, "shop", "shop_bot", 200)
    sb.set_faults("reset=0.05,5xx=0.05,storm=1@0.2")
    cid = await create(fast_app, "shop", "storm news")
    await run_campaign(fast_app, cid)
    st = await status(fast_app, cid)
    assert st["state"] == "completed"
    assert accounted(st) == st["audience"] == 200
    assert st["pending"] == st["sending"] == 0
    got = copies(sb, "shop_bot", "storm news")
    assert max(got.values()) == 1  # nobody twice
    # A reset after the request was written cannot be told apart from a lost answer: such
    # rows are uncertain (and not in the sandbox's record); every other user got it once.
    faults = sb.stats()["faults"]
    assert faults.get("reset", 0) > 0 and faults.get("storm", 0) > 0
    assert st["sent"] == len(got) == 200 - st["uncertain"] - st["failed"]
    assert st["uncertain"] == faults.get("reset", 0)
    assert {u.id for u in users} >= set(got)


async def test_lost_answer_becomes_uncertain_and_is_not_resent(
    fast_app: App, fast_sandbox: Any
) -> None:
    sb = fast_sandbox
    await register(fast_app, sb, "shop", "shop_bot")
    await seed(fast_app, sb, "shop", "shop_bot", 40)
    sb.set_faults("stall=0.1,hold=3")
    cid = await create(fast_app, "shop", "ack lost news")
    await run_campaign(fast_app, cid)
    st = await status(fast_app, cid)
    stalls = sb.stats()["faults"].get("stall", 0)
    assert stalls > 0 and st["uncertain"] == stalls
    got = copies(sb, "shop_bot", "ack lost news")
    # The sandbox recorded the stalled messages: they did arrive, exactly once.
    assert len(got) == 40 and max(got.values()) == 1
    sb.set_faults("")
    from datetime import UTC, datetime

    from botdesk.campaigns import Campaigns

    n = await Campaigns(fast_app.db).resend_uncertain(cid, now=datetime.now(UTC))
    assert n == stalls
    await run_campaign(fast_app, cid)
    # The operator chose to resend: now those users have two copies, by explicit decision.
    got = copies(sb, "shop_bot", "ack lost news")
    assert sum(1 for v in got.values() if v == 2) == stalls


@pytest.mark.parametrize(
    ("kind", "text"),
    [("photo", "Spring collection"), ("document", "Price list for {first_name}")],
)
async def test_a_file_is_uploaded_once_then_sent_by_file_id(
    fast_app: App, fast_sandbox: Any, tmp_path: Path, kind: str, text: str
) -> None:
    sb = fast_sandbox
    await register(fast_app, sb, "shop", "shop_bot")
    users = await seed(fast_app, sb, "shop", "shop_bot", 40)
    media = _png(tmp_path / "spring.png")
    cid = await create(fast_app, "shop", text, buttons=[("Shop", "https://example.com")],
                       **{kind: media})  # fmt: skip
    stats = await run_campaign(fast_app, cid)
    st = await status(fast_app, cid)
    assert st["state"] == "completed" and stats.sent == st["sent"] == 40
    sent = sb.messages(bot="shop_bot")
    assert sorted(m["chat_id"] for m in sent) == sorted(u.id for u in users)
    assert {m["method"] for m in sent} == {"sendPhoto" if kind == "photo" else "sendDocument"}
    by_chat = {m["chat_id"]: m["caption"] for m in sent}
    expected = {u.id: text.replace("{first_name}", u.first_name) for u in users}
    assert by_chat == expected
    # One upload: the sandbox keeps every uploaded file, and the campaign keeps its file_id.
    uploads = [f for f in sb.world.files.values() if f["_kind"] == kind]
    assert len(uploads) == 1
    async with fast_app.db.read() as conn:
        stored = (
            await conn.execute(select(Campaign.media_file_id).where(Campaign.id == cid))
        ).scalar_one()
    assert stored == uploads[0]["file_id"]
