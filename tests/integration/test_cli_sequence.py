"""`botdesk sequence ...` through the CLI: create (and --update), list, show, pause, resume,
stats with --json, and one-line errors for a bad file (every problem with its line)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from tests.e2e.support import register
from tests.integration.test_cli_campaign import Cli

from botdesk.app import App, open_app
from botdesk.cli.common import STATE
from botdesk.sandbox.testing import running_sandbox
from botdesk.store.models import Campaign

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "welcome-sequence.yaml"


@pytest.fixture(autouse=True)
def _restore_home_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(STATE, "home", None)


@pytest.fixture
async def shop(home: Path) -> AsyncIterator[App]:
    async with running_sandbox(seed=3, limits=False) as sb:
        async with open_app(home, configure_logs=False) as app:
            await register(app, sb, "shop", "shop_bot")
            yield app


async def test_sequence_cli(shop: App, home: Path, capsys: Any, tmp_path: Path) -> None:
    cli = Cli(home, capsys)
    code, out, err = await cli("sequence", "create", str(EXAMPLE), "--bot", "shop")
    assert code == 0, err
    assert "sequence welcome (id 1) created for shop: 3 steps, trigger /start" in out
    code, out, err = await cli("sequence", "create", str(EXAMPLE), "--bot", "shop")
    assert code == 2 and "already has a sequence 'welcome'" in err and "Traceback" not in err

    shorter = tmp_path / "welcome.yaml"
    shorter.write_text(EXAMPLE.read_text().split('  - text: "What')[0])
    made = await cli.json("sequence", "create", str(shorter), "--bot", "shop", "--update")
    assert made["created"] is False and made["version"] == 2 and len(made["steps"]) == 1

    listed = await cli.json("sequence", "list")
    assert [(s["name"], s["state"], s["trigger"]) for s in listed] == [
        ("welcome", "active", "/start")
    ]
    code, out, _ = await cli("sequence", "show", "welcome")
    assert code == 0 and "quiet hours: 22:00-08:00 (Europe/Berlin unless known)" in out
    assert "stops on: unsubscribe, block, reply, goal tag customer" in out
    # Steps 2 and 3 are gone from the steps but reported as dropped, with their campaigns.
    assert "dropped: step 2 (campaign 2, cancelled) by version 2" in out
    assert "dropped: step 3 (campaign 3, cancelled) by version 2" in out
    shown = await cli.json("sequence", "show", "welcome")
    assert [(x["number"], x["campaign_id"], x["rows"]) for x in shown["dropped_steps"]] == [
        (2, 2, {}),
        (3, 3, {}),
    ]

    code, out, _ = await cli("sequence", "pause", "welcome")
    assert code == 0 and "is paused" in out
    async with shop.db.read() as conn:
        states = list((await conn.execute(select(Campaign.state).order_by(Campaign.id))).scalars())
    assert states == ["paused", "cancelled", "cancelled"]  # step 1 paused; 2 and 3 dropped
    code, out, _ = await cli("sequence", "resume", "1")
    assert code == 0 and "is active" in out

    st = await cli.json("sequence", "stats", "welcome")
    assert (st["enrolled"], st["active"], st["completed"], st["stopped_by"]) == (0, 0, 0, {})
    assert [s["step"] for s in st["steps"]] == [1]
    code, out, _ = await cli("sequence", "stats", "welcome")
    assert code == 0 and "enrolled 0" in out

    # The steps' own campaigns belong to the sequence, and so do those of steps 2 and 3,
    # dropped by --update: `campaign list` shows them only on request.
    assert await cli.json("campaign", "list") == []
    steps = await cli.json("campaign", "list", "--steps")
    assert [(c["name"], c["state"]) for c in steps] == [
        ("sequence welcome · step 3", "cancelled"),
        ("sequence welcome · step 2", "cancelled"),
        ("sequence welcome · step 1", "running"),
    ]

    code, _, err = await cli("sequence", "show", "nope")
    assert code == 2 and err.strip() == "botdesk: error: no sequence 'nope'"


async def test_bad_file_lists_every_problem_once(
    shop: App, home: Path, capsys: Any, tmp_path: Path
) -> None:
    cli = Cli(home, capsys)
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: ok\ntrigger: {nope: 1}\nsteps:\n  - text: hi\n    delay: later\n")
    code, _out, err = await cli("sequence", "create", str(bad), "--bot", "shop")
    assert code == 2 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines == [
        "botdesk: error: bad.yaml:2: trigger: unknown trigger 'nope' (start, tag, click)",
        "botdesk: error: bad.yaml:5: step 1: delay: a duration is a positive number with s, m,"
        " h or d: 'later'",
    ]
    assert json.loads((await cli("sequence", "list", "--json"))[1]) == []
