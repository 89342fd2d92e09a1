"""The lazy subscriber model on a real SQLite home, without widgets: Qt's model tester, pages
read by key in order (no skipping when scrolling down), bounded memory, and a jump."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.e2e.campaign_support import seed
from tests.gui.conftest import BOT, USERNAME, until

from botdesk.app import open_app
from botdesk.bots import BotRegistry
from botdesk.gui.models.subscribers import CHAT_ID_ROLE, LOADING, SubscribersModel
from botdesk.gui.services import Services
from botdesk.sandbox.testing import running_sandbox

N = 2_350  # 11 full pages of 200 and a short last one
PAGE = 200


def model_over(services: Services, **kw: Any) -> SubscribersModel:
    def fetch(after: Any, skip: int, limit: int) -> Any:
        return services.subscriber_page(BOT, None, after=after, skip=skip, limit=limit)

    def schedule(coro: Any, ok: Any) -> None:
        asyncio.ensure_future(coro).add_done_callback(lambda t: ok(t.result()))

    return SubscribersModel(fetch, schedule, page_size=PAGE, **kw)


def test_keyed_pages_in_order_bounded_and_jump(drive, home: Path, qtmodeltester) -> None:
    async def scenario() -> None:
        async with running_sandbox(seed=3) as sb, open_app(home, configure_logs=False) as app:
            info = sb.add_bot(USERNAME)
            await BotRegistry(app.db, app.secrets).add(
                BOT, info.token, api_base=sb.base_url, connect_timeout=2, read_timeout=5
            )
            users = await seed(app, sb, BOT, USERNAME, N)
            services = Services(app, serving=False)
            total = await services.subscriber_count(BOT, None)
            assert total == N
            model = model_over(services, total=total, max_pages=4)
            assert model.rowCount() == N and model.columnCount() == 8

            # Nothing loaded yet: placeholders, and the page is asked for once.
            assert model.data(model.index(0, 0)) == LOADING
            assert model.data(model.index(1, 0)) == LOADING
            assert model.fetches == 1
            changed: list[tuple[int, int]] = []
            model.dataChanged.connect(lambda a, b, *_r: changed.append((a.row(), b.row())))
            await until(lambda: model.row(0) is not None, what="first page")
            assert changed == [(0, PAGE - 1)]
            # Qt's own consistency checks, on a model of its own (the tester stays connected
            # and reads rows, which would blur the read counts below).
            checked = model_over(services, total=total, max_pages=4)
            checked.row(0)
            await until(lambda: checked.row(0) is not None, what="first page")
            qtmodeltester.check(checked)

            # Scrolling top to bottom: every page read on from the key before it.
            seen = []
            for i in range(N):
                if model.row(i) is None:
                    await until(lambda i=i: model.row(i) is not None, what=f"row {i}")
                seen.append(model.data(model.index(i, 0), CHAT_ID_ROLE))
                assert len(model.pages) <= 4 and model.held_rows() <= 4 * PAGE
            assert seen == [u.id for u in users]  # the list's own order, each once
            assert model.fetches == -(-N // PAGE) and model.skipped_reads == 0
            assert changed[-1] == (N - N % PAGE, N - 1)  # the short last page

            # A jump back to the top: the first page is gone (evicted), read again with a skip
            # from nothing held above it; a jump to the middle skips from the nearest held page.
            assert 0 not in model.pages
            model.row(0)
            await until(lambda: model.row(0) is not None, what="top again")
            assert model.data(model.index(0, 0), CHAT_ID_ROLE) == seen[0]
            model.row(1_210)
            await until(lambda: model.row(1_210) is not None, what="middle")
            assert model.data(model.index(1_210, 0), CHAT_ID_ROLE) == seen[1_210]
            assert model.skipped_reads == 1  # the top needs no skip; the middle does
            qtmodeltester.check(checked)

            # Out of range and invalid indexes answer nothing and ask for nothing.
            before = model.fetches
            assert model.data(model.index(N, 0)) is None
            assert model.row(N + 5) is None and model.fetches == before

    drive(scenario())
