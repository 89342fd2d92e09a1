"""Campaign buttons through `serve` and the sandbox: callback presses are counted (every click,
and unique clickers per button), tag and reply actions happen once, URL buttons sent without a
public base URL are reported as not tracked."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from tests.e2e.campaign_support import create, seed, status
from tests.e2e.support import FAST_TOML, eventually, register, running, scalar, write_config

from botdesk.app import App
from botdesk.campaigns import Campaigns
from botdesk.store.models import Click, Subscriber, SubscriberTag

BOT = "shop_bot"
BUTTONS = [
    ("Make me VIP", "cb:tag=vip"),
    ("Opening hours?", "cb:reply=We are open 9-18, Monday to Friday."),
    ("Shop", "https://example.org/shop"),
]


@pytest.fixture(autouse=True)
def _fast_home(home: Path) -> None:
    write_config(home, FAST_TOML)


def campaign_message(sb: Any, chat_id: int) -> dict[str, Any]:
    (m,) = [m for m in sb.messages(bot=BOT, chat_id=chat_id) if "Spring" in (m.get("text") or "")]
    return m


def data_of(message: dict[str, Any], label: str) -> str:
    for row in message["reply_markup"]["inline_keyboard"]:
        for b in row:
            if b["text"] == label:
                return str(b.get("callback_data") or b.get("url"))
    raise AssertionError(label)


async def clicks(app: App) -> int:
    return int(await scalar(app, select(func.count()).select_from(Click)))


async def test_callback_buttons_counted_tagged_and_answered(app: App, sandbox: Any) -> None:
    await register(app, sandbox, "shop", BOT)
    users = await seed(app, sandbox, "shop", BOT, 3)
    cid = await create(app, "shop", "Spring sale!", buttons=BUTTONS)
    await Campaigns(app.db).start(cid, now=datetime.now(UTC))
    async with running(app):

        async def done() -> bool:
            return (await status(app, cid))["state"] == "completed"

        await eventually(done)
        msgs = {u.id: campaign_message(sandbox, u.id) for u in users}
        vip = data_of(msgs[users[0].id], "Make me VIP")
        assert vip.startswith("bdc:") and len(vip.encode()) <= 64
        assert "vip" not in vip  # the action stays in botdesk, not in the callback
        assert data_of(msgs[users[0].id], "Shop") == "https://example.org/shop"

        a, b = users[0].id, users[1].id
        presses = [
            (a, "Make me VIP"),
            (a, "Make me VIP"),
            (b, "Make me VIP"),
            (a, "Opening hours?"),
        ]
        for uid, label in presses:
            await sandbox.user_press(uid, BOT, msgs[uid]["message_id"], data_of(msgs[uid], label))

        async def counted() -> bool:
            return await clicks(app) == 4

        await eventually(counted)

        async def replied() -> bool:
            return any(
                "open 9-18" in (m.get("text") or "") for m in sandbox.messages(bot=BOT, chat_id=a)
            )

        await eventually(replied)
        # every callback was answered (the sandbox drops a query once answered)
        await eventually(lambda: _no_open_queries(sandbox))
    tagged = await scalar_all(
        app,
        select(Subscriber.chat_id)
        .join(SubscriberTag, SubscriberTag.subscriber_id == Subscriber.id)
        .where(SubscriberTag.tag == "vip"),
    )
    assert sorted(tagged) == sorted([a, b])
    replies = [m for m in sandbox.messages(bot=BOT, chat_id=a) if "open 9-18" in (m["text"] or "")]
    assert len(replies) == 1

    rep = await Campaigns(app.db).report(cid)
    c = rep["clicks"]
    assert (c["delivered"], c["unique"], c["clicks"]) == (3, 2, 4)
    assert c["ctr"] == round(2 / 3, 4)
    assert c["median_first_click_s"] is not None and c["median_first_click_s"] >= 0
    by = {r["label"]: r for r in c["buttons"]}
    assert (by["Make me VIP"]["unique"], by["Make me VIP"]["clicks"]) == (2, 3)
    assert by["Make me VIP"]["ctr"] == round(2 / 3, 4)
    assert (by["Opening hours?"]["unique"], by["Opening hours?"]["clicks"]) == (1, 1)
    assert by["Shop"]["tracked"] is False and by["Shop"]["clicks"] is None


async def _no_open_queries(sb: Any) -> bool:
    return not sb.world.bot(BOT).open_queries


async def scalar_all(app: App, stmt: Any) -> list[Any]:
    async with app.db.read() as conn:
        return list((await conn.execute(stmt)).scalars())
