"""The segment language: parsing an expression and turning it into a SQL filter.

Owns the grammar, its validation (one clear message with the 0-based position of the
offending token), the tag-name rule, and ``audience_filter``, the one definition of "who a
segment selects for a bot" that counting, listing, tagging and campaign snapshots share.
Pure: no I/O; ``to_sql`` builds a dialect-neutral Core expression over ``subscribers``.

Grammar (keywords and field names are case-insensitive)::

    expr  := or
    or    := and ('or' and)*
    and   := unary (['and'] unary)*        -- juxtaposition means 'and'
    unary := 'not' unary | '(' expr ')' | term
    term  := NAME OP VALUE                  -- written without spaces: tag:vip, joined>30d
    VALUE := bare word (no space, parens or quote) | "quoted \\" value"

See docs/segments.md for the fields and their meaning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TypeAlias

from sqlalchemy import String, and_, cast, exists, false, func, not_, or_, select, true
from sqlalchemy.sql.elements import ColumnElement

from botdesk.errors import SegmentSyntaxError, ValidationError
from botdesk.store.models import SUBSCRIBER_STATUSES, Subscriber, SubscriberTag
from botdesk.timezones import is_zone

MAX_EXPRESSION_LENGTH = 4000
# Deep nesting is never useful in a segment and would exhaust Python's recursion limit.
MAX_DEPTH = 64

TAG_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_LANG_RE = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")
_FIELD_NAME_RE = re.compile(r"^[A-Za-z0-9_]{1,64}$")
_CHAT_RE = re.compile(r"^-?\d{1,20}$")
_AGE_RE = re.compile(r"^(\d{1,6})([mhdw])$")
_OPS = (">=", "<=", ">", "<", "=", ":")
_KEYWORDS = ("and", "or", "not")
_DATE_OPS = (">", ">=", "<", "<=", "=")
_AGE_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

STATUS_VALUES = (*SUBSCRIBER_STATUSES, "any")
EQ_FIELDS = ("status", "tag", "source", "lang", "tz", "chat")
DATE_FIELDS = {"joined": "joined_at", "last_seen": "last_seen_at", "left": "left_at"}

_subs = Subscriber.__table__.c
_tags = SubscriberTag.__table__.c


def check_tag(tag: str) -> str:
    """Validate a tag name (shared by the language and the tag writers)."""
    if not TAG_RE.match(tag):
        raise ValidationError(f"invalid tag {tag!r}: use 1-64 letters, digits, '_' or '-'")
    return tag


# -- syntax tree ------------------------------------------------------------------------


@dataclass(frozen=True)
class Status:
    value: str  # one of STATUS_VALUES

    def __str__(self) -> str:
        return f"status:{self.value}"


@dataclass(frozen=True)
class Tag:
    value: str

    def __str__(self) -> str:
        return f"tag:{self.value}"


@dataclass(frozen=True)
class Source:
    value: str | None  # None: no /start payload

    def __str__(self) -> str:
        return "source:none" if self.value is None else f"source:{_quote(self.value)}"


@dataclass(frozen=True)
class Lang:
    value: str | None  # lower-case code; None: language unknown

    def __str__(self) -> str:
        return f"lang:{self.value or 'none'}"


@dataclass(frozen=True)
class Zone:
    value: str | None  # an IANA name; None: time zone unknown

    def __str__(self) -> str:
        return "tz:none" if self.value is None else f"tz:{_quote(self.value)}"


@dataclass(frozen=True)
class Chat:
    value: int

    def __str__(self) -> str:
        return f"chat:{self.value}"


@dataclass(frozen=True)
class Age:
    """A relative time: ``now - amount unit``."""

    amount: int
    unit: str  # key of _AGE_UNITS

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"

    def resolve(self, now: datetime) -> datetime:
        return now - timedelta(**{_AGE_UNITS[self.unit]: self.amount})


@dataclass(frozen=True)
class DateCmp:
    field: str  # key of DATE_FIELDS
    op: str  # one of _DATE_OPS, or ":" with value None (the date is not set)
    value: date | datetime | Age | None

    def __str__(self) -> str:
        if self.value is None:
            return f"{self.field}:none"
        if isinstance(self.value, Age):
            text = str(self.value)
        elif isinstance(self.value, datetime):
            text = self.value.isoformat().replace("+00:00", "Z")
        else:
            text = self.value.isoformat()
        return f"{self.field}{self.op}{text}"


@dataclass(frozen=True)
class Field:
    name: str
    value: str

    def __str__(self) -> str:
        return f"field.{self.name}:{_quote(self.value)}"


@dataclass(frozen=True)
class Not:
    item: Node

    def __str__(self) -> str:
        return f"not {_wrap(self.item)}"


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]

    def __str__(self) -> str:
        return " and ".join(_wrap(i) for i in self.items)


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]

    def __str__(self) -> str:
        return " or ".join(_wrap(i) for i in self.items)


Term: TypeAlias = Status | Tag | Source | Lang | Zone | Chat | DateCmp | Field
Node: TypeAlias = Term | Not | And | Or


def _wrap(node: Node) -> str:
    return f"({node})" if isinstance(node, And | Or) else str(node)


def _quote(value: str) -> str:
    if value and re.fullmatch(r"[^\s()\"\\]+", value) and value.lower() != "none":
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class Segment:
    """A parsed, validated segment expression."""

    root: Node
    text: str

    def __str__(self) -> str:
        """The canonical form: parses back to an equal tree."""
        return str(self.root)

    @property
    def mentions_status(self) -> bool:
        return _mentions_status(self.root)

    def to_sql(self, *, now: datetime) -> ColumnElement[bool]:
        """A boolean expression over the ``subscribers`` table (no bot or status filter)."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        return _sql(self.root, now.astimezone(UTC))


