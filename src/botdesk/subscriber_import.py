"""Importing the subscribers of a bot that ran elsewhere: reading the file, merging, verifying.

An operator moving a hand-written bot to botdesk has a table of the people who started it.
``read_file`` turns a CSV or JSON Lines file into ``ImportRow``s and ``RowProblem``s (by line
number); ``import_rows`` records the rows as subscribers of one bot in batched transactions,
each new one with an ``imported`` consent event naming the source label and the file; and
``verify`` asks Telegram (getChat, at the bot's rate) whether each chat still exists.

Merging keeps what botdesk already knows: a chat that is already a subscriber keeps its status
(an import never resubscribes someone who left or blocked the bot, whatever the file says),
its dates and its names; the file only fills what is empty and adds tags and custom fields.
Re-running an import is therefore harmless. Nothing here sends a message.

File format (see docs/delivery.md): ``chat_id`` (required), ``first_name``, ``last_name``,
``username``, ``language``, ``timezone`` (an IANA name), ``tags``, ``started_at``; any other
column (CSV) or key (JSON Lines, or inside a ``"fields"`` object) is a custom field. botdesk
keeps no last-name column:
``last_name`` is stored as the custom field of that name (``{last_name}`` in templates,
``field.last_name:...`` in segments).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

# A problem at a line of an imported file is the same thing for a knowledge base and a list.
from botdesk.assistant.knowledge import ImportProblem as RowProblem
from botdesk.clock import Clock
from botdesk.errors import ValidationError
from botdesk.segments import TAG_RE
from botdesk.store.db import Database
from botdesk.store.models import ConsentEvent, Subscriber, SubscriberTag
from botdesk.timezones import is_zone

if TYPE_CHECKING:
    from botdesk.delivery.ratelimit import BotRateLimiter

IMPORTED = "imported"
DEFAULT_BATCH = 2000  # rows per transaction (and per IN (...) lookup: far below any bind limit)
MAX_PROBLEMS_KEPT = 1000  # a garbage file must not hold a million messages in memory
SOURCE_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
FIELD_RE = re.compile(r"^[A-Za-z0-9_]{1,64}$")
KNOWN_KEYS = (
    "chat_id",
    "first_name",
    "last_name",
    "username",
    "language",
    "timezone",
    "tags",
    "started_at",
)
_CHAT_RE = re.compile(r"^-?\d{1,19}$")
_LANG_RE = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")
_TAG_SPLIT = re.compile(r"[;|]")
_INT64 = 2**63
Format = Literal["csv", "jsonl"]


@dataclass
class ImportRow:
    line: int
    chat_id: int
    first_name: str | None = None
    username: str | None = None
    language: str | None = None
    timezone: str | None = None
    started_at: datetime | None = None
    tags: list[str] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)

    def absorb(self, other: ImportRow) -> None:
        """The same chat again in the file: the first value of each field wins, tags add up."""
        self.first_name = self.first_name or other.first_name
        self.username = self.username or other.username
        self.language = self.language or other.language
        self.timezone = self.timezone or other.timezone
        if other.started_at and (not self.started_at or other.started_at < self.started_at):
            self.started_at = other.started_at
        self.tags.extend(t for t in other.tags if t not in self.tags)
        for k, v in other.fields.items():
            self.fields.setdefault(k, v)


@dataclass
class ImportReport:
    file: str
    source: str
    rows: int = 0  # valid rows read (duplicates included)
    added: int = 0
    merged: int = 0  # already a subscriber of the bot: filled in, status untouched
    repeated: int = 0  # the same chat again later in the file
    skipped: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    chats: list[int] = field(default_factory=list)  # imported chats, for --verify

    def problem(self, p: RowProblem) -> None:
        self.skipped += 1
        if len(self.problems) < MAX_PROBLEMS_KEPT:
            self.problems.append(p)

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "source": self.source,
            "rows": self.rows,
            "added": self.added,
            "merged": self.merged,
            "repeated": self.repeated,
            "skipped": self.skipped,
            "problems": [{"line": p.line, "reason": p.reason} for p in self.problems],
        }


# -- reading ------------------------------------------------------------------------------


def check_source(label: str) -> str:
    if not SOURCE_RE.match(label):
        raise ValidationError(
            f"invalid --source {label!r}: use 1-64 letters, digits, '_' or '-' "
            "(it is what `source:` selects in a segment)"
        )
    return label


def detect_format(path: Path, head: bytes) -> Format:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    return "jsonl" if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{") else "csv"


def _text(value: Any, what: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{what} must be text")
    value = value.strip()
    return value[:limit] or None


def _chat_id(value: Any) -> int:
    if isinstance(value, bool) or value is None or value == "":
        raise ValueError("chat_id is missing")
    text = str(value).strip()
    if not _CHAT_RE.match(text) or not -_INT64 <= int(text) < _INT64 or int(text) == 0:
        raise ValueError(f"bad chat_id {text[:40]!r} (expected a Telegram chat id)")
    return int(text)


def _started(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError("started_at must be an ISO 8601 text")
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"bad started_at {value[:40]!r} (expected ISO 8601)") from None
    # A naive time is read as UTC: the old bot's table has no way to say otherwise.
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _zone(value: Any) -> str | None:
    name = _text(value, "timezone", 200)
    if name is not None and not is_zone(name):
        raise ValueError(f"unknown timezone {name[:70]!r} (an IANA name such as Europe/Berlin)")
    return name


def _tags(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        items = [t.strip() for t in _TAG_SPLIT.split(value)]
    elif isinstance(value, list) and all(isinstance(t, str) for t in value):
        items = [t.strip() for t in value]
    else:
        raise ValueError("tags must be a list of names, or names separated by ';' or '|'")
    out: list[str] = []
    for t in items:
        if not t:
            continue
        if not TAG_RE.match(t):
            raise ValueError(f"invalid tag {t[:70]!r}: use 1-64 letters, digits, '_' or '-'")
        if t not in out:
            out.append(t)
    return out


def _custom(name: str, value: Any) -> Any:
    if not FIELD_RE.match(name):
        raise ValueError(f"invalid custom field name {name[:70]!r}: use 1-64 letters, digits, '_'")
    if value is not None and not isinstance(value, str | int | float | bool):
        raise ValueError(f"custom field {name!r} must be text, a number or true/false")
    return value


def make_row(line: int, record: dict[str, Any]) -> ImportRow:
    """One record (CSV row or JSON object) as an ``ImportRow``; ValueError says what is wrong."""
    lang = _text(record.get("language"), "language", 16)
    if lang is not None and not _LANG_RE.match(lang):
        raise ValueError(f"bad language {lang!r} (expected a code like en or pt-BR)")
    username = _text(record.get("username"), "username", 65)
    row = ImportRow(
        line=line,
        chat_id=_chat_id(record.get("chat_id")),
        first_name=_text(record.get("first_name"), "first_name", 256),
        username=username.removeprefix("@")[:64] or None if username else None,
        language=lang,
        timezone=_zone(record.get("timezone")),
        started_at=_started(record.get("started_at")),
        tags=_tags(record.get("tags")),
    )
    nested = record.get("fields")
    if nested is not None and not isinstance(nested, dict):
        raise ValueError('"fields" must be an object')
    extra = {k: v for k, v in record.items() if k not in KNOWN_KEYS and k != "fields"}
    for name, value in {**extra, **(nested or {})}.items():
        value = _custom(name, value)
        if value is not None and value != "":
            row.fields[name] = value
    last = _text(record.get("last_name"), "last_name", 256)
    if last is not None:
        row.fields.setdefault("last_name", last)
    return row


def _decoded_lines(raw: io.BufferedIOBase, bad: Callable[[int], None]) -> Iterator[str]:
    """The file's lines as text; a line that is not UTF-8 is reported and read as empty."""
    for n, data in enumerate(raw, start=1):
        try:
            text = data.decode("utf-8-sig" if n == 1 else "utf-8")
        except UnicodeDecodeError:
            bad(n)
            text = "\n"
        yield text


