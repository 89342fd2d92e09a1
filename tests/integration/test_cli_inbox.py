"""`botdesk inbox list|show` in-process against a real SQLite home filled through the inbox."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from botdesk import inbox, subscribers
from botdesk.app import open_app
from botdesk.cli.common import STATE
from botdesk.cli.main import main
from botdesk.store.models import Bot

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
NASTY = "[bold red]pay now[/] \x1b[2J\x07 ok"


@pytest.fixture(autouse=True)
def _restore_home_state(monkeypatch: pytest.MonkeyPatch) -> None:
    # main() records --home in a module global; leave it as we found it.
    monkeypatch.setattr(STATE, "home", None)
    monkeypatch.setenv("COLUMNS", "220")


async def _fill(home: Path) -> None:
    async with open_app(home, configure_logs=False) as app, app.db.write() as conn:
        ids = {}
        for name in ("shop", "news"):
            await conn.execute(
                insert(Bot).values(
                    name=name, telegram_id=len(name), username=f"{name}_bot", token_secret="x"
                )
            )
            ids[name] = (await conn.execute(select(Bot.id).where(Bot.name == name))).scalar_one()
        shop, news = ids["shop"], ids["news"]
        await subscribers.start(
            conn,
            bot_id=shop,
            person=subscribers.Person(chat_id=11, first_name="Ann"),
            payload=None,
            update_id=1,
            now=T0,
        )

        async def say(
            bot_id: int, chat: int, direction: str, author: str, text: str, m: int
        ) -> None:
            await inbox.record(
                conn,
                bot_id=bot_id,
                chat_id=chat,
                direction=direction,
                author=author,
                text=text,
                now=T0 + timedelta(minutes=m),
            )

        await say(shop, 11, "in", "user", "where is my order?", 0)
        await say(shop, 11, "out", "assistant", "It ships tomorrow.", 1)
        await say(shop, 22, "in", "user", "I want a refund", 5)
        await say(shop, 22, "in", "user", NASTY, 6)
        await inbox.set_needs_human(
            conn, bot_id=shop, chat_id=22, reason="asked for a refund", now=T0
        )
        await say(news, 33, "in", "user", "hello", 3)


@pytest.fixture
def filled(home: Path) -> Path:
    asyncio.run(_fill(home))
    return home


def run(home: Path, *args: str) -> int:
    return main([*args, "--home", str(home)])


def test_list_json_all_conversations_most_recent_first(
    filled: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(filled, "inbox", "list", "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["bot"], r["chat_id"]) for r in rows] == [("shop", 22), ("news", 33), ("shop", 11)]
    by_chat = {r["chat_id"]: r for r in rows}
    assert by_chat[11]["name"] == "Ann" and by_chat[11]["messages"] == 2
    assert by_chat[11]["last_text"] == "It ships tomorrow." and not by_chat[11]["needs_human"]
    assert by_chat[22]["needs_human"] and by_chat[22]["handoff_reason"] == "asked for a refund"
    assert by_chat[22]["last_text"] == NASTY  # JSON keeps the text exactly


def test_list_filters(filled: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(filled, "inbox", "list", "--bot", "news", "--json") == 0
    assert [r["chat_id"] for r in json.loads(capsys.readouterr().out)] == [33]
    assert run(filled, "inbox", "list", "--needs-human", "--json") == 0
    assert [r["chat_id"] for r in json.loads(capsys.readouterr().out)] == [22]
    assert run(filled, "inbox", "list", "--bot", "news", "--needs-human") == 0
    assert "no conversations waiting for a human" in capsys.readouterr().out
    assert run(filled, "inbox", "list", "--limit", "1", "--json") == 0
    assert len(json.loads(capsys.readouterr().out)) == 1


def test_list_table_is_inert(filled: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(filled, "inbox", "list") == 0
    out = capsys.readouterr().out
    assert "Ann" in out and "asked for a refund" in out and "where" not in out
    assert "[bold red]pay now[/]" in out  # markup shown as typed, not applied
    assert "\x1b" not in out and "\x07" not in out


def test_show_json_and_text(filled: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(filled, "inbox", "show", "--bot", "shop", "--chat", "11", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["bot"] == "shop" and data["chat_id"] == 11
    assert [(m["direction"], m["author"], m["text"]) for m in data["messages"]] == [
        ("in", "user", "where is my order?"),
        ("out", "assistant", "It ships tomorrow."),
    ]
    assert run(filled, "inbox", "show", "--bot", "shop", "--chat", "22") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("2026-05-01 09:05") and "<- user" in lines[0]
    assert "I want a refund" in lines[0]
    assert "[bold red]pay now[/]" in lines[1] and "\x1b" not in lines[1]


def test_show_limit_keeps_the_latest(filled: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(filled, "inbox", "show", "--bot", "shop", "--chat", "11", "--limit", "1") == 0
    out = capsys.readouterr().out
    assert "It ships tomorrow." in out and "where is my order?" not in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["inbox", "show", "--bot", "nope", "--chat", "11"], "no bot named 'nope'"),
        (["inbox", "show", "--bot", "news", "--chat", "11"], "no conversation with chat 11"),
        (["inbox", "list", "--bot", "nope"], "no bot named 'nope'"),
    ],
)
def test_errors_are_one_line(
    filled: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert run(filled, *args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_empty_home(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(home, "inbox", "list") == 0
    assert "no conversations yet" in capsys.readouterr().out
    assert run(home, "inbox", "list", "--json") == 0
    assert json.loads(capsys.readouterr().out) == []
