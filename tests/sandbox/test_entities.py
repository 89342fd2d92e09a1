"""Property tests for the entity parsers."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from botdesk.sandbox.entities import (
    EntityParseError,
    escape_html,
    escape_markdown_v2,
    parse,
    parse_html,
    parse_markdown_v2,
    utf16_len,
)

MARKUP_HEAVY = st.text(alphabet=st.sampled_from(list("ab <>/&;*_~`|[]()\\!#.\n\U0001f600é")))


@settings(max_examples=300, deadline=None)
@given(
    text=st.one_of(st.text(), MARKUP_HEAVY),
    mode=st.sampled_from(["HTML", "MarkdownV2", "Markdown"]),
)
def test_never_crashes(text: str, mode: str) -> None:
    try:
        visible, entities = parse(text, mode)
    except EntityParseError as exc:
        assert str(exc)
        return
    size = utf16_len(visible)
    for e in entities:
        assert 0 <= e["offset"] and e["length"] > 0 and e["offset"] + e["length"] <= size


@settings(max_examples=200, deadline=None)
@given(text=st.text())
def test_escaped_text_round_trips(text: str) -> None:
    assert parse_html(escape_html(text)) == (text, [])
    assert parse_markdown_v2(escape_markdown_v2(text)) == (text, [])


@settings(max_examples=200, deadline=None)
@given(text=st.text(min_size=1))
def test_wrapped_text_becomes_one_entity(text: str) -> None:
    visible, entities = parse_markdown_v2("*" + escape_markdown_v2(text) + "*")
    assert visible == text
    assert entities == [{"type": "bold", "offset": 0, "length": utf16_len(text)}]
    visible, entities = parse_html("<i>" + escape_html(text) + "</i>")
    assert visible == text and entities[0]["length"] == utf16_len(text)


def test_utf16_offsets_and_byte_offsets_in_errors() -> None:
    _, entities = parse_html("\U0001f600<b>x</b>")
    assert entities == [{"type": "bold", "offset": 2, "length": 1}]
    try:
        parse_html("é<zz>")
    except EntityParseError as exc:
        assert str(exc) == 'Unsupported start tag "zz" at byte offset 2'
    else:
        raise AssertionError("expected a parse error")
