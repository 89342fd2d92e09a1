"""`botdesk campaign create` refuses what Telegram would refuse, before anything is sent.

In-process CLI against a real SQLite home; no Bot API server is involved, which is the point:
validation needs none. Each refusal is exit code 2 and one line on stderr, and leaves no
campaign behind.
"""

from __future__ import annotations

import asyncio
import struct
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select, update

from botdesk.app import open_app
from botdesk.cli.common import STATE
from botdesk.cli.main import main
from botdesk.store.models import Bot, Campaign, Subscriber

LONG_NAME = "Maximiliana-Wilhelmina " * 4  # 92 characters
LONG_CHAT = 9_099
# chat_id, first_name
PEOPLE = [(9_000 + i, f"User{i}") for i in range(1, 6)] + [(LONG_CHAT, LONG_NAME)]


@pytest.fixture(autouse=True)
def _restore_home_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(STATE, "home", None)


async def _fill(home: Path) -> None:
    now = datetime.now(UTC)
    async with open_app(home, configure_logs=False) as app:
        async with app.db.write() as conn:
            for name, tid in (("shop", 7), ("empty", 8)):
                await conn.execute(
                    insert(Bot).values(
                        name=name,
                        telegram_id=tid,
                        username=f"{name}_bot",
                        token_secret=f"bot.{name}.token",
                    )
                )
            bot_id = (await conn.execute(select(Bot.id).where(Bot.name == "shop"))).scalar_one()
            await conn.execute(
                insert(Subscriber),
                [
                    {
                        "bot_id": bot_id,
                        "chat_id": chat,
                        "status": "active",
                        "first_name": first,
                        "joined_at": now,
                        "fields": {"city": "Oslo"},
                    }
                    for chat, first in PEOPLE
                ],
            )


@pytest.fixture
def shop_home(home: Path) -> Path:
    asyncio.run(_fill(home))
    return home


def _campaigns(home: Path) -> int:
    async def go() -> int:
        async with open_app(home, configure_logs=False) as app:
            async with app.db.read() as conn:
                return int((await conn.execute(select(func.count(Campaign.id)))).scalar() or 0)

    return asyncio.run(go())


