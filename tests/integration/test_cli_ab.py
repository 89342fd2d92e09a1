"""`botdesk campaign create --variant ...` and `campaign decide` through the CLI (SQLite home,
sandbox on loopback): the test share gets the variants, no winner from silence, the operator's
pick goes to the rest; the one-line errors."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.campaign_support import copies, seed
from tests.integration import test_cli_campaign as cli_campaign

from botdesk.app import App

# The CLI harness and its fixtures (a SQLite home with bot `shop` on the sandbox).
Cli = cli_campaign.Cli
_restore_home_state = cli_campaign._restore_home_state
sb = cli_campaign.sb
shop = cli_campaign.shop


async def test_ab_from_create_to_pick(
    shop: App, sb: Any, home: Path, capsys: Any, tmp_path: Path
) -> None:
    cli = Cli(home, capsys)
    await seed(shop, sb, "shop", "shop_bot", 50)
    b_file = tmp_path / "b.txt"
    b_file.write_text("Hi {first_name}, variant two", encoding="utf-8")
    created = await cli.json(
        "campaign", "create", "--bot", "shop", "--name", "ab",
        "--variant", "Hi {first_name}, variant one", "--variant", str(b_file),
        "--test-share", "0.4", "--metric", "replies", "--decide-after", "1s",
    )  # fmt: skip
    cid = created["id"]
    assert created["state"] == "draft"
    listed = {c["name"]: c for c in await cli.json("campaign", "list")}
    assert set(listed) == {"ab", "ab [A]", "ab [B]"}
    assert listed["ab [A]"]["state"] == "ab-variant"
    code, out, _err = await cli("campaign", "start", str(cid))
    assert code == 0 and "testing" in out
    for child in ("ab [A]", "ab [B]"):
        final = await cli.json("campaign", "run", str(listed[child]["id"]))
        assert final["state"] == "completed" and final["sent"] == 10
    await asyncio.sleep(1.1)  # the window
    code, out, _err = await cli("campaign", "decide", str(cid))
    assert code == 0, out
    assert "variant A: 0 of 10 replied" in out and "variant B: 0 of 10 replied" in out
    assert "no significant difference" in out and "--pick N" in out
    picked = await cli.json("campaign", "decide", str(cid), "--pick", "2")
    assert picked["sent_to"] == 2 and picked["holdout"] == 30
    assert picked["outcome"] == "no significant difference" and picked["p_value"] == 1.0
    final = await cli.json("campaign", "run", str(cid))
    assert final["state"] == "completed" and final["sent"] == 30
    rep = await cli.json("campaign", "report", str(cid))
    ab = rep["ab_test"]
    assert (ab["metric"], ab["test_share"], ab["winner"]) == ("replies", 0.4, 2)
    assert ab["variant_campaigns"] == [listed["ab [A]"]["id"], listed["ab [B]"]["id"]]
    assert [v["delivered"] for v in ab["decision"]["variants"]] == [10, 10]
    code, out, _err = await cli("campaign", "report", str(cid))
    assert code == 0 and "decision: no significant difference, p = 1" in out
    assert "variant B sent to the rest" in out
    assert len(copies(sb, "shop_bot", "variant two")) == 40
    assert len(copies(sb, "shop_bot", "variant one")) == 10
    code, out, err = await cli("campaign", "decide", str(cid))
    assert code == 2 and "already decided" in err and "Traceback" not in err + out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--variant", "only one"], "2-4 variants"),
        (["--variant", "a", "--variant", "b", "--metric", "opens"], "--metric must be one of"),
        (["--variant", "a", "--variant", "b", "--decide-after", "soon"], "a duration"),
        (["--variant", "a", "--variant", "b", "--test-share", "0"], "--test-share"),
        (["--variant", "a", "--variant", "b", "--text", "c"], "not --text"),
    ],
)
async def test_ab_user_errors_are_one_line(
    shop: App, sb: Any, home: Path, capsys: Any, args: list[str], message: str
) -> None:
    cli = Cli(home, capsys)
    await seed(shop, sb, "shop", "shop_bot", 5)
    code, out, err = await cli("campaign", "create", "--bot", "shop", *args)
    assert code == 2 and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err + out


async def test_decide_before_the_window_is_refused(
    shop: App, sb: Any, home: Path, capsys: Any
) -> None:
    cli = Cli(home, capsys)
    await seed(shop, sb, "shop", "shop_bot", 20)
    cid = (
        await cli.json(
            "campaign",
            "create",
            "--bot",
            "shop",
            "--variant",
            "one",
            "--variant",
            "two",
            "--decide-after",
            "2h",
        )
    )["id"]
    code, _out, err = await cli("campaign", "decide", str(cid))
    assert code == 2 and "has not started" in err
    assert (await cli("campaign", "start", str(cid)))[0] == 0
    code, _out, err = await cli("campaign", "decide", str(cid))
    assert code == 2 and "peeking" in err
