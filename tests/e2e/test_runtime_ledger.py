"""500 users start, 50 stop, 20 block, 10 unblock: the consent ledger is exact, on both backends.

The sandbox (limits lifted, so 550 replies take no minutes) is the Telegram side; the real
runtime polls it over loopback with the real aiogram client.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from tests.e2e.support import app_on, eventually, processed, register, running, write_config

from botdesk.app import App
from botdesk.sandbox.testing import running_sandbox
from botdesk.store.models import ConsentEvent, Subscriber

BOT = "shop_bot"


@pytest.fixture
async def ledger_app(backend: tuple[str, str | None], home: Path) -> AsyncIterator[App]:
    write_config(home)
    async with app_on(home, *backend) as a:
        yield a


@pytest.fixture
async def fast_sandbox() -> AsyncIterator[Any]:
    async with running_sandbox(seed=11, limits=False) as sb:
        yield sb


async def _subscribers(app: App) -> dict[int, tuple[str, str | None]]:
    async with app.db.read() as conn:
        rows = await conn.execute(select(Subscriber.chat_id, Subscriber.status, Subscriber.source))
        return {r[0]: (r[1], r[2]) for r in rows}


async def _events(app: App) -> list[tuple[int, str, str | None, int | None]]:
    async with app.db.read() as conn:
        rows = await conn.execute(
            select(
                ConsentEvent.chat_id, ConsentEvent.kind, ConsentEvent.source, ConsentEvent.update_id
            ).order_by(ConsentEvent.id)
        )
        return [(r[0], r[1], r[2], r[3]) for r in rows]


def _payload(i: int) -> str | None:
    """200 come from an ad, 100 from a referral, 20 with a payload Telegram would not allow."""
    if i < 200:
        return "spring_sale"
    if i < 300:
        return "ref-42"
    if i < 320:
        return "bad payload!"
    return None


async def test_500_start_50_stop_20_block_10_unblock(ledger_app: App, fast_sandbox: Any) -> None:
    app, sb = ledger_app, fast_sandbox
    await register(app, sb, "shop", BOT)
    users = [u.id for u in sb.add_users(500)]
    stoppers, blockers, unblockers = users[400:450], users[450:470], users[450:460]
    async with running(app) as rt:
        for i, uid in enumerate(users):
            await sb.user_start(uid, BOT, payload=_payload(i))

        async def welcomed() -> bool:
            return len(sb.messages(bot=BOT)) >= 500

        await eventually(welcomed, within=60)
        # Nothing yields between these calls, so the sandbox's world is settled before the
        # runtime sees the first of these 80 updates.
        for uid in stoppers:
            await sb.user_send(uid, BOT, "/stop")
        for uid in blockers:
            await sb.user_block(uid, BOT)
        for uid in unblockers:
            await sb.user_unblock(uid, BOT)

        async def all_done() -> bool:
            return await processed(app) == 580 and len(sb.messages(bot=BOT)) >= 550

        await eventually(all_done, within=60)
        processor = rt.runs["shop"].processor

        async def effects_finished() -> bool:
            return not processor._effects

        await eventually(effects_finished)
        # per-chat ordering locks are dropped once unused: memory does not grow per chat
        assert processor._chat_locks == {}

    subs = await _subscribers(app)
    assert len(subs) == 500
    statuses = Counter(s for s, _src in subs.values())
    assert statuses == {"active": 440, "unsubscribed": 50, "blocked": 10}
    assert all(subs[u][0] == "unsubscribed" for u in stoppers)
    assert all(subs[u][0] == "blocked" for u in blockers[10:])
    assert all(subs[u][0] == "active" for u in unblockers)
    sources = Counter(src for _s, src in subs.values())
    assert sources == {"spring_sale": 200, "ref-42": 100, "invalid": 20, None: 180}

    events = await _events(app)
    kinds = Counter(k for _c, k, _s, _u in events)
    assert kinds == {"subscribe": 500, "unsubscribe": 50, "block": 20, "unblock": 10}
    by_kind: dict[str, list[int]] = {}
    for chat, kind, _src, _upd in events:
        by_kind.setdefault(kind, []).append(chat)
    assert sorted(by_kind["unsubscribe"]) == sorted(stoppers)
    assert sorted(by_kind["block"]) == sorted(blockers)
    assert sorted(by_kind["unblock"]) == sorted(unblockers)
    sub_sources = Counter(src for _c, k, src, _u in events if k == "subscribe")
    assert sub_sources == {"spring_sale": 200, "ref-42": 100, "invalid": 20, None: 180}
    assert all(src == "command" for _c, k, src, _u in events if k == "unsubscribe")
    # every event names the update that caused it, and no update caused two
    upd_ids = [u for _c, _k, _s, u in events]
    assert None not in upd_ids and len(set(upd_ids)) == len(upd_ids) == 580

    # exactly one welcome per user and one confirmation per /stop, nothing else
    sent = Counter(m["chat_id"] for m in sb.messages(bot=BOT))
    assert sum(sent.values()) == 550
    assert all(sent[u] == 2 for u in stoppers)
    assert all(sent[u] == 1 for u in users[:400] + users[450:])


async def test_consent_transitions(ledger_app: App, fast_sandbox: Any) -> None:
    """/start again re-subscribes; unblocking restores only what the user had consented to."""
    app, sb = ledger_app, fast_sandbox
    await register(app, sb, "shop", BOT)
    a, b, c, d = (u.id for u in sb.add_users(4))
    async with running(app):
        await sb.user_start(a, BOT, payload="first")
        await sb.user_send(a, BOT, "/stop")
        await sb.user_start(a, BOT, payload="second")  # resubscribe, new source
        await sb.user_start(b, BOT)
        await sb.user_send(b, BOT, "/stop")
        await sb.user_block(b, BOT)
        await sb.user_unblock(b, BOT)  # unblocking is not consent: stays unsubscribed
        await sb.user_block(c, BOT)  # blocked before ever starting: known, not subscribed
        await sb.user_start(d, BOT)
        await sb.user_block(d, BOT)
        await sb.user_start(d, BOT)  # "Restart bot": unblock, then /start
        await eventually(lambda: _processed_is(app, 12), within=30)
    subs = await _subscribers(app)
    assert subs == {
        a: ("active", "second"),
        b: ("unsubscribed", None),
        c: ("blocked", None),
        d: ("active", None),
    }
    events = [(chat, kind, src) for chat, kind, src, _u in await _events(app)]
    assert [e for e in events if e[0] == a] == [
        (a, "subscribe", "first"),
        (a, "unsubscribe", "command"),
        (a, "resubscribe", "second"),
    ]
    assert [k for chat, k, _s in events if chat == b] == [
        "subscribe",
        "unsubscribe",
        "block",
        "unblock",
    ]
    assert [k for chat, k, _s in events if chat == c] == ["block"]
    # d's /start after the unblock finds an active subscriber: no extra event
    assert [k for chat, k, _s in events if chat == d] == ["subscribe", "block", "unblock"]


async def _processed_is(app: App, n: int) -> bool:
    return await processed(app) == n


async def test_group_added_is_a_group_subscriber(ledger_app: App, fast_sandbox: Any) -> None:
    app, sb = ledger_app, fast_sandbox
    await register(app, sb, "shop", BOT)
    members = [u.id for u in sb.add_users(2)]
    async with running(app):
        gid = sb.add_group("Support team", members, BOT)
        await eventually(lambda: _processed_is(app, 1))
    async with app.db.read() as conn:
        row = (
            await conn.execute(
                select(
                    Subscriber.status, Subscriber.source, Subscriber.is_group, Subscriber.first_name
                ).where(Subscriber.chat_id == gid)
            )
        ).one()
    assert tuple(row) == ("active", "group", True, "Support team")
    assert [(c, k, s) for c, k, s, _u in await _events(app)] == [(gid, "subscribe", "group")]
