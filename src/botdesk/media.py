"""What a campaign's message is made of, checked before anything is sent: one file (photo,
document, video, animation, audio, voice), an album (sendMediaGroup), or a copy of an existing
message (copyMessage, ``CHAT:MESSAGE_ID``).

Telegram's rules kept here (Bot API: sendPhoto ... sendVoice, sendMediaGroup, copyMessage):
a bot uploads photos up to 10 MB and other files up to 50 MB; a caption is 0-1024 characters
after entity parsing (a text message 4096); an album holds 2-10 items, photos and videos may be
mixed, documents and audio files are grouped only with their own kind; an album has no inline
keyboard (sendMediaGroup takes no ``reply_markup``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botdesk.errors import ValidationError

PHOTO_MAX_BYTES = 10 * 1024 * 1024
FILE_MAX_BYTES = 50 * 1024 * 1024
FILE_KINDS = ("photo", "document", "video", "animation", "audio", "voice")
ALBUM_KINDS = ("photo", "video", "document", "audio")
ALBUM_MIN, ALBUM_MAX = 2, 10
SUFFIXES: dict[str, frozenset[str]] = {
    "photo": frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif"}),
    "video": frozenset({".mp4", ".mov", ".m4v"}),
    "animation": frozenset({".gif", ".mp4"}),
    "audio": frozenset({".mp3", ".m4a"}),
    "voice": frozenset({".ogg", ".oga", ".opus", ".mp3", ".m4a"}),
}
_HINT = {
    "photo": "send other files as --document",
    "video": "Telegram plays MPEG-4 video; send other files as --document",
    "animation": "a GIF or a silent MPEG-4 video",
    "audio": "Telegram's player takes MP3 or M4A; send other files as --document",
    "voice": "a voice message is OGG/Opus, MP3 or M4A",
}
_COPY_RE = re.compile(r"^(-?\d+|@[A-Za-z][A-Za-z0-9_]{3,31}):(\d+)$")


@dataclass(frozen=True)
class MediaItem:
    kind: str
    path: Path


@dataclass(frozen=True)
class CopySource:
    chat: int | str  # a chat id, or a public channel's @username
    message_id: int

    def as_json(self) -> dict[str, Any]:
        return {"chat": self.chat, "message_id": self.message_id}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CopySource:
        return cls(chat=data["chat"], message_id=int(data["message_id"]))

    def __str__(self) -> str:
        return f"{self.chat}:{self.message_id}"


def parse_copy_source(value: str) -> CopySource:
    """``CHAT:MESSAGE_ID``: CHAT is a chat id (a channel's is -100...) or a public @channel."""
    m = _COPY_RE.match(value.strip())
    if m is None or int(m.group(2)) <= 0:
        raise ValidationError(
            f"--copy-from must be CHAT:MESSAGE_ID (e.g. -1001234567890:42 or @channel:42), "
            f"got {value!r}"
        )
    chat = m.group(1)
    return CopySource(chat=chat if chat.startswith("@") else int(chat), message_id=int(m.group(2)))


def album_kind(value: str) -> MediaItem:
    """An ``--album`` item: ``FILE`` (photo or video by its suffix, else an error) or
    ``KIND:FILE`` with KIND one of photo, video, document, audio."""
    kind, sep, rest = value.partition(":")
    if sep and kind in ALBUM_KINDS:
        return MediaItem(kind, Path(rest))
    path = Path(value)
    suffix = path.suffix.lower()
    for k in ("photo", "video"):
        if suffix in SUFFIXES[k]:
            return MediaItem(k, path)
    raise ValidationError(
        f"--album {value}: cannot tell the kind from the name; write photo:FILE, video:FILE, "
        "document:FILE or audio:FILE"
    )


def check_file(item: MediaItem) -> Path:
    """The file is readable, not empty, within Telegram's size and of a format its kind takes."""
    kind, path = item.kind, item.path
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            fh.read(1)
    except OSError as exc:
        raise ValidationError(f"cannot read {kind} file {path}: {exc.strerror}") from None
    if not path.is_file() or size == 0:
        raise ValidationError(f"{kind} file {path} is empty or not a regular file")
    limit = PHOTO_MAX_BYTES if kind == "photo" else FILE_MAX_BYTES
    if size > limit:
        raise ValidationError(f"{kind} file {path} is {size} bytes; Telegram allows {limit}")
    allowed = SUFFIXES.get(kind)
    if allowed is not None and path.suffix.lower() not in allowed:
        raise ValidationError(f"{kind} must be one of {', '.join(sorted(allowed))}; {_HINT[kind]}")
    return path.resolve()


def check_album(items: list[MediaItem]) -> list[MediaItem]:
    """Telegram's album rules, then each file; the items with resolved paths."""
    if not ALBUM_MIN <= len(items) <= ALBUM_MAX:
        raise ValidationError(
            f"an album has {ALBUM_MIN}-{ALBUM_MAX} items (--album given {len(items)} times)"
        )
    kinds = {i.kind for i in items}
    if len(kinds) > 1 and not kinds <= {"photo", "video"}:
        raise ValidationError(
            "an album mixes only photos and videos; documents and audio files are grouped "
            f"only with their own kind (got {', '.join(sorted(kinds))})"
        )
    return [MediaItem(i.kind, check_file(i)) for i in items]


def items_json(items: list[MediaItem]) -> list[dict[str, Any]]:
    return [{"kind": i.kind, "path": str(i.path), "file_id": None} for i in items]