def read_file(path: Path) -> Iterator[ImportRow | RowProblem]:
    """Every record of ``path`` in order: a row, or the problem that makes it unusable.

    Raises ``ValidationError`` for a file that cannot be read at all (missing, a folder, a CSV
    without a ``chat_id`` column)."""
    if not path.exists():
        raise ValidationError(f"{path}: no such file")
    if not path.is_file():
        raise ValidationError(f"{path} is not a file")
    return _records(path)


def _records(path: Path) -> Iterator[ImportRow | RowProblem]:
    try:
        raw = path.open("rb")
    except OSError as exc:
        raise ValidationError(f"{path}: cannot read ({exc.strerror})") from exc
    with raw:
        fmt = detect_format(path, raw.peek(64))
        undecodable: list[int] = []
        lines = _decoded_lines(raw, undecodable.append)
        if fmt == "jsonl":
            yield from _read_jsonl(lines, undecodable)
        else:
            yield from _read_csv(path, lines, undecodable)


def _not_utf8(n: int) -> RowProblem:
    return RowProblem(n, "not UTF-8 text (save the file as UTF-8)")


def _read_jsonl(lines: Iterator[str], undecodable: list[int]) -> Iterator[ImportRow | RowProblem]:
    for n, text in enumerate(lines, start=1):
        if undecodable and undecodable[-1] == n:
            yield _not_utf8(n)
            continue
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            yield RowProblem(n, f"bad JSON ({exc.msg})")
            continue
        if not isinstance(record, dict):
            yield RowProblem(n, "expected a JSON object")
            continue
        try:
            yield make_row(n, record)
        except ValueError as exc:
            yield RowProblem(n, str(exc))


