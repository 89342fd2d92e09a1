"""`botdesk subscribers import --verify` against the sandbox: getChat marks unknown chats gone."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import select
from tests.e2e.support import register

from botdesk.app import App
from botdesk.store.models import ConsentEvent, Subscriber


async def _cli(home: Path, *args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTDESK_")}
    env.update(BOTDESK_KEYRING="off", BOTDESK_HOME=str(home))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "botdesk.cli.main", "--home", str(home), *args,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    # The sandbox runs on this loop: wait without blocking it.
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_verify_marks_chats_telegram_does_not_know_as_gone(
    app: App, sandbox: Any, home: Path, tmp_path: Path
) -> None:
    await register(app, sandbox, "shop", "shop_bot")
    started = sandbox.add_users(5, start_bots=["shop_bot"])
    strangers = sandbox.add_users(2)  # real users who never started this bot
    sandbox.user_delete(started[4].id)  # deleted their account since
    unknown = [990_000_001, 990_000_002]  # ids the sandbox has never seen
    chats = [u.id for u in started] + [u.id for u in strangers] + unknown
    path = tmp_path / "old.csv"
    path.write_text("chat_id\n" + "\n".join(str(c) for c in chats) + "\n", encoding="utf-8")

    args = ("subscribers", "import", str(path), "--bot", "shop", "--source", "old")
    code, out, err = await _cli(home, *args, "--verify", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["added"] == len(chats)
    gone = {started[4].id, *(u.id for u in strangers), *unknown}
    assert report["verify"] == {
        "checked": len(chats), "gone": len(gone), "deactivated": 0, "unchecked": 0,
    }  # fmt: skip

    async with app.db.read() as conn:
        status = dict((await conn.execute(select(Subscriber.chat_id, Subscriber.status))).all())
        events = (
            await conn.execute(
                select(ConsentEvent.chat_id, ConsentEvent.kind, ConsentEvent.source).order_by(
                    ConsentEvent.id
                )
            )
        ).all()
    assert {c for c, s in status.items() if s == "active"} == {u.id for u in started[:4]}
    assert {c for c, s in status.items() if s == "gone"} == gone
    assert [(c, k) for c, k, _ in events[: len(chats)]] == [(c, "imported") for c in chats]
    assert sorted((c, k, s) for c, k, s in events[len(chats) :]) == sorted(
        (c, "gone", "import verify: chat not found") for c in gone
    )
    # Nothing was sent to anyone.
    assert sandbox.messages(bot="shop_bot") == []

    # A second verify leaves the gone alone and asks only the active ones again.
    code, out, err = await _cli(home, *args, "--verify", "--json")
    assert code == 0, err
    again = json.loads(out)
    assert (again["added"], again["merged"]) == (0, len(chats))
    assert again["verify"]["checked"] == 4 and again["verify"]["gone"] == 0
