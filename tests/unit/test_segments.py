"""segments: the language's grammar, its error messages and positions, and its SQL meaning.

The SQL meaning is checked against an independent Python reference evaluator on an in-memory
SQLite database (PostgreSQL is covered by tests/integration/test_audience.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, insert, select

from botdesk.errors import SegmentSyntaxError, ValidationError
from botdesk.segments import (
    Age,
    And,
    Chat,
    DateCmp,
    Field,
    Lang,
    Node,
    Not,
    Or,
    Segment,
    Source,
    Status,
    Tag,
    Zone,
    audience_filter,
    check_tag,
    parse_segment,
)
from botdesk.store.models import TABLES, Bot, Subscriber, SubscriberTag

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)


# -- grammar ----------------------------------------------------------------------------


def test_example_from_the_issue() -> None:
    seg = parse_segment("tag:vip and lang:en and joined>2026-01-01")
    assert seg.root == And((Tag("vip"), Lang("en"), DateCmp("joined", ">", date(2026, 1, 1))))
    assert not seg.mentions_status


def test_or_binds_looser_than_and_and_juxtaposition_is_and() -> None:
    seg = parse_segment("tag:a tag:b or not tag:c")
    assert seg.root == Or((And((Tag("a"), Tag("b"))), Not(Tag("c"))))
    assert str(seg) == "(tag:a and tag:b) or not tag:c"


def test_parentheses_and_case_insensitive_keywords() -> None:
    seg = parse_segment("NOT (Tag:a OR STATUS:Blocked) And lang:pt-BR")
    assert seg.root == And((Not(Or((Tag("a"), Status("blocked")))), Lang("pt-br")))
    assert seg.mentions_status


@pytest.mark.parametrize(
    ("text", "node"),
    [
        ("status:any", Status("any")),
        ("source:none", Source(None)),
        ('source:"none"', Source("none")),
        ("source:invalid", Source("invalid")),
        ('source:"spring sale"', Source("spring sale")),
        ('source:"a \\"b\\""', Source('a "b"')),
        ("lang:none", Lang(None)),
        ("tz:Europe/Berlin", Zone("Europe/Berlin")),
        ("tz:none", Zone(None)),
        ("chat:-100123", Chat(-100123)),
        ("joined>=30d", DateCmp("joined", ">=", Age(30, "d"))),
        ("last_seen<12h", DateCmp("last_seen", "<", Age(12, "h"))),
        ("left:none", DateCmp("left", ":", None)),
        (
            "left<2026-02-01T10:30Z",
            DateCmp("left", "<", datetime(2026, 2, 1, 10, 30, tzinfo=UTC)),
        ),
        (
            "joined<=2026-02-01T10:30:00+02:00",
            DateCmp("joined", "<=", datetime(2026, 2, 1, 8, 30, tzinfo=UTC)),
        ),
        ("joined=2026-02-01", DateCmp("joined", "=", date(2026, 2, 1))),
        ("field.plan:pro", Field("plan", "pro")),
        ('field.plan:"pro plan"', Field("plan", "pro plan")),
    ],
)
def test_terms(text: str, node: Node) -> None:
    seg = parse_segment(text)
    assert seg.root == node
    assert parse_segment(str(seg)).root == node  # the canonical form parses back


@pytest.mark.parametrize(
    ("text", "position", "message"),
    [
        ("tag:", 4, "expected a value after 'tag:'"),
        ("tag:vip and tag: lang:en", 16, "expected a value after 'tag:'"),
        ("color:red", 0, "unknown field 'color'"),
        ("tag:a and color:red", 10, "unknown field 'color'"),
        ("status:actv", 7, "unknown status 'actv'"),
        ("joined>2026-13-01", 7, "invalid date '2026-13-01'"),
        ("joined>yesterday", 7, "invalid date 'yesterday'"),
        ("joined > 2026-01-01", 6, "expected a comparison"),
        ("joined=30d", 7, "'=' needs a date"),
        ("joined:2026-01-01", 6, "takes a comparison"),
        ("tag>3", 3, "'tag' takes ':', not '>'"),
        ("tag", 3, "expected ':' right after 'tag'"),
        ("vip", 0, "expected a term like tag:vip, found 'vip'"),
        ("tag:vip and", 11, "expected a term after 'and', found the end"),
        ("tag:a or or tag:b", 9, "expected a term, found 'or'"),
        ("(tag:a", 6, "expected ')' to close '(' at 0"),
        ("tag:a)", 5, "unmatched ')'"),
        ("()", 1, "expected a term before ')'"),
        ("", 0, "empty segment"),
        ('"vip"', 0, "before a quoted value"),
        ('source:"open', 7, "unterminated quoted value"),
        ("tag:a&b", 4, "invalid tag 'a&b'"),
        ("lang:e", 5, "invalid language code 'e'"),
        ("chat:12a", 5, "invalid chat id '12a'"),
        ("tz:Mars/Olympus", 3, "unknown time zone 'Mars/Olympus'"),
        ("field.:x", 6, "invalid custom field name ''"),
        ("tag:a ; tag:b", 6, "unexpected character ';'"),
    ],
)
def test_syntax_errors_name_the_problem_and_its_position(
    text: str, position: int, message: str
) -> None:
    with pytest.raises(SegmentSyntaxError) as info:
        parse_segment(text)
    err = info.value
    assert err.position == position, str(err)
    assert message in str(err)
    assert str(err).startswith(f"segment syntax error at position {position}: ")
    assert "\n" not in str(err)
    assert err.expression == text
    assert isinstance(err, ValidationError)


def test_deep_nesting_is_a_syntax_error_not_a_crash() -> None:
    with pytest.raises(SegmentSyntaxError, match="nested deeper"):
        parse_segment("(" * 1000 + "tag:a" + ")" * 1000)
    with pytest.raises(SegmentSyntaxError, match="nested deeper"):
        parse_segment("not " * 200 + "tag:a")
    assert parse_segment("not " * 20 + "tag:a").root is not None


def test_overlong_expression_is_refused() -> None:
    with pytest.raises(SegmentSyntaxError, match="longer than"):
        parse_segment(" or ".join(["tag:a"] * 2000))


def test_check_tag() -> None:
    assert check_tag("vip_2-x") == "vip_2-x"
    for bad in ("", "a b", "x" * 65, "é"):
        with pytest.raises(ValidationError):
            check_tag(bad)


def test_to_sql_refuses_a_naive_now() -> None:
    with pytest.raises(ValueError):
        parse_segment("joined>1d").to_sql(now=datetime(2026, 1, 1))


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from(list('tag:vip()"\\ ornadt.-1>=<xsu')), max_size=40))
def test_parser_only_raises_syntax_errors_on_segment_like_text(text: str) -> None:
    try:
        seg = parse_segment(text)
    except SegmentSyntaxError as exc:
        assert 0 <= exc.position <= len(text)
        assert "\n" not in str(exc)
    else:
        assert parse_segment(str(seg)).root == seg.root


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_parser_only_raises_syntax_errors_on_arbitrary_text(text: str) -> None:
    try:
        parse_segment(text)
    except SegmentSyntaxError as exc:
        assert 0 <= exc.position <= len(text)


# -- meaning: SQL against an independent reference evaluator ----------------------------

TAGS = ("vip", "beta", "churn")
LANGS = (None, "en", "en-US", "EN-gb", "en_AU", "de", "pt-br", "eng")
SOURCES = (None, "invalid", "ad1", "ad2")
STATUSES = ("active", "active", "unsubscribed", "blocked", "deactivated", "gone")
DATES = (
    None,
    datetime(2026, 1, 1, 0, 0, tzinfo=UTC),
    datetime(2026, 1, 1, 23, 59, tzinfo=UTC),
    datetime(2026, 1, 2, 0, 0, tzinfo=UTC),
    NOW - timedelta(hours=11),
    NOW - timedelta(days=29),
    NOW - timedelta(days=31),
)
FIELDS = (None, {"plan": "pro"}, {"plan": "free", "seats": 5}, {"seats": 12})


def _rows() -> list[dict[str, Any]]:
    rows = []
    for i in range(60):
        rows.append(
            {
                "id": i + 1,
                "bot_id": 1 if i < 50 else 2,
                "chat_id": 1000 + i if i % 7 else -(1000 + i),
                "status": STATUSES[i % len(STATUSES)],
                "source": SOURCES[i % len(SOURCES)],
                "language": LANGS[(i * 3) % len(LANGS)],
                "fields": FIELDS[(i * 5) % len(FIELDS)],
                "joined_at": DATES[1 + i % (len(DATES) - 1)],
                "last_seen_at": DATES[(i * 5) % len(DATES)],
                "left_at": DATES[(i * 3) % len(DATES)],
                "updated_at": NOW,
            }
        )
    return rows


def _tags_of(row_id: int) -> set[str]:
    return {t for k, t in enumerate(TAGS) if (row_id >> k) & 1}


def _when(value: date | datetime | Age, now: datetime) -> datetime | date:
    return value.resolve(now) if isinstance(value, Age) else value


def _eval(node: Node, row: dict[str, Any]) -> bool:
    """What the documentation says each term means, written independently of to_sql."""
    if isinstance(node, And):
        return all(_eval(i, row) for i in node.items)
    if isinstance(node, Or):
        return any(_eval(i, row) for i in node.items)
    if isinstance(node, Not):
        return not _eval(node.item, row)
    if isinstance(node, Status):
        return node.value == "any" or row["status"] == node.value
    if isinstance(node, Tag):
        return node.value in _tags_of(row["id"])
    if isinstance(node, Source):
        return bool(row["source"] == node.value)
    if isinstance(node, Lang):
        lang: str | None = row["language"]
        if node.value is None or lang is None:
            return lang is node.value
        lang = lang.lower()
        return lang == node.value or lang.startswith((node.value + "-", node.value + "_"))
    if isinstance(node, Chat):
        return bool(row["chat_id"] == node.value)
    if isinstance(node, Field):
        fields = row["fields"] or {}
        return node.name in fields and str(fields[node.name]) == node.value
    assert isinstance(node, DateCmp)
    col = row[{"joined": "joined_at", "last_seen": "last_seen_at", "left": "left_at"}[node.field]]
    if node.value is None:
        return col is None
    if col is None:
        return False
    target = _when(node.value, NOW)
    got: datetime | date = col if isinstance(target, datetime) else col.date()
    return {
        ">": got > target,
        ">=": got >= target,
        "<": got < target,
        "<=": got <= target,
        "=": got == target,
    }[node.op]


@pytest.fixture(scope="module")
def sample_db() -> Iterator[Engine]:
    engine = create_engine("sqlite://")
    TABLES.create_all(engine)
    rows = _rows()
    with engine.begin() as conn:
        for b in (1, 2):
            conn.execute(
                insert(Bot).values(
                    id=b, name=f"b{b}", telegram_id=b, username=f"b{b}", token_secret="x"
                )
            )
        conn.execute(insert(Subscriber), rows)
        tag_rows = [{"subscriber_id": r["id"], "tag": t} for r in rows for t in _tags_of(r["id"])]
        conn.execute(insert(SubscriberTag), tag_rows)
    yield engine
    engine.dispose()


def _selected(engine: Engine, where: Any) -> set[int]:
    subs = Subscriber.__table__
    with engine.connect() as conn:
        return {r[0] for r in conn.execute(select(subs.c.id).where(where))}


def _terms() -> st.SearchStrategy[Node]:
    dates = st.sampled_from(
        [date(2026, 1, 1), date(2026, 1, 2), datetime(2026, 1, 1, 23, 59, tzinfo=UTC)]
    )
    ages = st.builds(Age, st.sampled_from([11, 12, 30]), st.sampled_from(["h", "d"]))
    date_cmp = st.one_of(
        st.builds(
            DateCmp,
            st.sampled_from(["joined", "last_seen", "left"]),
            st.sampled_from([">", ">=", "<", "<=", "="]),
            dates,
        ),
        st.builds(
            DateCmp,
            st.sampled_from(["joined", "last_seen", "left"]),
            st.sampled_from([">", ">=", "<", "<="]),
            ages,
        ),
        st.builds(
            DateCmp, st.sampled_from(["joined", "last_seen", "left"]), st.just(":"), st.none()
        ),
    )
    return st.one_of(
        st.builds(Status, st.sampled_from(["active", "blocked", "gone", "any"])),
        st.builds(Tag, st.sampled_from([*TAGS, "nobody"])),
        st.builds(Source, st.sampled_from(SOURCES)),
        st.builds(Lang, st.sampled_from([None, "en", "en-us", "de", "pt"])),
        st.builds(Chat, st.sampled_from([1003, -1007, 5])),
        st.builds(Field, st.sampled_from(["plan", "seats"]), st.sampled_from(["pro", "5", "12"])),
        date_cmp,
    )


def _trees() -> st.SearchStrategy[Node]:
    return st.recursive(
        _terms(),
        lambda kids: st.one_of(
            st.builds(Not, kids),
            st.builds(And, st.lists(kids, min_size=2, max_size=3).map(tuple)),
            st.builds(Or, st.lists(kids, min_size=2, max_size=3).map(tuple)),
        ),
        max_leaves=6,
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_trees())
def test_sql_matches_the_reference_and_not_is_the_complement(sample_db: Engine, tree: Node) -> None:
    rows = _rows()
    seg = parse_segment(str(Segment(tree, "")))  # through the text form, as users write it
    assert seg.root == tree
    chosen = _selected(sample_db, seg.to_sql(now=NOW))
    assert chosen == {r["id"] for r in rows if _eval(tree, r)}
    complement = _selected(sample_db, parse_segment(f"not ({seg})").to_sql(now=NOW))
    assert chosen.isdisjoint(complement)
    assert chosen | complement == {r["id"] for r in rows}


def test_audience_filter_adds_the_bot_and_active_status(sample_db: Engine) -> None:
    rows = _rows()
    active_bot1 = {r["id"] for r in rows if r["bot_id"] == 1 and r["status"] == "active"}
    assert _selected(sample_db, audience_filter(1, None, now=NOW)) == active_bot1
    assert _selected(sample_db, audience_filter(1, "  ", now=NOW)) == active_bot1
    vip = _selected(sample_db, audience_filter(1, "tag:vip", now=NOW))
    assert vip == {i for i in active_bot1 if "vip" in _tags_of(i)}
    assert vip  # the sample is large enough for every filter to select something


def test_audience_filter_drops_the_status_rule_when_the_segment_names_one(
    sample_db: Engine,
) -> None:
    rows = _rows()
    bot1 = [r for r in rows if r["bot_id"] == 1]
    unsub = _selected(sample_db, audience_filter(1, "status:unsubscribed", now=NOW))
    assert unsub == {r["id"] for r in bot1 if r["status"] == "unsubscribed"} != set()
    everyone = _selected(sample_db, audience_filter(1, parse_segment("status:any"), now=NOW))
    assert everyone == {r["id"] for r in bot1}
    not_blocked = _selected(sample_db, audience_filter(1, "not status:blocked", now=NOW))
    assert not_blocked == {r["id"] for r in bot1 if r["status"] != "blocked"}


def test_lang_is_a_subtag_prefix_match(sample_db: Engine) -> None:
    rows = {r["id"]: r for r in _rows()}
    got = {
        rows[i]["language"] for i in _selected(sample_db, parse_segment("lang:en").to_sql(now=NOW))
    }
    assert got == {"en", "en-US", "EN-gb", "en_AU"}  # not "eng"


def test_bare_dates_cover_the_whole_utc_day(sample_db: Engine) -> None:
    rows = {r["id"]: r for r in _rows()}

    def joined(expr: str) -> set[datetime]:
        ids = _selected(sample_db, parse_segment(expr).to_sql(now=NOW))
        return {rows[i]["joined_at"] for i in ids}

    jan1 = {datetime(2026, 1, 1, 0, 0, tzinfo=UTC), datetime(2026, 1, 1, 23, 59, tzinfo=UTC)}
    assert joined("joined=2026-01-01") == jan1
    assert joined("joined<=2026-01-01") == jan1
    assert datetime(2026, 1, 2, tzinfo=UTC) in joined("joined>2026-01-01")
    assert not jan1 & joined("joined>2026-01-01")
    assert joined("joined>30d") == {NOW - timedelta(hours=11), NOW - timedelta(days=29)}
