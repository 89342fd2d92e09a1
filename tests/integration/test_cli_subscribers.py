"""`botdesk subscribers ...` in-process against a real SQLite home."""

from __future__ import annotations

import asyncio
import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select

from botdesk.app import open_app
from botdesk.cli.common import STATE
from botdesk.cli.main import main
from botdesk.store.models import Bot, Subscriber, SubscriberTag

NOW = datetime.now(UTC)

# chat_id, status, first_name, username, language, source, tags
PEOPLE: list[tuple[Any, ...]] = [
    (11, "active", "Ann", "ann", "en", None, ["vip"]),
    (12, "active", "=HYPERLINK(\"http://x\")", None, "en-GB", "ad1", []),
    (13, "active", "Bo, \"the\" one", "bo", "de", "invalid", ["vip", "beta"]),
    (14, "unsubscribed", "Cy", None, "en", None, ["vip"]),
    (-100123, "active", "Group", None, None, "ad2", []),
]  # fmt: skip


@pytest.fixture(autouse=True)
def _restore_home_state(monkeypatch: pytest.MonkeyPatch) -> None:
    # main() records --home in a module global; leave it as we found it.
    monkeypatch.setattr(STATE, "home", None)


async def _fill(home: Path, extra: int = 0) -> None:
    async with open_app(home, configure_logs=False) as app:
        async with app.db.write() as conn:
            await conn.execute(
                insert(Bot).values(
                    name="shop", telegram_id=7, username="shop_bot", token_secret="bot.shop.token"
                )
            )
            bot_id = (await conn.execute(select(Bot.id))).scalar_one()
            for i, (chat, status, first, user, lang, source, tags) in enumerate(PEOPLE):
                await conn.execute(
                    insert(Subscriber).values(
                        bot_id=bot_id, chat_id=chat, status=status, first_name=first,
                        username=user, language=lang, source=source,
                        joined_at=NOW - timedelta(days=10 - i),
                    )
                )  # fmt: skip
                sid = (
                    await conn.execute(select(Subscriber.id).where(Subscriber.chat_id == chat))
                ).scalar_one()
                for t in tags:
                    await conn.execute(insert(SubscriberTag).values(subscriber_id=sid, tag=t))
            if extra:
                await conn.execute(
                    insert(Subscriber),
                    [
                        {"bot_id": bot_id, "chat_id": 10_000 + i, "status": "active"}
                        for i in range(extra)
                    ],
                )


@pytest.fixture
def shop_home(home: Path) -> Path:
    asyncio.run(_fill(home))
    return home


def run(home: Path, *args: str) -> int:
    return main([*args, "--home", str(home)])


