"""Sequences through the sandbox: a /start sequence across `kill -9` of serve and a restart
(no step skipped, none doubled, counted in what the sandbox's users received); stops on a
reply and on the goal tag; a tag trigger; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from tests.e2e.campaign_support import copies
from tests.e2e.support import ServeProcess, app_on, eventually, register, running, write_config

from botdesk import audience
from botdesk.app import App, open_app
from botdesk.bots import BotRegistry
from botdesk.sequences import Sequences
from botdesk.store.models import Delivery, SequenceEnrolment, SequenceStep

BOT = "shop_bot"
TOML = """
[assistant]
embeddings = false

[delivery]
rate = 1000.0
lease_seconds = 2

[bots.shop]
auto_reply = ""
"""
DRIP = """name: drip
trigger: start
stop: {on_reply: true, goal_tag: bought}
steps:
  - text: "drip-1 hello {first_name}"
  - text: "drip-2 tips"
    delay: 2s
  - text: "drip-3 offer"
    delay: 2s
  - text: "drip-4 last"
    delay: 2s
"""
TAGGED = """name: tagged
trigger: {tag: shoes}
stop: {on_reply: false}
steps:
  - text: "shoes-1 you like shoes"
  - text: "shoes-2 vip only"
    segment: "tag:vip"
  - text: "shoes-3 bye"
    delay: 1s
