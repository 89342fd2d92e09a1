"""Telegram's media rules checked before sending (botdesk.media): kinds, sizes, albums, copies."""

from __future__ import annotations

from pathlib import Path

import pytest

from botdesk import media
from botdesk.errors import ValidationError
from botdesk.media import MediaItem


def _f(tmp: Path, name: str, size: int = 10) -> Path:
    p = tmp / name
    p.write_bytes(b"x" * size)
    return p


@pytest.mark.parametrize(
    ("value", "chat", "mid"),
    [("-1001234567890:42", -1001234567890, 42), ("@my_channel:7", "@my_channel", 7),
     ("123456:1", 123456, 1)],
)  # fmt: skip
def test_copy_sources_parse(value: str, chat: int | str, mid: int) -> None:
    src = media.parse_copy_source(value)
    assert (src.chat, src.message_id) == (chat, mid)
    assert media.CopySource.from_json(src.as_json()) == src and str(src) == value


@pytest.mark.parametrize("value", ["", "42", "abc:1", "-100:0", "-100:-3", "@ab:1", "1:2:3"])
def test_bad_copy_sources_are_one_clear_error(value: str) -> None:
    with pytest.raises(ValidationError, match="--copy-from must be CHAT:MESSAGE_ID"):
        media.parse_copy_source(value)


def test_album_item_kinds_come_from_the_suffix_or_a_prefix(tmp_path: Path) -> None:
    assert media.album_kind("a.JPG").kind == "photo"
    assert media.album_kind("b.mp4").kind == "video"
    assert media.album_kind("document:c.pdf") == MediaItem("document", Path("c.pdf"))
    assert media.album_kind("audio:d.mp3").kind == "audio"
    with pytest.raises(ValidationError, match="cannot tell the kind"):
        media.album_kind("notes.pdf")


def test_album_rules(tmp_path: Path) -> None:
    photo, video = _f(tmp_path, "a.png"), _f(tmp_path, "b.mp4")
    doc, song = _f(tmp_path, "c.pdf"), _f(tmp_path, "d.mp3")
    ok = media.check_album([MediaItem("photo", photo), MediaItem("video", video)])
    assert [i.kind for i in ok] == ["photo", "video"] and ok[0].path.is_absolute()
    media.check_album([MediaItem("document", doc)] * 2)
    media.check_album([MediaItem("audio", song)] * 10)
    with pytest.raises(ValidationError, match="2-10 items"):
        media.check_album([MediaItem("photo", photo)])
    with pytest.raises(ValidationError, match="2-10 items"):
        media.check_album([MediaItem("photo", photo)] * 11)
    with pytest.raises(ValidationError, match="mixes only photos and videos"):
        media.check_album([MediaItem("photo", photo), MediaItem("document", doc)])
    with pytest.raises(ValidationError, match="mixes only photos and videos"):
        media.check_album([MediaItem("audio", song), MediaItem("video", video)])


def test_file_checks(tmp_path: Path) -> None:
    assert media.check_file(MediaItem("voice", _f(tmp_path, "v.ogg"))).name == "v.ogg"
    with pytest.raises(ValidationError, match=r"video must be one of \.m4v, \.mov, \.mp4"):
        media.check_file(MediaItem("video", _f(tmp_path, "v.avi")))
    with pytest.raises(ValidationError, match="empty"):
        media.check_file(MediaItem("audio", _f(tmp_path, "e.mp3", 0)))
    with pytest.raises(ValidationError, match="cannot read animation file"):
        media.check_file(MediaItem("animation", tmp_path / "missing.gif"))
    big = tmp_path / "big.png"
    with big.open("wb") as fh:
        fh.truncate(media.PHOTO_MAX_BYTES + 1)
    with pytest.raises(ValidationError, match="Telegram allows 10485760"):
        media.check_file(MediaItem("photo", big))
    media.check_file(MediaItem("document", big))  # a document may be up to 50 MB
