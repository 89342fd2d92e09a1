"""`botdesk campaign edit | recall | actions` through the CLI: confirmation, JSON, reports,
the one-line errors (exit code 2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e.campaign_support import seed
from tests.integration.test_cli_campaign import Cli, sb, shop  # noqa: F401 (fixtures)

from botdesk.app import App


async def test_edit_recall_and_report(
    shop: App,  # noqa: F811
    sb: Any,  # noqa: F811
    home: Path,
    capsys: Any,
    tmp_path: Path,
) -> None:
    cli = Cli(home, capsys)
    await seed(shop, sb, "shop", "shop_bot", 4)
    cid = (await cli.json("campaign", "create", "--bot", "shop", "--text", "Price 100"))["id"]
    await cli.json("campaign", "run", str(cid))

    code, _out, err = await cli("campaign", "edit", str(cid), "--text", "Price 90")
    assert code == 2 and err.count("\n") == 1
    assert "this would replace the text of 4 delivered messages" in err and "--yes" in err
    code, _out, err = await cli("campaign", "edit", str(cid), "--text", "a", "--text-file", "f")
    assert code == 2 and "exactly one of --text or --text-file" in err
    code, _out, err = await cli("campaign", "recall", "999", "--yes")
    assert code == 2 and "no campaign with id 999" in err

    new = tmp_path / "new.txt"
    new.write_text("Price <b>90</b>", encoding="utf-8")
    st = await cli.json(
        "campaign",
        "edit",
        str(cid),
        "--text-file",
        str(new),
        "--parse-mode",
        "html",
        "--button",
        "Buy=https://example.com/buy",
        "--yes",
    )
    assert (st["state"], st["edited"], st["total"], st["performed_by"]) == (
        "completed",
        4,
        4,
        "here",
    )
    assert all(m["text"] == "Price 90" and m["reply_markup"] for m in sb.messages())

    code, out, err = await cli("campaign", "recall", str(cid), "--yes")
    assert code == 0, err
    assert "recall of campaign" in out and "recalled 4" in out
    assert all(m["deleted"] for m in sb.messages())

    listed = await cli.json("campaign", "actions", str(cid))
    assert [(a["kind"], a["state"]) for a in listed] == [
        ("edit", "completed"),
        ("recall", "completed"),
    ]
    code, _out, err = await cli("campaign", "actions", str(cid), "--resume")
    assert code == 2 and "no unfinished edit or recall" in err
    code, _out, err = await cli("campaign", "recall", str(cid), "--yes")
    assert code == 2 and "no delivered message to act on" in err