"""


async def _create(app: App, tmp: Path, text: str, name: str) -> int:
    f = tmp / f"{name}.yaml"
    f.write_text(text)
    rec = await BotRegistry(app.db, app.secrets).get("shop")
    info, created = await Sequences(app.db).create(f, rec, now=datetime.now(UTC))
    assert created
    return info.id


async def _enrolments(app: App, seq_id: int) -> Counter[str]:
    async with app.db.read() as conn:
        rows = await conn.execute(
            select(SequenceEnrolment.state, SequenceEnrolment.stop_reason).where(
                SequenceEnrolment.sequence_id == seq_id
            )
        )
        return Counter(f"{s}:{r}" if r else s for s, r in rows)


async def _step_states(app: App, seq_id: int) -> dict[int, Counter[str]]:
    async with app.db.read() as conn:
        rows = await conn.execute(
            select(SequenceStep.number, Delivery.state, func.count())
            .join(Delivery, Delivery.campaign_id == SequenceStep.campaign_id)
            .where(SequenceStep.sequence_id == seq_id)
            .group_by(SequenceStep.number, Delivery.state)
        )
        out: dict[int, Counter[str]] = {}
        for number, state, n in rows:
            out.setdefault(number, Counter())[state] = n
        return out


def _received(sb: Any, needle: str) -> Counter[int]:
    return copies(sb, BOT, needle)


async def test_sequence_survives_kill_9_without_skip_or_double(
    home: Path, sandbox: Any, tmp_path: Path
) -> None:
    write_config(home, TOML)
    users = sandbox.add_users(12)
    async with open_app(home, configure_logs=False) as app:
        await register(app, sandbox, "shop", BOT)
        seq = await _create(app, tmp_path, DRIP, "drip")
        serve = await ServeProcess(home).start()
        try:
            for u in users:
                await sandbox.user_start(u.id, BOT)

            async def step2_sent() -> bool:
                return len(_received(sandbox, "drip-2")) >= 1

            await eventually(step2_sent, within=60)
            await serve.kill()  # mid-sequence: steps 3 and 4 fall due while nobody serves
            at_kill = {n: sum(_received(sandbox, f"drip-{n}").values()) for n in (1, 2, 3, 4)}
            assert at_kill[4] < len(users), "the sequence was over before the kill"
            await asyncio.sleep(4)
            assert {
                n: sum(_received(sandbox, f"drip-{n}").values()) for n in (1, 2, 3, 4)
            } == at_kill
            serve = await ServeProcess(home).start()

            async def finished() -> bool:
                return (await _enrolments(app, seq)).get("completed", 0) == len(users)

            await eventually(finished, within=90)
            assert await serve.signal(signal.SIGTERM) == 0
        finally:
            await serve.close()
        states = await _step_states(app, seq)
    for n in (1, 2, 3, 4):
        got = _received(sandbox, f"drip-{n}")
        st = states[n]
        # Every subscriber accounted for once per step; nobody got a step twice; every row
        # the ledger calls sent reached its user; only uncertain rows may be missing.
        assert sum(st.values()) == len(users), (n, st)
        assert max(got.values()) == 1, (n, got)
        assert set(st) <= {"sent", "uncertain"}, (n, st)
        assert st["sent"] <= len(got) <= st["sent"] + st["uncertain"], (n, st, got)
    assert "Traceback" not in serve.output


async def test_stop_on_reply_goal_tag_and_tag_trigger(
    home: Path, sandbox: Any, tmp_path: Path, backend: tuple[str, str | None]
) -> None:
    write_config(home, TOML.replace("lease_seconds = 2", "lease_seconds = 5"))
    async with app_on(home, *backend) as app:
        await register(app, sandbox, "shop", BOT)
        drip = await _create(app, tmp_path, DRIP.replace("delay: 2s", "delay: 3s"), "drip")
        tagged = await _create(app, tmp_path, TAGGED, "tagged")
        replier, buyer, stayer = sandbox.add_users(3)
        rec = await BotRegistry(app.db, app.secrets).get("shop")
        async with running(app):
            for u in (replier, buyer, stayer):
                await sandbox.user_start(u.id, BOT)

            async def first_step_everywhere() -> bool:
                return len(_received(sandbox, "drip-1")) == 3

            await eventually(first_step_everywhere, within=30)
            await sandbox.user_send(replier.id, BOT, "thanks, but stop please")
            await audience.tag(app.db, rec.id, buyer.id, "bought")
            # The tag trigger: stayer gets shoes (and vip); buyer gets shoes only.
            await audience.tag(app.db, rec.id, stayer.id, "vip")
            await audience.tag(app.db, rec.id, stayer.id, "shoes")
            await audience.tag(app.db, rec.id, buyer.id, "shoes")

            async def all_done() -> bool:
                d = await _enrolments(app, drip)
                t = await _enrolments(app, tagged)
                return d.get("active", 0) == 0 and t.get("completed", 0) == 2

            await eventually(all_done, within=60)
        assert await _enrolments(app, drip) == Counter(
            {"stopped:replied": 1, "stopped:goal": 1, "completed": 1}
        )
        for n in (2, 3, 4):
            assert _received(sandbox, f"drip-{n}") == Counter({stayer.id: 1}), n
        assert _received(sandbox, "shoes-1") == Counter({stayer.id: 1, buyer.id: 1})
        assert _received(sandbox, "shoes-2") == Counter({stayer.id: 1})  # segment tag:vip
        assert _received(sandbox, "shoes-3") == Counter({stayer.id: 1, buyer.id: 1})
        tagged_states = await _step_states(app, tagged)
        assert tagged_states[2] == Counter({"sent": 1, "skipped": 1})
        st = await Sequences(app.db).stats("drip", bot="shop")
        assert (st["enrolled"], st["completed"], st["stopped_by"]) == (
            3,
            1,
            {"replied": 1, "goal": 1},
        )
        assert [s["sent"] for s in st["steps"]] == [3, 1, 1, 1]


async def test_click_trigger(home: Path, sandbox: Any, tmp_path: Path) -> None:
    from tests.e2e.campaign_support import create, seed
    from tests.e2e.test_campaign_clicks import data_of

    from botdesk.campaigns import Campaigns

    write_config(home, TOML)
    async with open_app(home, configure_logs=False) as app:
        await register(app, sandbox, "shop", BOT)
        users = await seed(app, sandbox, "shop", BOT, 3)
        cid = await create(
            app, "shop", "spring news", buttons=[("Tell me more", "cb:more"), ("No", "cb:no")]
        )
        seq = await _create(
            app,
            tmp_path,
            f"name: more\ntrigger: {{click: {{campaign: {cid}, button: 'Tell me more'}}}}\n"
            "steps:\n  - text: 'more-1 here is more'\n  - text: 'more-2 and more'\n"
            "    delay: 1s\n",
            "more",
        )
        await Campaigns(app.db).start(cid, now=datetime.now(UTC))
        async with running(app):

            async def delivered() -> bool:
                return len(_received(sandbox, "spring news")) == 3

            await eventually(delivered, within=30)
            msg = {
                u.id: next(
                    m for m in sandbox.messages(bot=BOT, chat_id=u.id) if m.get("reply_markup")
                )
                for u in users
            }
            a, b, c = users
            await sandbox.user_press(
                a.id, BOT, msg[a.id]["message_id"], data_of(msg[a.id], "Tell me more")
            )
            await sandbox.user_press(
                a.id, BOT, msg[a.id]["message_id"], data_of(msg[a.id], "Tell me more")
            )
            await sandbox.user_press(b.id, BOT, msg[b.id]["message_id"], data_of(msg[b.id], "No"))

            async def done() -> bool:
                return (await _enrolments(app, seq)).get("completed", 0) == 1

            await eventually(done, within=30)
        assert await _enrolments(app, seq) == Counter({"completed": 1})  # twice pressed: once
        assert _received(sandbox, "more-1") == Counter({a.id: 1})
        assert _received(sandbox, "more-2") == Counter({a.id: 1})
        assert c.id not in _received(sandbox, "more-")
