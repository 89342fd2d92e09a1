"""A subscriber who leaves after the engine claimed their row gets nothing.

The engine claims a batch of a campaign's rows (consent checked: all are active); before its
senders commit ``sending``, one subscriber sends /stop and another blocks the bot, handled by
the runtime's real update processor and aiogram's dispatcher. The mark that commits
``sending`` reads consent in the same statement (delivery/ledger.py), so those two rows are
suppressed with why and never sent; everyone else gets the message once. SQLite and
PostgreSQL (the engine's plain-SQL statements differ).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from tests.e2e.campaign_support import copies, create, seed, status
from tests.e2e.support import (
    app_on,
    blocked_update,
    message_update,
    register,
    update_processor,
    write_config,
)

from botdesk.bots import BotRegistry
from botdesk.delivery import ledger
from botdesk.runtime.foreground import run_campaign
from botdesk.store.models import Delivery


async def test_stop_or_block_between_claim_and_send_gets_nothing(
    home: Path,
    sandbox: Any,
    backend: tuple[str, str | None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_config(home, '[assistant]\nembeddings = false\n\n[bots.shop]\nauto_reply = ""\n')
    async with app_on(home, *backend) as app:
        await register(app, sandbox, "shop", "shop_bot")
        users = [u.id for u in await seed(app, sandbox, "shop", "shop_bot", 5)]
        stopper, blocker = users[0], users[1]
        rec = await BotRegistry(app.db, app.secrets).get("shop")
        cid = await create(app, "shop", "autumn news")
        real_claim = ledger.claim_batch
        claimed: list[int] = []

        async with update_processor(app, rec) as proc:

            async def claim_then_leave(db: Any, **kw: Any) -> list[ledger.Claimed]:
                rows = await real_claim(db, **kw)
                if rows and not claimed:  # the first claim: both are in the batch, active
                    claimed.extend(r.chat_id for r in rows)
                    batch = [message_update(stopper, 1, "/stop"), blocked_update(blocker, 2)]
                    assert await proc.process(batch, advance_offset=False) == 2
                return rows

            monkeypatch.setattr(ledger, "claim_batch", claim_then_leave)
            await run_campaign(app, cid)

        assert {stopper, blocker} <= set(claimed)
        st = await status(app, cid)
        async with app.db.read() as conn:
            rows = {
                chat: (state, error)
                for chat, state, error in await conn.execute(
                    select(Delivery.chat_id, Delivery.state, Delivery.error).where(
                        Delivery.campaign_id == cid
                    )
                )
            }
    got = copies(sandbox, "shop_bot", "autumn news")
    assert set(got) == set(users[2:]) and set(got.values()) == {1}
    assert rows[stopper] == ("suppressed", "subscriber unsubscribed before sending")
    assert rows[blocker] == ("suppressed", "subscriber blocked before sending")
    assert all(rows[u] == ("sent", None) for u in users[2:])
    assert (st["state"], st["sent"], st["suppressed"]) == ("completed", 3, 2)
