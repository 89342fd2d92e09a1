"""Several serve workers on one database share the bots: a newcomer gets its fair share."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from tests.e2e.support import eventually, register

from botdesk.app import App, open_app
from botdesk.runtime.assembly import build_runtime
from botdesk.store.models import BotLease


@pytest.fixture
async def quick_app(home: Path) -> AsyncIterator[App]:
    (home / "botdesk.toml").write_text("[delivery]\nlease_seconds = 3.0\n")
    async with open_app(home, configure_logs=False) as a:
        yield a


async def owners(app: App) -> Counter[str]:
    async with app.db.read() as conn:
        return Counter((await conn.execute(select(BotLease.owner))).scalars())


async def test_a_second_worker_takes_half_of_the_bots(quick_app: App, sandbox: Any) -> None:
    app = quick_app
    for i in range(4):
        await register(app, sandbox, f"b{i}", f"b{i}_bot")
    first = await build_runtime(app, owner="worker-a", poll_timeout=1)
    await first.start()
    second = None
    try:

        async def a_has_all() -> bool:
            return (await owners(app)) == Counter({"worker-a": 4})

        await eventually(a_has_all, within=20)
        second = await build_runtime(app, owner="worker-b", poll_timeout=1)
        await second.start()

        async def shared() -> bool:
            return (await owners(app)) == Counter({"worker-a": 2, "worker-b": 2})

        await eventually(shared, within=30)
        # Both keep serving: a user of a bot the newcomer took still gets answered.
        user = sandbox.add_users(1)[0]
        for i in range(4):
            await sandbox.user_start(user.id, f"b{i}_bot")

        async def all_welcomed() -> bool:
            return all(
                any("Welcome" in (m.get("text") or "") for m in sandbox.messages(bot=f"b{i}_bot"))
                for i in range(4)
            )

        await eventually(all_welcomed, within=20)
        await second.stop()
        second = None

        async def back_to_a() -> bool:
            return (await owners(app)) == Counter({"worker-a": 4})

        await eventually(back_to_a, within=30)
    finally:
        if second is not None:
            await second.stop()
        await first.stop()