def _read_csv(
    path: Path, lines: Iterator[str], undecodable: list[int]
) -> Iterator[ImportRow | RowProblem]:
    reader = csv.reader(lines)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise ValidationError(f"{path}: the file is empty") from None
    except csv.Error as exc:
        raise ValidationError(f"{path}: unreadable CSV header ({exc})") from exc
    if undecodable:
        raise ValidationError(f"{path}: the header row is not UTF-8 text (save the file as UTF-8)")
    if "chat_id" not in header:
        raise ValidationError(f"{path}: no chat_id column in the header row")
    for name in header:
        if name not in KNOWN_KEYS and name != "fields" and not FIELD_RE.match(name):
            raise ValidationError(
                f"{path}: invalid column name {name[:70]!r} "
                "(a custom field is 1-64 letters, digits or '_')"
            )
    width = len(header)
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield RowProblem(start, f"bad CSV ({exc})")
            continue
        bad = [n for n in undecodable if start <= n <= reader.line_num]
        if bad:
            del undecodable[:]
            yield _not_utf8(bad[0])
            continue
        if not cells or all(not c.strip() for c in cells):
            continue
        if len(cells) != width:
            yield RowProblem(start, f"{len(cells)} cells, the header has {width}")
            continue
        try:
            yield make_row(start, dict(zip(header, cells, strict=True)))
        except ValueError as exc:
            yield RowProblem(start, str(exc))


# -- writing ------------------------------------------------------------------------------

_subs = Subscriber.__table__
_tags_t = SubscriberTag.__table__


def _insert(db: Database, table: Any) -> Any:
    return (postgresql if db.dialect == "postgresql" else sqlite).insert(table)


def _event_source(source: str, file_name: str) -> str:
    text = f"{source}: {file_name}"
    return text if len(text) <= 80 else text[:79] + "…"


