"""`botdesk campaign ...` end to end through the CLI: create, list, status, run, report (JSON
and CSV), resend-uncertain, and the one-line errors.

The CLI runs in-process in a worker thread (it calls ``asyncio.run`` itself) while the sandbox
answers from the test's event loop; the home is a real SQLite file.
"""

from __future__ import annotations

import asyncio
import csv
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from tests.e2e.campaign_support import copies, seed
from tests.e2e.support import register

from botdesk.app import App, open_app
from botdesk.cli.common import STATE
from botdesk.cli.main import main
from botdesk.sandbox.testing import running_sandbox
from botdesk.store.models import Delivery

STATUS_KEYS = {
    "id",
    "state",
    "audience",
    "pending",
    "sending",
    "sent",
    "failed",
    "suppressed",
    "uncertain",
    "cancelled",
    "rate_per_s",
    "eta_s",
    "options",
}
CSV_FIELDS = [
    "chat_id",
    "username",
    "state",
    "attempts",
    "message_id",
    "error",
    "updated_at",
    "clicked_buttons",
    "first_click_at",
]
# Short read timeout: the sandbox's ack-lost fault holds the answer for 3 s.
TOML = """
[delivery]
rate = 1000.0
lease_seconds = 2

[network]
connect_timeout = 1.0
read_timeout = 1.0
"""


@pytest.fixture(autouse=True)
def _restore_home_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(STATE, "home", None)


@pytest.fixture
async def sb() -> AsyncIterator[Any]:
    async with running_sandbox(seed=31, limits=False) as s:
        yield s


@pytest.fixture
async def shop(home: Path, sb: Any) -> AsyncIterator[App]:
    (home / "botdesk.toml").write_text(TOML)
    async with open_app(home, configure_logs=False) as app:
        await register(app, sb, "shop", "shop_bot")
        yield app


