"""Transient getUpdates failures (429 storm, 5xx, connection resets) back off and recover
without losing or repeating an update; the /metrics endpoint shows what happened.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select
from tests.e2e.support import (
    QUICK_TOML,
    eventually,
    free_port,
    processed,
    register,
    running,
    scalar,
    write_config,
)

from botdesk.app import App
from botdesk.store.models import Message

BOT = "shop_bot"


@pytest.fixture(autouse=True)
def _quick_home(home: Path) -> None:
    write_config(home, QUICK_TOML)  # autouse: written before the app fixture opens the home


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 if absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        m = re.match(r"^([a-z_]+)\{([^}]*)\} (\S+)$", line)
        if m and m.group(1) == name:
            have = ",".join(sorted(m.group(2).split(",")))
            if have == want:
                return float(m.group(3))
    return 0.0


async def _inbound(app: App) -> list[str]:
    async with app.db.read() as conn:
        rows = await conn.execute(select(Message.text).where(Message.direction == "in"))
        return [r[0] for r in rows]


async def test_get_updates_faults_back_off_and_recover(app: App, sandbox: Any) -> None:
    await register(app, sandbox, "shop", BOT)
    users = [u.id for u in sandbox.add_users(10)]
    mport = free_port()
    async with running(app, metrics_listen=f"127.0.0.1:{mport}") as rt:
        await sandbox.user_start(users[0], BOT)
        await eventually(lambda: _processed_is(app, 1))

        # every getUpdates answers 429 for 2 s, then 40% fail with 5xx or a reset
        sandbox.set_faults("storm=2@0,5xx=0.25,reset=0.15,updates=1")
        sent = [f"q{i}" for i in range(30)]
        for i, text in enumerate(sent):
            await sandbox.user_send(users[i % 10], BOT, text)
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # let some failures happen before the weather clears
        stats = sandbox.stats()
        sandbox.set_faults("")
        await eventually(lambda: _processed_is(app, 31), within=45)

        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{mport}/metrics") as resp,
        ):
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/plain")
            text = await resp.text()
        assert rt.runs["shop"].state == "serving"

    assert stats["faults"].get("storm", 0) >= 1
    assert sum(stats["faults"].get(k, 0) for k in ("500", "502", "reset")) >= 1
    inbound = await _inbound(app)
    assert sorted(t for t in inbound if t.startswith("q")) == sorted(sent)
    assert len(inbound) == 31

    assert metric(text, "botdesk_updates_total", bot="shop", type="message") == 31
    assert metric(text, "botdesk_errors_total", bot="shop", kind="poll") >= 1
    assert metric(text, "botdesk_bot_up", bot="shop") == 1
    assert metric(text, "botdesk_updates_duplicate_total", bot="shop") == 0
    assert metric(text, "botdesk_handler_seconds_count", bot="shop") >= 1
    assert metric(text, "botdesk_replies_total", bot="shop", outcome="sent") >= 1
    assert await scalar(app, select(func.count()).select_from(Message)) > 31


async def _processed_is(app: App, n: int) -> bool:
    return await processed(app) == n
