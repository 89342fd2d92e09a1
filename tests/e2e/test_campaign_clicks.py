"""Campaign buttons through `serve` and the sandbox: callback presses are counted (every click,
and unique clickers per button), tag and reply actions happen once, URL buttons sent without a
public base URL are reported as not tracked."""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select
from tests.e2e.campaign_support import create, seed, status
from tests.e2e.support import (
    FAST_TOML,
    app_on,
    eventually,
    free_port,
    register,
    running,
    scalar,
    write_config,
)

from botdesk.app import App
from botdesk.campaigns import Campaigns
from botdesk.clock import SystemClock
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


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> tuple[str, str | None]:
    if request.param == "sqlite":
        return "sqlite", None
    return "postgresql", str(request.getfixturevalue("pg_schema"))


@pytest.fixture
async def app(backend: tuple[str, str | None], home: Path) -> AsyncIterator[App]:
    """Both backends: the tag insert and the click queries differ by dialect."""
    async with app_on(home, *backend) as a:
        yield a


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


async def test_callback_buttons_counted_tagged_and_answered(
    app: App,
    sandbox: Any,
    backend: tuple[str, str | None],
    home: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
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

    if backend[0] != "sqlite":
        return  # the CLI opens the home's own database
    from tests.integration.test_cli_campaign import Cli

    from botdesk.cli.common import STATE

    monkeypatch.setattr(STATE, "home", None)
    cli = Cli(home, capsys)
    out_csv = home / "report.csv"
    code, out, _err = await cli("campaign", "report", str(cid), "--csv", str(out_csv))
    assert code == 0
    assert "not tracked" in out and "66.7%" in out
    with out_csv.open(encoding="utf-8") as fh:
        rows = {int(r["chat_id"]): r for r in csv.DictReader(fh)}
    assert rows[a]["clicked_buttons"] == "0;1" and rows[a]["first_click_at"]
    assert rows[b]["clicked_buttons"] == "0"
    assert rows[users[2].id]["clicked_buttons"] == "" == rows[users[2].id]["first_click_at"]
    assert (await cli.json("campaign", "report", str(cid), "--json"))["clicks"]["clicks"] == 4


async def _no_open_queries(sb: Any) -> bool:
    return not sb.world.bot(BOT).open_queries


async def scalar_all(app: App, stmt: Any) -> list[Any]:
    async with app.db.read() as conn:
        return list((await conn.execute(stmt)).scalars())


class ShiftedClock(SystemClock):
    """The system clock, with wall time moved forward on demand (link expiry)."""

    def __init__(self) -> None:
        self.shift = timedelta(0)

    def now(self) -> datetime:
        return super().now() + self.shift


async def test_tracked_links_redirect_count_and_refuse_forgeries(app: App, sandbox: Any) -> None:
    from botdesk.links import LinkSigner, _b64, _unb64

    await register(app, sandbox, "shop", BOT)
    users = await seed(app, sandbox, "shop", BOT, 3)
    cid = await create(app, "shop", "Spring sale!", buttons=BUTTONS)
    await Campaigns(app.db).start(cid, now=datetime.now(UTC))
    port = free_port()
    base = f"http://127.0.0.1:{port}/hook"
    clock = ShiftedClock()
    async with (
        running(app, webhook_base=base, listen=f"127.0.0.1:{port}", clock=clock),
        aiohttp.ClientSession() as http,
    ):

        async def done() -> bool:
            return (await status(app, cid))["state"] == "completed"

        await eventually(done)
        links = {u.id: data_of(campaign_message(sandbox, u.id), "Shop") for u in users}
        assert all(link.startswith(base + "/r/") for link in links.values())
        assert len(set(links.values())) == 3  # signed per recipient
        a, b = users[0].id, users[1].id

        async def open_(url: str) -> tuple[int, str | None]:
            async with http.get(url, allow_redirects=False) as resp:
                return resp.status, resp.headers.get("Location")

        for url in (links[a], links[a], links[b]):
            assert await open_(url) == (302, "https://example.org/shop")
        assert await clicks(app) == 3

        token = links[a].rsplit("/", 1)[1]
        raw = bytearray(_unb64(token))
        raw[0] ^= 1  # another delivery id, same signature
        other_key = LinkSigner(key=b"not the key" * 3, base_url=base + "/r/")
        refused = [
            base + "/r/" + _b64(bytes(raw)),
            other_key.url(1, 2, now=datetime.now(UTC)),
            base + "/r/" + token[:-3],
            base + "/r/garbage",
        ]
        for url in refused:
            status_, location = await open_(url)
            assert (status_, location) == (404, None), url
        # a month later the genuine link has expired
        clock.shift = timedelta(days=31)
        assert (await open_(links[a]))[0] == 410
        assert await clicks(app) == 3

    rep = await Campaigns(app.db).report(cid)
    by = {r["label"]: r for r in rep["clicks"]["buttons"]}
    shop = by["Shop"]
    assert shop["tracked"] is True
    assert (shop["unique"], shop["clicks"], shop["ctr"]) == (2, 3, round(2 / 3, 4))
    assert rep["clicks"]["unique"] == 2
