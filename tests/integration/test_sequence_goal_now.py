"""A goal tag given outside an update batch stops the sequence in the transaction that writes
the tag: `botdesk subscribers tag --chat`, `subscribers tag --segment` and `subscribers
import`, in-process against a real SQLite home. Each subscriber has a step issued and not yet
sent (``pending``); right after the command, before any runner tick, the enrolment is
``stopped`` (goal) and the row ``cancelled``; ticks after it issue nothing more."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from tests.helpers import add_bot, add_subscriber
from tests.integration.test_cli_campaign import Cli

from botdesk import audience, sequence_runner
from botdesk.app import open_app
from botdesk.bots import BotRegistry
from botdesk.sequences import Sequences
from botdesk.store.models import Delivery, SequenceEnrolment

SEQ = """name: drip
trigger: {tag: go}
stop: {goal_tag: bought}
steps:
  - text: one
  - text: two
    delay: 1s
"""
CHATS = (101, 102, 103, 104)


async def _states(app: Any) -> dict[int, tuple[str, str | None, str | None]]:
    E = SequenceEnrolment
    async with app.db.read() as conn:
        rows = (
            await conn.execute(
                select(E.chat_id, E.state, E.stop_reason, Delivery.state).join(
                    Delivery, Delivery.id == E.waiting, isouter=True
                )
            )
        ).all()
    return {int(c): (s, r, d) for c, s, r, d in rows}


async def _rows(app: Any) -> int:
    async with app.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(Delivery))).scalar_one())


async def test_goal_tag_from_cli_and_import_stops_at_once(
    home: Path, tmp_path: Path, capsys: Any
) -> None:
    cli = Cli(home, capsys)
    t0 = datetime.now(UTC) - timedelta(minutes=5)
    async with open_app(home, configure_logs=False) as app:
        async with app.db.write() as conn:
            bot_id = await add_bot(conn)
            for chat in CHATS:
                await add_subscriber(conn, bot_id, chat)
        f = tmp_path / "drip.yaml"
        f.write_text(SEQ)
        rec = await BotRegistry(app.db, app.secrets).get("shop")
        await Sequences(app.db).create(f, rec, now=t0)
        for chat in CHATS:
            await audience.tag(app.db, bot_id, chat, "go")
        await sequence_runner.tick(app.db, bot_id, now=t0)
        before = await _states(app)
        assert before == dict.fromkeys(CHATS, ("active", None, "pending"))

        code, _out, err = await cli(
            "subscribers", "tag", "bought", "--bot", "shop", "--chat", "101"
        )
        assert code == 0, err
        code, _out, err = await cli(
            "subscribers", "tag", "bought", "--bot", "shop", "--segment", "chat:102"
        )
        assert code == 0, err
        csv = tmp_path / "crm.csv"
        csv.write_text("chat_id,tags\n103,bought|vip\n", encoding="utf-8")
        code, _out, err = await cli(
            "subscribers", "import", str(csv), "--bot", "shop", "--source", "crm"
        )
        assert code == 0, err

        # No tick in between: the commands' own transactions stopped them.
        after = await _states(app)
        stopped = ("stopped", "goal", "cancelled")
        assert after == {101: stopped, 102: stopped, 103: stopped, 104: before[104]}

        rows = await _rows(app)
        for s in range(1, 4):
            await sequence_runner.tick(app.db, bot_id, now=t0 + timedelta(seconds=s))
            await asyncio.sleep(0)
        final = await _states(app)
        assert {c: final[c] for c in (101, 102, 103)} == dict.fromkeys((101, 102, 103), stopped)
        assert await _rows(app) == rows  # nothing more issued to the three