def test_count_defaults_to_active_subscribers(
    shop_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(shop_home, "subscribers", "count", "--bot", "shop") == 0
    assert capsys.readouterr().out == "4\n"
    assert run(shop_home, "subscribers", "count", "--bot", "shop", "-s", "tag:vip") == 0
    assert capsys.readouterr().out == "2\n"
    assert run(shop_home, "subscribers", "count", "--bot", "shop", "-s", "status:unsubscribed") == 0
    assert capsys.readouterr().out == "1\n"
    args = ("subscribers", "count", "--bot", "shop", "--segment", "lang:en status:any", "--json")
    assert run(shop_home, *args) == 0
    assert json.loads(capsys.readouterr().out) == {
        "bot": "shop",
        "segment": "lang:en and status:any",
        "count": 3,
    }


def test_a_syntax_error_is_one_line_with_the_position_and_exit_2(
    shop_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(shop_home, "subscribers", "count", "--bot", "shop", "-s", "tag:vip and color:red")
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert "position 12" in err and "unknown field 'color'" in err


def test_an_unknown_bot_is_a_user_error(
    shop_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(shop_home, "subscribers", "count", "--bot", "nope") == 2
    assert "no bot named 'nope'" in capsys.readouterr().err


def test_list_pages_as_json_and_as_a_table(
    shop_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("subscribers", "list", "--bot", "shop", "--page-size", "2")
    assert run(shop_home, *args, "--page", "2", "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["chat_id"] for r in rows] == [13, -100123]
    assert rows[0]["tags"] == ["beta", "vip"]
    assert rows[0]["username"] == "bo"
    assert set(rows[0]) == {
        "chat_id", "status", "source", "first_name", "username", "language", "timezone", "tags",
        "joined_at", "last_seen_at", "left_at",
    }  # fmt: skip
    assert datetime.fromisoformat(rows[0]["joined_at"]).tzinfo is not None

    assert run(shop_home, *args, "--page", "3", "--json") == 0
    assert json.loads(capsys.readouterr().out) == []

    assert run(shop_home, *args) == 0
    out = capsys.readouterr().out
    assert "11" in out and "@ann" in out and "vip" in out
    assert "page 1 of 2: 2 shown, 4 in segment" in out
    assert "-100123" not in out  # on page 2

    assert run(shop_home, "subscribers", "list", "--bot", "shop", "--page", "0") == 2
    assert "--page" in capsys.readouterr().err


def _read_csv(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def test_export_writes_a_csv_and_refuses_to_overwrite(
    shop_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "out" / "vip.csv"
    target.parent.mkdir()
    args = ("subscribers", "export", "--bot", "shop", "--csv", str(target))
    assert run(shop_home, *args) == 0
    assert "exported 4 subscribers" in capsys.readouterr().out
    rows = _read_csv(target)
    assert rows[0] == [
        "chat_id", "status", "source", "first_name", "username", "language", "timezone", "tags",
        "joined_at", "last_seen_at", "left_at",
    ]  # fmt: skip
    assert [r[0] for r in rows[1:]] == ["11", "12", "13", "-100123"]
    by_chat = {r[0]: r for r in rows[1:]}
    # A name a spreadsheet would run as a formula is neutralised; commas and quotes survive.
    assert by_chat["12"][3] == '\'=HYPERLINK("http://x")'
    assert by_chat["13"][3] == 'Bo, "the" one'
    assert by_chat["13"][7] == "beta vip"
    assert by_chat["13"][2] == "invalid"

    before = target.read_bytes()
    assert run(shop_home, *args, "--segment", "tag:vip") == 2
    assert "already exists" in capsys.readouterr().err
    assert target.read_bytes() == before

    assert run(shop_home, *args, "--segment", "tag:vip", "--force") == 0
    assert "exported 2 subscribers" in capsys.readouterr().out
    assert [r[0] for r in _read_csv(target)[1:]] == ["11", "13"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["vip.csv"]  # no temp files

    missing = tmp_path / "nowhere" / "x.csv"
    assert run(shop_home, "subscribers", "export", "--bot", "shop", "--csv", str(missing)) == 2
    assert "does not exist" in capsys.readouterr().err


def test_export_streams_more_rows_than_one_batch(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(_fill(home, extra=2500))
    target = tmp_path / "all.csv"
    assert run(home, "subscribers", "export", "--bot", "shop", "--csv", str(target)) == 0
    assert "exported 2504 subscribers" in capsys.readouterr().out
    rows = _read_csv(target)[1:]
    assert len(rows) == 2504
    assert len({r[0] for r in rows}) == 2504


def test_tag_untag_by_chat_and_by_segment(
    shop_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(shop_home, "subscribers", "tag", "--bot", "shop", "--chat", "-100123", "group") == 0
    assert "tagged chat -100123 with 'group'" in capsys.readouterr().out
    assert run(shop_home, "subscribers", "tag", "--bot", "shop", "--chat", "-100123", "group") == 0
    assert "already has 'group'" in capsys.readouterr().out

    seg_args = ("subscribers", "tag", "--bot", "shop", "--segment", "lang:en", "english", "--json")
    assert run(shop_home, *seg_args) == 0
    assert json.loads(capsys.readouterr().out) == {"bot": "shop", "tag": "english", "tagged": 2}
    assert run(shop_home, *seg_args) == 0
    assert json.loads(capsys.readouterr().out)["tagged"] == 0

    assert run(shop_home, "subscribers", "count", "--bot", "shop", "-s", "tag:english") == 0
    assert capsys.readouterr().out == "2\n"

    assert run(shop_home, "subscribers", "untag", "--bot", "shop", "--chat", "11", "english") == 0
    assert "removed 'english' from chat 11" in capsys.readouterr().out
    assert run(shop_home, "subscribers", "untag", "--bot", "shop", "--chat", "11", "english") == 0
    assert "had no 'english'" in capsys.readouterr().out
    assert run(shop_home, "subscribers", "count", "--bot", "shop", "-s", "tag:english") == 0
    assert capsys.readouterr().out == "1\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--chat", "11", "--segment", "tag:vip", "x"], "exactly one of --chat"),
        (["x"], "exactly one of --chat"),
        (["--chat", "11", "bad tag"], "invalid tag"),
        (["--chat", "999", "x"], "no subscriber with chat id 999"),
        (["--segment", "tag:", "x"], "position 4"),
    ],
)
def test_tag_errors_exit_2_with_one_line(
    shop_home: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert run(shop_home, "subscribers", "tag", "--bot", "shop", *args) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1


def test_set_timezone_for_a_chat_and_a_segment(
    shop_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ("subscribers", "set-timezone", "--bot", "shop")
    assert run(shop_home, *base, "Europe/Berlin", "--chat", "14", "--json") == 0
    assert json.loads(capsys.readouterr().out)["changed"] == 1
    assert run(shop_home, *base, "Asia/Tokyo", "--segment", "tag:vip") == 0
    assert "2 subscriber(s) changed" in capsys.readouterr().out  # 11, 13 (14 is unsubscribed)
    assert run(shop_home, "subscribers", "count", "--bot", "shop", "-s", "tz:none") == 0
    assert capsys.readouterr().out.strip() == "2"  # 12 and the group
    assert run(shop_home, *base, "none", "--chat", "14") == 0
    assert "1 subscriber(s) changed" in capsys.readouterr().out
    assert run(shop_home, *base, "Mars/Olympus", "--chat", "11") == 2
    err = capsys.readouterr().err
    assert "unknown time zone 'Mars/Olympus'" in err and err.count("\n") == 1