class Cli:
    def __init__(self, home: Path, capsys: Any) -> None:
        self.home = home
        self.capsys = capsys

    async def __call__(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = await asyncio.to_thread(main, [*args, "--home", str(self.home)])
        out, err = self.capsys.readouterr()
        return code, out, err

    async def json(self, *args: str) -> Any:
        code, out, err = await self(*args, "--json")
        assert code == 0, err
        return json.loads(out)


async def test_campaign_cli_from_create_to_resend(
    shop: App, sb: Any, home: Path, capsys: Any, tmp_path: Path
) -> None:
    cli = Cli(home, capsys)
    users = await seed(shop, sb, "shop", "shop_bot", 40)

    created = await cli.json(
        "campaign",
        "create",
        "--bot",
        "shop",
        "--name",
        "spring",
        "--text",
        "Hi {first_name}, cli news",
    )
    cid = created["id"]
    assert created["state"] == "draft" and created["name"] == "spring" and created["bot"] == "shop"
    listed = await cli.json("campaign", "list")
    assert [(c["id"], c["state"]) for c in listed] == [(cid, "draft")]
    st = await cli.json("campaign", "status", str(cid))
    assert set(st) == STATUS_KEYS
    assert (st["state"], st["audience"], st["pending"]) == ("draft", 0, 0)

    sb.set_faults("stall=0.2,hold=3")  # lost answers: the message arrives, the ack does not
    final = await cli.json("campaign", "run", str(cid))
    assert set(final) == STATUS_KEYS
    stalls = sb.stats()["faults"].get("stall", 0)
    assert stalls > 0
    assert final["state"] == "completed" and final["audience"] == 40
    assert (final["sent"], final["uncertain"]) == (40 - stalls, stalls)
    assert final["pending"] == final["sending"] == final["failed"] == 0
    assert final["rate_per_s"] == 0 and final["eta_s"] == 0.0
    assert await cli.json("campaign", "status", str(cid)) == final
    got = copies(sb, "shop_bot", "cli news")
    assert len(got) == 40 and set(got.values()) == {1}  # uncertain ones did arrive, once

    rep = await cli.json("campaign", "report", str(cid))
    assert rep["campaign"]["id"] == cid and rep["campaign"]["state"] == "completed"
    assert rep["counts"]["sent"] == 40 - stalls and rep["counts"]["uncertain"] == stalls
    assert [r["state"] for r in rep["reasons"]] == ["uncertain"]
    assert rep["reasons"][0]["count"] == stalls

    out_csv = tmp_path / "report.csv"
    code, _out, err = await cli("campaign", "report", str(cid), "--csv", str(out_csv))
    assert code == 0 and f"wrote 40 rows to {out_csv}" in err
    with out_csv.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == CSV_FIELDS
        rows = list(reader)
    assert sorted(int(r["chat_id"]) for r in rows) == sorted(u.id for u in users)
    async with shop.db.read() as conn:
        ledger = dict((await conn.execute(select(Delivery.chat_id, Delivery.state))).all())
    assert {int(r["chat_id"]): r["state"] for r in rows} == ledger
    for r in rows:
        if r["state"] == "sent":
            assert r["message_id"].isdigit() and r["error"] == "" and r["attempts"] == "1"
        else:
            assert r["state"] == "uncertain" and r["message_id"] == "" and r["error"]

    sb.set_faults("")
    code, out, _err = await cli("campaign", "resend-uncertain", str(cid), "--yes")
    assert code == 0 and f"{stalls} uncertain recipients queued again" in out
    st = await cli.json("campaign", "status", str(cid))
    assert (st["state"], st["pending"], st["uncertain"]) == ("running", stalls, 0)
    final = await cli.json("campaign", "run", str(cid))
    assert (final["state"], final["sent"], final["uncertain"]) == ("completed", 40, 0)
    # Resending was the operator's explicit choice: exactly the uncertain ones got a second copy.
    got = copies(sb, "shop_bot", "cli news")
    assert sorted(got.values()) == [1] * (40 - stalls) + [2] * stalls


async def test_campaign_cli_errors_are_one_line(
    shop: App, sb: Any, home: Path, capsys: Any
) -> None:
    cli = Cli(home, capsys)
    await seed(shop, sb, "shop", "shop_bot", 3)
    created = await cli.json("campaign", "create", "--bot", "shop", "--text", "hello")
    cid = str(created["id"])
    cases = [
        (("campaign", "status", "999"), "no campaign with id 999"),
        (("campaign", "pause", cid), "is draft; cannot go to paused"),
        (("campaign", "resume", cid), "is draft; cannot go to running"),
        (("campaign", "create", "--bot", "nope", "--text", "x"), "no bot named 'nope'"),
        (("campaign", "create", "--bot", "shop"), "exactly one of --text or --text-file"),
    ]
    for args, expected in cases:
        code, out, err = await cli(*args)
        assert code == 2 and out == "", (args, out, err)
        assert err.count("\n") == 1 and expected in err, (args, err)
    at = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    sched = await cli.json(
        "campaign", "create", "--bot", "shop", "--text", "later", "--at", at.isoformat()
    )
    assert sched["state"] == "scheduled"
    assert datetime.fromisoformat(sched["scheduled_at"]).astimezone(UTC) == at
    code, out, _err = await cli("campaign", "cancel", str(sched["id"]))
    assert code == 0 and "cancelled" in out
    code, out, _err = await cli("campaign", "cancel", cid)
    assert code == 0 and f"campaign {cid}: cancelled" in out
    code, _out, err = await cli("campaign", "run", cid)
    assert code == 2 and "is cancelled: nothing to deliver" in err
    code, _out, err = await cli("campaign", "resend-uncertain", cid, "--yes")
    assert code == 2 and "is cancelled" in err
    assert sb.messages(bot="shop_bot") == []


async def test_campaign_send_options_on_the_command_line(
    shop: App, sb: Any, home: Path, capsys: Any
) -> None:
    cli = Cli(home, capsys)
    await seed(shop, sb, "shop", "shop_bot", 3)
    args = ("campaign", "create", "--bot", "shop", "--text", "Quiet news https://example.com")
    created = await cli.json(*args, "--silent", "--protect", "--no-link-preview", "--max-rate", "2")
    want = {"silent": True, "protect": True, "link_preview": False, "max_rate": 2.0}
    assert created["options"] == want
    assert (await cli.json("campaign", "status", str(created["id"])))["options"] == want
    plain = await cli.json(*args)
    assert plain["options"] == {
        "silent": False, "protect": False, "link_preview": True, "max_rate": None,
    }  # fmt: skip
    code, out, err = await cli(*args, "--max-rate", "0")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "--max-rate must be more than 0" in err


async def test_campaign_media_and_copies_on_the_command_line(
    shop: App, sb: Any, home: Path, capsys: Any, tmp_path: Path
) -> None:
    cli = Cli(home, capsys)
    users = await seed(shop, sb, "shop", "shop_bot", 2)
    (tmp_path / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"p" * 32)
    (tmp_path / "b.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"v" * 32)
    base = ("campaign", "create", "--bot", "shop")
    video = await cli.json(*base, "--video", str(tmp_path / "b.mp4"))  # no caption: fine
    assert video["media_kind"] == "video"
    album = await cli.json(
        *base,
        "--text",
        "pics",
        "--album",
        str(tmp_path / "a.png"),
        "--album",
        "video:" + str(tmp_path / "b.mp4"),
    )
    assert album["media_kind"] == "album"
    said = await sb.user_send(users[0].id, "shop_bot", "tip")
    copy = await cli.json(*base, "--copy-from", f"{users[0].id}:{said['message_id']}")
    assert copy["media_kind"] == "copy"
    code, out, err = await cli("campaign", "run", str(copy["id"]))
    assert code == 0, err
    assert {m["text"] for m in sb.messages(bot="shop_bot") if m["method"] == "copyMessage"} == {
        "tip"
    }
    cases = [
        (("--copy-from", "nope"), "--copy-from must be CHAT:MESSAGE_ID"),
        (("--text", "x", "--album", str(tmp_path / "a.png")), "an album has 2-10 items"),
        (("--text", "x", "--album", "notes.txt", "--album", "x.png"), "cannot tell the kind"),
        (("--text", "x" * 1025, "--video", str(tmp_path / "b.mp4")), "Telegram allows 1024"),
    ]
    for args, expected in cases:
        code, out, err = await cli(*base, *args)
        assert code == 2 and out == "", (args, err)
        assert err.count("\n") == 1 and expected in err, (args, err)
    code, out, _err = await cli("campaign", "create", "--help")
    for option in ("--video", "--animation", "--audio", "--voice", "--album", "--copy-from"):
        assert option in out
