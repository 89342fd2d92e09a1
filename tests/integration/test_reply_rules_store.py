"""Reply rules in the database (SQLite and PostgreSQL), and `botdesk rules ...` on a home."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from tests.helpers import add_bot, add_subscriber

from botdesk import reply_rules
from botdesk.app import open_app
from botdesk.cli.common import STATE
from botdesk.cli.main import main
from botdesk.errors import NotFoundError
from botdesk.runtime.rules import RuleBook
from botdesk.store.models import SubscriberTag

NOW = datetime.now(UTC)

RULES = """rules:
  - name: price
    command: /price
    reply: From 49 EUR
    tags: [asked-price]
  - name: menu
    keyword: [interests, menu]
    reply:
      text: What interests you?
      photo: shoe.jpg
      menu:
        exclusive: true
        buttons: [{label: Shoes, tag: shoes}, {label: Bags, tag: bags}]
commands:
  - {command: price, description: Prices}
"""


@pytest.fixture(autouse=True)
def _restore_home_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(STATE, "home", None)


def _file(tmp_path: Path, text: str = RULES, name: str = "rules.yaml") -> Path:
    (tmp_path / "shoe.jpg").write_bytes(b"\xff\xd8\xff")
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


async def _bot_and_subscriber(db: Any) -> int:
    async with db.write() as conn:
        bot_id = await add_bot(conn, telegram_id=7, token_secret="bot.shop.token")
        await add_subscriber(conn, bot_id, 11)
    return bot_id


async def _tags(db: Any) -> list[str]:
    async with db.read() as conn:
        rows = await conn.execute(select(SubscriberTag.tag).order_by(SubscriberTag.tag))
        return list(rows.scalars())


async def test_store_version_and_reload(db: Any, tmp_path: Path) -> None:
    bot_id = await _bot_and_subscriber(db)
    book = RuleBook(bot_id)
    async with db.read() as conn:
        assert await book.current(conn) is None
    rules, version = await reply_rules.store(db, bot_id=bot_id, path=_file(tmp_path), now=NOW)
    assert version == 1 and len(rules.rules) == 2
    async with db.read() as conn:
        first = await book.current(conn)
        assert first is not None and first.version == 1
        assert await book.current(conn) is first  # unchanged version: no new parse
    # The stored copy carries the photo's absolute path: workers do not know the file's folder.
    stored = await reply_rules.current(db, bot_id=bot_id)
    assert stored.rules[1].reply.photo == str((tmp_path / "shoe.jpg").resolve())
    # Another operator loads a new file: the next batch sees it.
    newer = RULES.replace("From 49 EUR", "From 39 EUR")
    _, version = await reply_rules.store(db, bot_id=bot_id, path=_file(tmp_path, newer), now=NOW)
    assert version == 2
    async with db.read() as conn:
        second = await book.current(conn)
    assert second is not None and second.version == 2
    price = second.match("/price", None)
    assert price is not None and price.reply.text == "From 39 EUR"
    info = await reply_rules.stored_info(db, bot_id=bot_id)
    assert info.filename == "rules.yaml" and info.version == 2
    assert await reply_rules.clear(db, bot_id=bot_id)
    async with db.read() as conn:
        assert await book.current(conn) is None
    with pytest.raises(NotFoundError):
        await reply_rules.stored_info(db, bot_id=bot_id)


async def test_retag_adds_and_swaps_in_one_transaction(db: Any) -> None:
    bot_id = await _bot_and_subscriber(db)
    async with db.write() as conn:
        assert await reply_rules.retag(conn, bot_id=bot_id, chat_id=11, add=["shoes"])
        # Pressed twice (or redelivered): no duplicate, no error.
        assert await reply_rules.retag(conn, bot_id=bot_id, chat_id=11, add=["shoes", "vip"])
    assert await _tags(db) == ["shoes", "vip"]
    async with db.write() as conn:
        await reply_rules.retag(
            conn, bot_id=bot_id, chat_id=11, add=["bags"], remove=["shoes", "bags"]
        )
    assert await _tags(db) == ["bags", "vip"]
    async with db.write() as conn:  # nobody to tag: never sent /start
        assert not await reply_rules.retag(conn, bot_id=bot_id, chat_id=999, add=["shoes"])
    assert await _tags(db) == ["bags", "vip"]


def _cli(home: Path, *args: str) -> int:
    return main(["--home", str(home), *args])


async def _home_with_bot(home: Path) -> None:
    async with open_app(home, configure_logs=False) as app:
        await _bot_and_subscriber(app.db)


def test_cli_load_list_test(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio

    asyncio.run(_home_with_bot(home))
    assert _cli(home, "rules", "load", str(_file(tmp_path)), "--bot", "shop") == 0
    out = capsys.readouterr().out
    assert "2 rules, 2 menu buttons, 1 commands stored for shop (version 1)" in out
    assert _cli(home, "rules", "list", "--bot", "shop", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in listed["rules"]] == ["price", "menu"]
    assert [b["tag"] for b in listed["rules"][1]["menu"]] == ["shoes", "bags"]
    assert all(b["callback_data"].startswith("m:") for b in listed["rules"][1]["menu"])
    assert listed["commands"] == [{"command": "price", "description": "Prices", "language": None}]
    assert _cli(home, "rules", "test", "--bot", "shop", "show me the MENU") == 0
    assert capsys.readouterr().out.startswith("rule menu (keyword: interests, menu)")
    assert _cli(home, "rules", "test", "--bot", "shop", "how are you", "--json") == 0
    assert json.loads(capsys.readouterr().out) == {"rule": None, "answered_by": "assistant"}
    assert _cli(home, "rules", "test", "--bot", "shop", "hello") == 0
    assert capsys.readouterr().out.strip() == "assistant"
    assert _cli(home, "rules", "clear", "--bot", "shop") == 0
    assert "rules of shop removed" in capsys.readouterr().out
    assert _cli(home, "rules", "test", "--bot", "shop", "/price") == 0
    assert capsys.readouterr().out.strip() == "assistant"
    assert _cli(home, "rules", "clear", "--bot", "shop") == 0
    assert "shop had no rules" in capsys.readouterr().out


def test_cli_load_reports_each_problem_and_keeps_the_old_rules(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    asyncio.run(_home_with_bot(home))
    assert _cli(home, "rules", "load", str(_file(tmp_path)), "--bot", "shop") == 0
    capsys.readouterr()
    bad = _file(
        tmp_path,
        "rules:\n  - name: a\n    regex: '(unclosed'\n    reply: x\n  - name: b\n    keyword: hi\n",
        name="bad.yaml",
    )
    assert _cli(home, "rules", "load", str(bad), "--bot", "shop") == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 2
    assert err[0].startswith("botdesk: error: bad.yaml:3: rule 'a': invalid regular expression")
    assert err[1] == "botdesk: error: bad.yaml:5: rule 'b': needs a 'reply'"
    assert "Traceback" not in captured.err
    assert _cli(home, "rules", "test", "--bot", "shop", "/price") == 0
    assert capsys.readouterr().out.startswith("rule price")  # version 1 still answers
    assert _cli(home, "rules", "list", "--bot", "nosuch") == 2
    assert "nosuch" in capsys.readouterr().err
