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
    for flag in ("--resume", "--cancel"):
        code, _out, err = await cli("campaign", "actions", str(cid), flag)
        assert code == 2 and "no unfinished edit or recall" in err
    code, _out, err = await cli("campaign", "recall", str(cid), "--yes")
    assert code == 2 and "no delivered message to act on" in err


async def test_while_serve_owns_the_bot_it_performs_the_action(
    shop: App,  # noqa: F811
    sb: Any,  # noqa: F811
    home: Path,
    capsys: Any,
) -> None:
    from datetime import UTC, datetime

    from tests.e2e.support import eventually, running

    from botdesk.bots import BotRegistry
    from botdesk.store import leases

    cli = Cli(home, capsys)
    await seed(shop, sb, "shop", "shop_bot", 3)
    cid = (await cli.json("campaign", "create", "--bot", "shop", "--text", "Served"))["id"]
    await cli.json("campaign", "run", str(cid))
    bot_id = (await BotRegistry(shop.db, shop.secrets).get("shop")).id
    async with running(shop):

        async def served() -> bool:
            return await leases.holder(shop.db, bot_id=bot_id, now=datetime.now(UTC)) is not None

        await eventually(served)
        # The bar follows the serving process until the recall is done.
        code, out, err = await cli("campaign", "recall", str(cid), "--yes")
        assert code == 0, err
        assert "recall of campaign" in out and ": completed" in out and "recalled 3" in out
        assert "served by another process" not in out
    assert all(m["deleted"] for m in sb.messages() if m["text"] == "Served")