async def _write_batch(
    db: Database,
    bot_id: int,
    rows: list[ImportRow],
    *,
    source: str,
    file_name: str,
    now: datetime,
) -> tuple[int, int]:
    """One transaction: insert the new chats (with their consent events), fill in the known
    ones, add everyone's tags. Returns (added, merged)."""
    by_chat = {r.chat_id: r for r in rows}
    async with db.write() as conn:
        # Insert first: the chats it skips are the known ones, looked up next. (Looking up
        # first would scan: while an import fills an empty table, PostgreSQL's statistics
        # still say "empty" and the IN (...) lookup turned quadratic: 81 s for 100k rows.)
        ids: dict[int, int] = {}
        added = await _insert_new(db, conn, bot_id, rows, source=source, now=now, ids=ids)
        known = [c for c in by_chat if c not in ids]
        existing = {}
        if known:
            existing = {
                r.chat_id: r
                for r in await conn.execute(
                    select(
                        _subs.c.id,
                        _subs.c.chat_id,
                        _subs.c.first_name,
                        _subs.c.username,
                        _subs.c.language,
                        _subs.c.timezone,
                        _subs.c.fields,
                    ).where(_subs.c.bot_id == bot_id, _subs.c.chat_id.in_(known))
                )
            }
            ids.update((chat, int(r.id)) for chat, r in existing.items())
        await _events(conn, bot_id, added, source=source, file_name=file_name, now=now)
        await _fill(conn, by_chat, existing, now=now)
        tag_rows = [
            {"subscriber_id": ids[r.chat_id], "tag": t}
            for r in by_chat.values()
            if r.chat_id in ids
            for t in r.tags
        ]
        if tag_rows:
            await conn.execute(
                _insert(db, _tags_t).on_conflict_do_nothing(
                    index_elements=["subscriber_id", "tag"]
                ),
                tag_rows,
            )
            from botdesk import sequence_runner

            # A sequence's goal tag stops it here, in the transaction that writes the tag.
            await sequence_runner.stop_tagged(
                conn,
                bot_id=bot_id,
                tags={t for r in by_chat.values() for t in r.tags},
                subscribers=list({ids[c] for c, r in by_chat.items() if c in ids and r.tags}),
                now=now,
            )
    return len(added), len(existing)


async def _insert_new(
    db: Database,
    conn: AsyncConnection,
    bot_id: int,
    new: list[ImportRow],
    *,
    source: str,
    now: datetime,
    ids: dict[int, int],
) -> list[int]:
    if not new:
        return []
    # A chat already there (a subscriber, or a /start `serve` handled meanwhile) is skipped,
    # not overwritten: the caller fills it in instead.
    stmt = (
        _insert(db, _subs)
        .on_conflict_do_nothing(index_elements=["bot_id", "chat_id"])
        .returning(_subs.c.id, _subs.c.chat_id)
    )
    result = await conn.execute(
        stmt,
        [
            {
                "bot_id": bot_id,
                "chat_id": r.chat_id,
                "status": "active",
                "source": source,
                "first_name": r.first_name,
                "username": r.username,
                "language": r.language,
                "timezone": r.timezone,
                "is_group": r.chat_id < 0,
                "fields": r.fields or None,
                "joined_at": r.started_at or now,
                "updated_at": now,
            }
            for r in new
        ],
    )
    added = []
    for sid, chat in result.all():
        ids[int(chat)] = int(sid)
        added.append(int(chat))
    return added


async def _events(
    conn: AsyncConnection,
    bot_id: int,
    chats: list[int],
    *,
    source: str,
    file_name: str,
    now: datetime,
) -> None:
    if chats:
        label = _event_source(source, file_name)
        await conn.execute(
            insert(ConsentEvent),
            [
                {"bot_id": bot_id, "chat_id": c, "kind": IMPORTED, "source": label, "at": now}
                for c in chats
            ],
        )


async def _fill(
    conn: AsyncConnection,
    by_chat: dict[int, ImportRow],
    existing: dict[int, Any],
    *,
    now: datetime,
) -> None:
    """Fill empty names, language and time zone, add custom fields not yet set; never touch
    status."""
    params: list[dict[str, Any]] = []
    for chat, old in existing.items():
        r = by_chat[chat]
        fields = dict(old.fields or {})
        for k, v in r.fields.items():
            fields.setdefault(k, v)
        values = {
            "b_first_name": old.first_name or r.first_name,
            "b_username": old.username or r.username,
            "b_language": old.language or r.language,
            "b_timezone": old.timezone or r.timezone,
            "b_fields": fields or None,
        }
        before = (old.first_name, old.username, old.language, old.timezone, old.fields or None)
        if tuple(values.values()) != before:
            params.append({"b_id": old.id, "b_updated_at": now, **values})
    if params:
        cols = ("first_name", "username", "language", "timezone", "fields", "updated_at")
        await conn.execute(
            update(Subscriber)
            .where(Subscriber.id == bindparam("b_id"))
            .values({c: bindparam(f"b_{c}") for c in cols}),
            params,
        )