def _png(path: Path) -> Path:
    """A real 1x1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"\x00\xff\x00\x00"
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
    return path


def refused(home: Path, capsys: Any, *args: str) -> str:
    """Run `campaign create` expecting exit 2 with one line on stderr; return that line."""
    capsys.readouterr()
    code = main(["campaign", "create", "--bot", "shop", *args, "--home", str(home)])
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("botdesk: error: "), err
    assert "Traceback" not in err and out == ""
    assert _campaigns(home) == 0  # nothing was created, so nothing can be sent
    return lines[0]


def test_unknown_variable_names_the_typo_and_the_known_ones(shop_home: Path, capsys: Any) -> None:
    line = refused(shop_home, capsys, "--text", "Hi {frist_name}!")
    assert "unknown variable {frist_name}" in line
    assert "first_name" in line and "city" in line  # what the operator could have meant


def test_invalid_html(shop_home: Path, capsys: Any) -> None:
    line = refused(shop_home, capsys, "--parse-mode", "html", "--text", "<b>Sale <i>today</b>")
    assert "can't parse entities" in line and '"</b>"' in line and "byte offset" in line


def test_unsupported_html_tag(shop_home: Path, capsys: Any) -> None:
    line = refused(shop_home, capsys, "--parse-mode", "html", "--text", "<div>hi</div>")
    assert "div" in line


def test_invalid_markdownv2(shop_home: Path, capsys: Any) -> None:
    line = refused(shop_home, capsys, "--parse-mode", "markdownv2", "--text", "Sale: 50% off.")
    assert "can't parse entities" in line and "'.'" in line and "escaped" in line


def test_markdownv2_unclosed_entity(shop_home: Path, capsys: Any) -> None:
    line = refused(shop_home, capsys, "--parse-mode", "markdownv2", "--text", "*bold forever")
    assert "can't find end of bold entity" in line.lower()


def _long_html(body: int) -> str:
    # The link's markup is long, but only the visible text counts toward Telegram's limit.
    url = "https://example.com/" + "p" * 300
    return f'<a href="{url}">' + "a" * body + "</a> {first_name}"


def test_text_over_4096_only_for_the_long_named_recipient(shop_home: Path, capsys: Any) -> None:
    text = _long_html(4096 - 1 - 40)  # fits "User1" (and markup), not LONG_NAME
    assert len(text) > 4096
    line = refused(shop_home, capsys, "--parse-mode", "html", "--text", text)
    assert f"for chat {LONG_CHAT}" in line and "4096" in line and "text" in line
    # Without that recipient the same template is accepted: the markup did not count.
    asyncio.run(_set_status(shop_home, LONG_CHAT, "unsubscribed"))
    assert (
        main(
            [
                "campaign",
                "create",
                "--bot",
                "shop",
                "--parse-mode",
                "html",
                "--text",
                text,
                "--home",
                str(shop_home),
            ]
        )
        == 0
    )


def test_caption_over_1024_for_the_long_named_recipient(
    shop_home: Path, capsys: Any, tmp_path: Path
) -> None:
    photo = _png(tmp_path / "p.png")
    text = "<b>" + "c" * (1024 - 1 - 40) + "</b> {first_name}"
    line = refused(shop_home, capsys, "--parse-mode", "html", "--photo", str(photo), "--text", text)
    assert f"for chat {LONG_CHAT}" in line and "caption" in line and "1024" in line
    asyncio.run(_set_status(shop_home, LONG_CHAT, "unsubscribed"))
    code = main(
        [
            "campaign",
            "create",
            "--bot",
            "shop",
            "--parse-mode",
            "html",
            "--photo",
            str(photo),
            "--text",
            text,
            "--home",
            str(shop_home),
        ]
    )
    assert code == 0


async def _set_status(home: Path, chat: int, status: str) -> None:
    async with open_app(home, configure_logs=False) as app:
        async with app.db.write() as conn:
            await conn.execute(
                update(Subscriber).where(Subscriber.chat_id == chat).values(status=status)
            )


def test_empty_audience(shop_home: Path, capsys: Any) -> None:
    capsys.readouterr()
    code = main(["campaign", "create", "--bot", "empty", "--text", "hi", "--home", str(shop_home)])
    _out, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1 and "audience is empty" in err


def test_segment_matching_nobody_is_an_empty_audience(shop_home: Path, capsys: Any) -> None:
    line = refused(shop_home, capsys, "--segment", "tag:nobody", "--text", "hi")
    assert "audience is empty" in line and "tag:nobody" in line


def test_missing_file(shop_home: Path, capsys: Any, tmp_path: Path) -> None:
    line = refused(shop_home, capsys, "--photo", str(tmp_path / "nope.png"), "--text", "hi")
    assert "cannot read photo file" in line and "nope.png" in line


def test_empty_file(shop_home: Path, capsys: Any, tmp_path: Path) -> None:
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    line = refused(shop_home, capsys, "--document", str(empty), "--text", "hi")
    assert "empty" in line and "empty.pdf" in line


@pytest.mark.parametrize(
    ("option", "name", "size", "limit"),
    [
        ("--photo", "big.png", 10 * 1024 * 1024 + 1, "10485760"),
        ("--document", "big.zip", 50 * 1024 * 1024 + 1, "52428800"),
    ],
)
def test_oversized_file(
    shop_home: Path, capsys: Any, tmp_path: Path, option: str, name: str, size: int, limit: str
) -> None:
    big = tmp_path / name
    with big.open("wb") as fh:  # sparse: the size is real, the disk use is not
        fh.truncate(size)
    line = refused(shop_home, capsys, option, str(big), "--text", "hi")
    assert str(size) in line and limit in line


def test_photo_with_a_non_image_suffix(shop_home: Path, capsys: Any, tmp_path: Path) -> None:
    f = tmp_path / "report.pdf"
    f.write_bytes(b"%PDF-1.4\n")
    line = refused(shop_home, capsys, "--photo", str(f), "--text", "hi")
    assert "--document" in line


@pytest.mark.parametrize(
    ("button", "expected"),
    [
        ("Shop=ftp://example.com", "must start with"),
        ("Shop=example.com", "must start with"),
        ("no-separator", "LABEL=URL"),
        ("=https://example.com", "LABEL=URL"),
        ("   =https://example.com", "label"),
        ("L" * 65 + "=https://example.com", "1-64"),
    ],
)
def test_bad_button(shop_home: Path, capsys: Any, button: str, expected: str) -> None:
    line = refused(shop_home, capsys, "--text", "hi", "--button", button)
    assert expected in line


def test_too_many_buttons(shop_home: Path, capsys: Any) -> None:
    buttons = [a for i in range(11) for a in ("--button", f"B{i}=https://example.com/{i}")]
    line = refused(shop_home, capsys, "--text", "hi", *buttons)
    assert "at most 10" in line


def test_bad_schedule_time(shop_home: Path, capsys: Any) -> None:
    assert "timezone" in refused(shop_home, capsys, "--text", "hi", "--at", "2030-01-01T09:00")
    assert "ISO 8601" in refused(shop_home, capsys, "--text", "hi", "--at", "tomorrow")


def test_paid_broadcast_needs_confirmation(shop_home: Path, capsys: Any) -> None:
    line = refused(shop_home, capsys, "--text", "hi", "--paid")
    assert "Stars" in line and "--yes" in line


def test_a_valid_campaign_is_created_as_draft(shop_home: Path, capsys: Any) -> None:
    capsys.readouterr()
    code = main(
        [
            "campaign",
            "create",
            "--bot",
            "shop",
            "--text",
            "Hi {first_name} in {city}",
            "--button",
            "Shop=https://example.com/shop",
            "--home",
            str(shop_home),
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0 and err == "" and out.strip().isdigit()
    assert _campaigns(shop_home) == 1