def _mentions_status(node: Node) -> bool:
    if isinstance(node, Status):
        return True
    if isinstance(node, Not):
        return _mentions_status(node.item)
    if isinstance(node, And | Or):
        return any(_mentions_status(i) for i in node.items)
    return False


# -- SQL --------------------------------------------------------------------------------


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _date_sql(cmp: DateCmp, now: datetime) -> ColumnElement[bool]:
    col = _subs[DATE_FIELDS[cmp.field]]
    value = cmp.value
    if value is None:
        return col.is_(None)
    if isinstance(value, Age):
        at = value.resolve(now)
    elif isinstance(value, datetime):
        at = value
    else:
        # A bare date is the whole UTC day: '=' is within it, '>' after it, '<=' up to its end.
        start = datetime(value.year, value.month, value.day, tzinfo=UTC)
        end = start + timedelta(days=1)
        if cmp.op == "=":
            return and_(col >= start, col < end)
        if cmp.op == ">":
            return col >= end
        if cmp.op == "<=":
            return col < end
        at = start
    return _cmp(col, cmp.op, at)


def _cmp(col: ColumnElement[datetime], op: str, at: datetime) -> ColumnElement[bool]:
    if op == ">":
        return col > at
    if op == ">=":
        return col >= at
    if op == "<":
        return col < at
    if op == "<=":
        return col <= at
    return col == at


def _sql(node: Node, now: datetime) -> ColumnElement[bool]:
    if isinstance(node, And):
        return and_(*(_sql(i, now) for i in node.items))
    if isinstance(node, Or):
        return or_(*(_sql(i, now) for i in node.items))
    if isinstance(node, Not):
        inner = _sql(node.item, now)
        # SQL's NOT over NULL is NULL; coalesce so 'not X' is exactly the complement of X.
        return not_(func.coalesce(inner, false()))
    if isinstance(node, Status):
        return true() if node.value == "any" else _subs.status == node.value
    if isinstance(node, Tag):
        return exists(
            select(_tags.subscriber_id)
            .where(_tags.subscriber_id == _subs.id, _tags.tag == node.value)
            .correlate(Subscriber.__table__)
        )
    if isinstance(node, Source):
        return _subs.source.is_(None) if node.value is None else _subs.source == node.value
    if isinstance(node, Lang):
        if node.value is None:
            return _subs.language.is_(None)
        lang = func.lower(_subs.language)
        return or_(
            lang == node.value,
            lang.like(_like_escape(node.value) + "-%", escape="\\"),
            lang.like(_like_escape(node.value) + "\\_%", escape="\\"),
        )
    if isinstance(node, Zone):
        return _subs.timezone.is_(None) if node.value is None else _subs.timezone == node.value
    if isinstance(node, Chat):
        return _subs.chat_id == node.value
    if isinstance(node, DateCmp):
        return _date_sql(node, now)
    # Field: compared as text so that SQLite's JSON_EXTRACT (typed) and PG's ->> agree
    # on strings and integers.
    return cast(_subs.fields[node.name].as_string(), String) == node.value