async def import_rows(
    db: Database,
    bot_id: int,
    records: Iterator[ImportRow | RowProblem],
    *,
    source: str,
    file_name: str,
    now: datetime,
    batch: int = DEFAULT_BATCH,
    keep_chats: bool = False,
) -> ImportReport:
    """Record every row of ``records`` as a subscriber of the bot (see the module docstring).

    ``records`` is read ``batch`` at a time on a worker thread (it reads the file), each batch
    written in one transaction; a problem row is counted and skipped. ``keep_chats`` keeps the
    imported chat ids in the report (for ``verify``)."""
    check_source(source)
    report = ImportReport(file=file_name, source=source)
    seen: dict[int, None] = {}  # every chat of the file, in file order
    it = iter(records)

    def take() -> list[ImportRow | RowProblem]:
        out: list[ImportRow | RowProblem] = []
        for item in it:
            out.append(item)
            if len(out) >= batch:
                break
        return out

    async def _one_batch(chunk: list[ImportRow | RowProblem]) -> None:
        rows: dict[int, ImportRow] = {}
        again = 0  # chats first seen in an earlier batch: in the database by now
        for item in chunk:
            if isinstance(item, RowProblem):
                report.problem(item)
                continue
            report.rows += 1
            if item.chat_id in rows:
                report.repeated += 1
                rows[item.chat_id].absorb(item)
                continue
            if item.chat_id in seen:
                report.repeated += 1
                again += 1
            seen[item.chat_id] = None
            rows[item.chat_id] = item
        if not rows:
            return
        added, merged = await _write_batch(
            db, bot_id, list(rows.values()), source=source, file_name=file_name, now=now
        )
        report.added += added
        report.merged += merged - again

    # The next batch is read (on its thread) while this one is written.
    ahead = asyncio.ensure_future(asyncio.to_thread(take))
    try:
        while chunk := await ahead:
            ahead = asyncio.ensure_future(asyncio.to_thread(take))
            await _one_batch(chunk)
    finally:
        if not ahead.done():
            await asyncio.wait([ahead])  # the thread cannot be cancelled: let it finish
        if not ahead.cancelled():
            ahead.exception()  # retrieved: an error already on its way out is the one raised
    if keep_chats:
        report.chats = list(seen)
    return report


# -- verifying ----------------------------------------------------------------------------

DEFAULT_VERIFY_IN_FLIGHT = 8
DEFAULT_VERIFY_BATCH = 500
MAX_RETRY_AFTER_ATTEMPTS = 5


@dataclass
class VerifyReport:
    checked: int = 0  # getChat answered (known or not)
    gone: int = 0  # Telegram does not know the chat: marked gone
    deactivated: int = 0
    unchecked: int = 0  # no answer to rely on (network, server error): left as they were

    def as_dict(self) -> dict[str, int]:
        return {
            "checked": self.checked,
            "gone": self.gone,
            "deactivated": self.deactivated,
            "unchecked": self.unchecked,
        }


async def _active(db: Database, bot_id: int, chats: list[int]) -> list[int]:
    async with db.read() as conn:
        found = await conn.execute(
            select(_subs.c.chat_id).where(
                _subs.c.bot_id == bot_id, _subs.c.status == "active", _subs.c.chat_id.in_(chats)
            )
        )
        active = {int(c) for (c,) in found}
    return [c for c in chats if c in active]


