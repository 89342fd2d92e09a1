"""Differential check: templates' markup parser agrees with the sandbox's Bot API parser.

Both model Telegram's rules; a disagreement means a campaign could pass validation and then
fail at send time (or be refused although Telegram would take it). Known, deliberate
difference: the expandable blockquote of MarkdownV2 (``**>...||``), which Telegram documents
and the sandbox does not implement, is left out of the generated texts.
"""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from botdesk.delivery.templates import ParseMode, visible_text
from botdesk.errors import TemplateError

sandbox_entities = pytest.importorskip("botdesk.sandbox.entities")

HTML_TOKENS = [
    *"ab <>&/\n\"='é😀",
    "<b>",
    "</b>",
    "<i>",
    "</i>",
    '<a href="x">',
    "</a>",
    "&amp;",
    "&lt;",
    "&#65;",
    "&#x1F600;",
    "&foo;",
    "<code>",
    "</code>",
    "<pre>",
    "</pre>",
    '<span class="tg-spoiler">',
    "</span>",
    "<tg-spoiler>",
    "</tg-spoiler>",
    "<u>",
    "</u>",
    "<blockquote>",
    "</blockquote>",
    "<div>",
]
MD_TOKENS = [*"ab _*~|`[]()>\\.!-\né😀", "__", "||", "```", "```py\n", "[x](http://e.org)"]


def _mine(text: str, mode: ParseMode) -> str | None:
    try:
        return visible_text(text, parse_mode=mode)
    except TemplateError:
        return None


def _sandbox(text: str, mode: ParseMode) -> str | None:
    try:
        visible, _ = sandbox_entities.parse(text, mode.value)
    except Exception:
        return None
    return str(visible)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(HTML_TOKENS), max_size=14).map("".join))
def test_html_agrees(text: str) -> None:
    assert _mine(text, ParseMode.HTML) == _sandbox(text, ParseMode.HTML)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(MD_TOKENS), max_size=14).map("".join))
def test_markdownv2_agrees(text: str) -> None:
    # expandable blockquote: see the module docstring
    assume(not ("**>" in text or "||\n" in text or text.endswith("||")))
    assert _mine(text, ParseMode.MARKDOWNV2) == _sandbox(text, ParseMode.MARKDOWNV2)
