"""A sequence's stop rules act in the transaction of the update that triggers them.

Three subscribers each have step 2 of a sequence issued and already claimed by the delivery
engine (in its queue, the worst moment). In one batch of updates the first replies, the
second blocks the bot, the third only sends a command (not a reply). When the engine then
commits its ``sending`` marks, the first two rows are refused (cancelled, never sent) and
the third goes on; the enrolments say why. The sequence runner's once-a-second round has
not run in between: before this, both steps left after the reply and the block. SQLite and
PostgreSQL, through the runtime's real update processor and aiogram's dispatcher.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from tests.e2e.campaign_support import seed
from tests.e2e.support import (
    app_on,
    blocked_update,
    message_update,
    register,
    update_processor,
    write_config,
)

from botdesk import audience, sequence_runner
from botdesk.bots import BotRegistry
from botdesk.delivery import ledger
from botdesk.sequences import Sequences
from botdesk.store.models import Delivery, SequenceEnrolment

SEQ = """name: drip
trigger: {tag: go}
stop: {on_reply: true}
steps:
  - text: "one"
  - text: "two"
    delay: 1m
"""


async def test_a_step_claimed_before_a_reply_or_a_block_is_not_sent(
    home: Path, sandbox: Any, tmp_path: Path, backend: tuple[str, str | None]
) -> None:
    write_config(home, '[assistant]\nembeddings = false\n\n[bots.shop]\nauto_reply = ""\n')
    async with app_on(home, *backend) as app:
        await register(app, sandbox, "shop", "shop_bot")
        replier, blocker, commander = (
            u.id for u in await seed(app, sandbox, "shop", "shop_bot", 3)
        )
        rec = await BotRegistry(app.db, app.secrets).get("shop")
        f = tmp_path / "drip.yaml"
        f.write_text(SEQ)
        t0 = datetime.now(UTC) - timedelta(minutes=10)
        info, _ = await Sequences(app.db).create(f, rec, now=t0)
        for chat in (replier, blocker, commander):
            await audience.tag(app.db, rec.id, chat, "go")
        await sequence_runner.tick(app.db, rec.id, now=t0)  # enrol; step 1 issued
        async with app.db.write() as conn:  # the engine's part: step 1 sent
            await conn.execute(update(Delivery).values(state="sent", updated_at=t0))
        await sequence_runner.tick(app.db, rec.id, now=t0 + timedelta(seconds=1))
        await sequence_runner.tick(app.db, rec.id, now=t0 + timedelta(minutes=2))  # step 2
        claimed = await ledger.claim_batch(
            app.db,
            campaign_id=info.steps[1],
            owner="engine",
            limit=10,
            now_ts=datetime.now(UTC).timestamp(),
        )
        assert {r.chat_id for r in claimed} == {replier, blocker, commander}

        async with update_processor(app, rec) as proc:
            batch = [
                message_update(replier, 1, "no more, thanks"),
                blocked_update(blocker, 2),
                message_update(commander, 3, "/help"),
            ]
            assert await proc.process(batch, advance_offset=False) == 3
            # The engine now commits `sending` for the rows it holds: only the third takes it.
            marked = await ledger.commit_batch(
                app.db,
                bot_id=rec.id,
                finishes=[],
                marks=[r.id for r in claimed],
                unreachable=[],
                now=datetime.now(UTC),
            )
        by_chat = {r.chat_id: r.id for r in claimed}
        assert marked == {by_chat[commander]}
        async with app.db.read() as conn:
            rows = dict(
                (
                    await conn.execute(
                        select(Delivery.chat_id, Delivery.state).where(
                            Delivery.campaign_id == info.steps[1]
                        )
                    )
                ).all()
            )
            enrolled = {
                c: (s, r)
                for c, s, r in await conn.execute(
                    select(
                        SequenceEnrolment.chat_id,
                        SequenceEnrolment.state,
                        SequenceEnrolment.stop_reason,
                    )
                )
            }
    assert rows == {replier: "cancelled", blocker: "cancelled", commander: "sending"}
    assert enrolled == {
        replier: ("stopped", "replied"),
        blocker: ("stopped", "blocked"),
        commander: ("active", None),
    }