def audience_filter(
    bot_id: int, segment: str | Segment | None, *, now: datetime
) -> ColumnElement[bool]:
    """Who ``segment`` selects among ``bot_id``'s subscribers.

    The bot filter AND the segment AND ``status = 'active'`` unless the segment mentions a
    status. ``None`` or a blank string means every active subscriber.
    """
    clauses: list[ColumnElement[bool]] = [_subs.bot_id == bot_id]
    seg: Segment | None
    if isinstance(segment, Segment):
        seg = segment
    elif segment is None or not segment.strip():
        seg = None
    else:
        seg = parse_segment(segment)
    if seg is not None:
        clauses.append(seg.to_sql(now=now))
    if seg is None or not seg.mentions_status:
        clauses.append(_subs.status == "active")
    return and_(*clauses)


# -- lexer ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Tok:
    kind: str  # "(" ")" "kw" "term" "end"
    pos: int
    text: str = ""  # keyword (lower-case) or field name as written
    op: str = ""
    value: str = ""
    quoted: bool = False
    value_pos: int = 0


def _lex(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(text)

    def fail(message: str, pos: int) -> SegmentSyntaxError:
        return SegmentSyntaxError(message, expression=text, position=pos)

    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            toks.append(_Tok("end", n))
            return toks
        c = text[i]
        if c in "()":
            toks.append(_Tok(c, i))
            i += 1
            continue
        if c == '"':
            raise fail("expected a term like tag:vip before a quoted value", i)
        m = _NAME_RE.match(text, i)
        if m is None:
            raise fail(f"unexpected character {c!r}: expected a term like tag:vip", i)
        name, start, i = m.group(), i, m.end()
        op = next((o for o in _OPS if text.startswith(o, i)), "")
        if not op:
            if name.lower() in _KEYWORDS:
                toks.append(_Tok("kw", start, text=name.lower()))
                continue
            key = name.lower()
            if key in DATE_FIELDS:
                raise fail(f"expected a comparison (> >= < <= =) right after '{name}'", i)
            if key in EQ_FIELDS or key.startswith("field."):
                raise fail(f"expected ':' right after '{name}'", i)
            raise fail(f"expected a term like tag:vip, found '{name}'", start)
        i += len(op)
        value_pos = i
        if i < n and text[i] == '"':
            i += 1
            chars: list[str] = []
            while True:
                if i >= n:
                    raise fail("unterminated quoted value", value_pos)
                if text[i] == "\\" and i + 1 < n:
                    chars.append(text[i + 1])
                    i += 2
                    continue
                if text[i] == '"':
                    i += 1
                    break
                chars.append(text[i])
                i += 1
            value, quoted = "".join(chars), True
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in '()"':
                j += 1
            value, quoted, i = text[i:j], False, j
            if not value:
                raise fail(f"expected a value after '{name}{op}'", value_pos)
        toks.append(_Tok("term", start, name, op, value, quoted, value_pos))


# -- parser -----------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _lex(text)
        self.i = 0
        self.depth = 0

    def fail(self, message: str, pos: int) -> SegmentSyntaxError:
        return SegmentSyntaxError(message, expression=self.text, position=pos)

    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def is_kw(self, word: str) -> bool:
        return self.tok.kind == "kw" and self.tok.text == word

    def parse(self) -> Node:
        if self.tok.kind == "end":
            raise self.fail("empty segment: expected a term like tag:vip", 0)
        node = self.or_()
        if self.tok.kind == ")":
            raise self.fail("unmatched ')'", self.tok.pos)
        if self.tok.kind != "end":  # pragma: no cover - and_() consumes every other token
            raise self.fail("expected 'and', 'or' or the end", self.tok.pos)
        return node

    def or_(self) -> Node:
        items = [self.and_()]
        while self.is_kw("or"):
            self.i += 1
            items.append(self.and_())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_(self) -> Node:
        items = [self.unary()]
        while True:
            if self.is_kw("and"):
                self.i += 1
            elif not (self.tok.kind in ("term", "(") or self.is_kw("not")):
                break
            items.append(self.unary())
        return items[0] if len(items) == 1 else And(tuple(items))

    def unary(self) -> Node:
        tok = self.tok
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(f"expression nested deeper than {MAX_DEPTH} levels", tok.pos)
        try:
            if self.is_kw("not"):
                self.i += 1
                return Not(self.unary())
            if tok.kind == "(":
                self.i += 1
                node = self.or_()
                if self.tok.kind != ")":
                    raise self.fail(f"expected ')' to close '(' at {tok.pos}", self.tok.pos)
                self.i += 1
                return node
            if tok.kind == "term":
                self.i += 1
                return self.term(tok)
            if tok.kind == "end":
                prev = self.toks[self.i - 1] if self.i else None
                after = f" after '{prev.text or prev.kind}'" if prev and prev.kind != "term" else ""
                raise self.fail(f"expected a term{after}, found the end", tok.pos)
            if tok.kind == ")":
                raise self.fail("expected a term before ')'", tok.pos)
            raise self.fail(f"expected a term, found '{tok.text}'", tok.pos)
        finally:
            self.depth -= 1

    def term(self, tok: _Tok) -> Term:
        key, op, value = tok.text.lower(), tok.op, tok.value
        if key in DATE_FIELDS:
            return self.date_term(tok, key)
        if op != ":":
            raise self.fail(f"'{tok.text}' takes ':', not '{op}'", tok.pos + len(tok.text))
        is_none = value.lower() == "none" and not tok.quoted
        if key == "status":
            if value.lower() not in STATUS_VALUES:
                raise self.fail(
                    f"unknown status '{value}' (use {', '.join(STATUS_VALUES)})", tok.value_pos
                )
            return Status(value.lower())
        if key == "tag":
            if not TAG_RE.match(value):
                raise self.fail(
                    f"invalid tag '{value}': use 1-64 letters, digits, '_' or '-'", tok.value_pos
                )
            return Tag(value)
        if key == "source":
            if len(value) > 80:
                raise self.fail("source longer than 80 characters", tok.value_pos)
            return Source(None if is_none else value)
        if key == "lang":
            if is_none:
                return Lang(None)
            if not _LANG_RE.match(value):
                raise self.fail(f"invalid language code '{value}'", tok.value_pos)
            return Lang(value.lower().replace("_", "-"))
        if key == "tz":
            if is_none:
                return Zone(None)
            if not is_zone(value):
                raise self.fail(
                    f"unknown time zone '{value}' (an IANA name such as Europe/Berlin)",
                    tok.value_pos,
                )
            return Zone(value)
        if key == "chat":
            if not _CHAT_RE.match(value):
                raise self.fail(f"invalid chat id '{value}'", tok.value_pos)
            return Chat(int(value))
        if key.startswith("field."):
            name = tok.text[len("field.") :]
            if not _FIELD_NAME_RE.match(name):
                raise self.fail(f"invalid custom field name '{name}'", tok.pos + len("field."))
            return Field(name, value)
        raise self.fail(f"unknown field '{tok.text}'", tok.pos)

    def date_term(self, tok: _Tok, key: str) -> DateCmp:
        op, value = tok.op, tok.value
        if op == ":":
            if value.lower() == "none" and not tok.quoted:
                return DateCmp(key, ":", None)
            raise self.fail(
                f"'{tok.text}' takes a comparison (> >= < <= =) or ':none'",
                tok.pos + len(tok.text),
            )
        m = _AGE_RE.match(value.lower())
        if m:
            if op == "=":
                raise self.fail(
                    f"'=' needs a date, not a relative age like '{value}'", tok.value_pos
                )
            return DateCmp(key, op, Age(int(m.group(1)), m.group(2)))
        return DateCmp(key, op, self.when(value, tok.value_pos))

    def when(self, value: str, pos: int) -> date | datetime:
        text = value[:-1] + "+00:00" if value[-1:] in ("Z", "z") else value
        try:
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
                return date.fromisoformat(text)
            if not re.fullmatch(
                r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?"
                r"([+-]\d{2}:\d{2})?",
                text,
            ):
                raise ValueError(value)
            at = datetime.fromisoformat(text)
        except ValueError:
            raise self.fail(
                f"invalid date '{value}' (use YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS][Z] "
                "or an age like 30d, 12h)",
                pos,
            ) from None
        return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def parse_segment(expr: str) -> Segment:
    """Parse and validate ``expr``; raises ``SegmentSyntaxError`` with the position."""
    if len(expr) > MAX_EXPRESSION_LENGTH:
        raise SegmentSyntaxError(
            f"expression longer than {MAX_EXPRESSION_LENGTH} characters",
            expression=expr,
            position=MAX_EXPRESSION_LENGTH,
        )
    return Segment(_Parser(expr).parse(), expr)