async def verify(
    db: Database,
    bot_id: int,
    chats: list[int],
    *,
    bot: Any,
    limiter: BotRateLimiter,
    now: Callable[[], datetime],
    in_flight: int = DEFAULT_VERIFY_IN_FLIGHT,
    batch: int = DEFAULT_VERIFY_BATCH,
    remember: Callable[[], Awaitable[None]] | None = None,
) -> VerifyReport:
    """getChat for every still-active chat of ``chats``, through ``limiter`` (the bot's
    ``BotRateLimiter``); a chat Telegram does not know is marked ``gone`` (a ``deactivated``
    answer, ``deactivated``), with its consent event, so no campaign tries it.

    ``bot`` is a ``Bot`` from ``telegram.gateway.make_bot``. Each getChat goes through the
    same ``pacing.Gate`` as campaign sends: a 429 pauses the limiter for the time Telegram
    asks (and lowers its learned rate, stored through ``remember``) and the chat is asked
    again."""
    from botdesk import subscribers
    from botdesk.delivery.pacing import Gate
    from botdesk.telegram.gateway import Outcome, get_chat

    report = VerifyReport()
    slots = asyncio.Semaphore(in_flight)
    gate = Gate(limiter, limiter.clock, remember=remember)

    async def check(chat: int) -> Outcome | None:
        async with slots:
            result = await gate.call(
                lambda: get_chat(bot, chat),
                chat_id=chat,
                is_group=chat < 0,
                attempts=MAX_RETRY_AFTER_ATTEMPTS,
            )
        return None if result.outcome is Outcome.RETRY_AFTER else result.outcome

    for i in range(0, len(chats), batch):
        todo = await _active(db, bot_id, chats[i : i + batch])
        outcomes = await asyncio.gather(*(check(c) for c in todo))
        marks: list[tuple[int, Literal["gone", "deactivated"]]] = []
        for chat, outcome in zip(todo, outcomes, strict=True):
            if outcome in (Outcome.SENT, Outcome.CHAT_GONE, Outcome.DEACTIVATED):
                report.checked += 1
            else:
                report.unchecked += 1
            if outcome is Outcome.CHAT_GONE:
                marks.append((chat, "gone"))
            elif outcome is Outcome.DEACTIVATED:
                marks.append((chat, "deactivated"))
        if not marks:
            continue
        async with db.write() as conn:
            at = now()
            for chat, status in marks:
                changed = await subscribers.mark_unreachable(
                    conn,
                    bot_id=bot_id,
                    chat_id=chat,
                    status=status,
                    reason="chat not found" if status == "gone" else "user is deactivated",
                    now=at,
                    via="import verify",
                )
                if changed and status == "gone":
                    report.gone += 1
                elif changed:
                    report.deactivated += 1
    return report


async def verify_chats(
    db: Database,
    bot_id: int,
    chats: list[int],
    *,
    token: str,
    api_base: str | None,
    rate: float,
    clock: Clock,
    connect_timeout: float,
    read_timeout: float,
    proxy: str | None = None,
    paid_rate: float | None = None,
    learned: tuple[float | None, float | None] = (None, None),
) -> VerifyReport:
    """``verify`` with a session and a rate limiter of its own for the bot, closed after.

    ``rate`` is the bot's configured rate, ``learned`` the (free, paid) rates learned before
    (``bots.learned_rate``, ``learned_paid_rate``): the limiter starts from them, probes up
    like a campaign's, and what it learns from 429s is stored on the bot's row again."""
    from botdesk import bots
    from botdesk.delivery.ratelimit import DEFAULT_PAID_RATE, BotRateLimiter
    from botdesk.telegram.gateway import bot_session

    limiter = BotRateLimiter(clock=clock, rate=rate, paid_rate=paid_rate or DEFAULT_PAID_RATE)
    limiter.restore_rates(*learned)
    stored = limiter.learned_rates()

    async def remember() -> None:
        nonlocal stored
        rates = limiter.learned_rates()
        if rates != stored:
            stored = rates
            await bots.store_learned_rates(db, bot_id, *rates)

    try:
        async with bot_session(
            token,
            api_base=api_base,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            proxy=proxy,
        ) as bot:
            return await verify(
                db, bot_id, chats, bot=bot, limiter=limiter, now=clock.now, remember=remember
            )
    finally:
        await remember()
        await limiter.aclose()
