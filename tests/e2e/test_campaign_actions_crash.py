"""kill -9 during `campaign edit` and `campaign recall`, resumed until the action completes.

The acting process is the real CLI in a child process; the sandbox runs in the pytest
process with some latency, so a couple of hundred messages take long enough to be killed a
few times. Each edit and delete call the sandbox receives is counted per message: none may
be called twice, and the rows left ``acting`` at each kill are exactly those that may end up
``uncertain``.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from tests.e2e.action_support import accounted, action_rows, records, sent_campaign
from tests.e2e.test_campaign_crash import CampaignRun, _until_lease_expires

from botdesk.app import App, open_app
from botdesk.campaign_actions import CampaignActions
from botdesk.sandbox.testing import running_sandbox
from botdesk.store.models import CampaignAction, CampaignActionRow

RECIPIENTS = 150
KILLS = 4
IN_FLIGHT = 6
TOML = f"""
[delivery]
lease_seconds = 2
in_flight = {IN_FLIGHT}

[network]
connect_timeout = 2.0
read_timeout = 5.0
"""
OLD, NEW = "Boots cost 100", "Boots cost 90"


class Cli(CampaignRun):
    """One `botdesk campaign ...` child process (`campaign run`'s harness, other arguments)."""

    def __init__(self, home: Path, campaign_id: int, args: list[str], n: int) -> None:
        super().__init__(home, campaign_id, n, args)


@pytest.fixture
async def slow_sandbox() -> AsyncIterator[Any]:
    async with running_sandbox(seed=13, latency=(0.03, 0.1)) as sb:
        yield sb


@pytest.fixture
async def crash_app(home: Path) -> AsyncIterator[App]:
    (home / "botdesk.toml").write_text(TOML)
    async with open_app(home, configure_logs=False) as a:
        yield a


async def _touched(app: App) -> int:
    async with app.db.read() as conn:
        return int(
            (
                await conn.execute(select(func.count()).where(CampaignActionRow.state != "pending"))
            ).scalar()
            or 0
        )


async def _acting(app: App) -> set[int]:
    async with app.db.read() as conn:
        return set(
            (
                await conn.execute(
                    select(CampaignActionRow.id).where(CampaignActionRow.state == "acting")
                )
            ).scalars()
        )


async def _progress(app: App, run: Cli, within: float) -> bool:
    """True once this run moved a row out of pending; False if it exited first."""
    before = await _touched(app)
    deadline = asyncio.get_running_loop().time() + within
    while run.running:
        if await _touched(app) > before:
            return True
        assert asyncio.get_running_loop().time() < deadline, "the action made no progress"
        await asyncio.sleep(0.02)
    return False


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["edit", "recall"])
async def test_kill_9_never_acts_twice(
    crash_app: App, slow_sandbox: Any, home: Path, kind: str
) -> None:
    app, sb = crash_app, slow_sandbox
    cid, _users = await sent_campaign(app, sb, RECIPIENTS, OLD)
    first = ["campaign", kind, str(cid), "--yes", "--json"]
    if kind == "edit":
        first += ["--text", NEW]
    rng = random.Random(7)
    acting_at_kill: list[set[int]] = []
    runs: list[Cli] = []
    final: Cli | None = None
    try:
        while final is None:
            args = first if not runs else ["campaign", "actions", str(cid), "--resume", "--json"]
            run = await Cli(home, cid, args, len(runs)).start()
            runs.append(run)
            if len(acting_at_kill) >= KILLS or not await _progress(app, run, within=30):
                await run.wait(within=90)
                final = run
                break
            await asyncio.sleep(rng.uniform(0.0, 0.6))
            await run.kill()
            acting_at_kill.append(await _acting(app))
            await _until_lease_expires(app)
    finally:
        for r in runs:
            await r.close()

    outputs = "\n".join(r.output for r in runs)
    assert final.proc is not None and final.proc.returncode == 0, final.output
    assert "Traceback" not in outputs
    assert len(acting_at_kill) == KILLS, "the action ended before it was killed enough"
    assert json.loads(final.output[final.output.index("[\n") :])[0]["state"] == "completed"

    async with app.db.read() as conn:
        (aid,) = (await conn.execute(select(CampaignAction.id))).scalars()
    st = await CampaignActions(app.db).status(aid)
    assert st["state"] == "completed" and st["pending"] == st["acting"] == 0
    assert accounted(st) == st["total"] == RECIPIENTS
    assert st["failed"] == st["suppressed"] == 0

    rows = await action_rows(app, aid)
    uncertain = {r.id for r in rows if r.state == "uncertain"}
    # Uncertain exactly where a request was in flight at a kill.
    assert uncertain == set().union(*acting_at_kill)
    assert all(len(s) <= IN_FLIGHT for s in acting_at_kill)
    assert any(acting_at_kill), "no kill landed while a request was in flight"

    calls = "edit_calls" if kind == "edit" else "delete_calls"
    by_message = {(m["chat_id"], m["message_id"]): m for m in records(sb)}
    assert len(by_message) == RECIPIENTS
    assert max(m.get(calls, 0) for m in by_message.values()) == 1, "a message was acted on twice"
    for r in rows:
        m = by_message[(r.chat_id, r.message_id)]
        if r.state in ("edited", "recalled"):
            assert m[calls] == 1
            assert m["deleted"] if kind == "recall" else m["text"] == NEW
        else:
            assert r.state == "uncertain" and m.get(calls, 0) <= 1
    # Nothing changed in a chat whose row is neither done nor uncertain.
    touched = {k for k, m in by_message.items() if m.get(calls, 0)}
    assert touched <= {(r.chat_id, r.message_id) for r in rows if r.id in uncertain or
                       r.state in ("edited", "recalled")}  # fmt: skip
