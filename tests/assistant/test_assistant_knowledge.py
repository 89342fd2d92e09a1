"""Knowledge import: Markdown, CSV and YAML, keys, and bad rows reported with their line."""

from __future__ import annotations

import pytest

from botdesk.assistant.knowledge import normalize_key, parse_knowledge
from botdesk.errors import KnowledgeImportError

MARKDOWN = """# Shop FAQ

Intro text that is not an entry.

## How long does shipping take?
also: When will my order arrive?
also: delivery time
tags: shipping, orders

Usually **3-5 business days**.

Express is faster.

## Empty answer?

## What is your return policy?
id: returns
30 days.
```
## not a heading inside a code block
```
"""


def test_markdown_entries_variants_tags_and_multiline_answers() -> None:
    report = parse_knowledge(MARKDOWN, filename="faq.md", bot="shop")
    first, second = report.entries
    assert first.key == "how long does shipping take"
    assert first.variants == ("When will my order arrive?", "delivery time")
    assert first.tags == ("shipping", "orders")
    assert first.answer == "Usually **3-5 business days**.\n\nExpress is faster."
    assert first.bot == "shop"
    assert second.key == "returns"
    assert "## not a heading inside a code block" in second.answer
    assert [(p.line, p.reason) for p in report.problems] == [(14, "missing answer")]


def test_csv_without_header_with_bad_rows_keeps_good_rows() -> None:
    text = (
        "How do I pay?,Card or PayPal.,payments\n"
        'Multi line?,"first line\nsecond line"\n'
        "only one column\n"
        ",answer without question\n"
        "Where are you?,Berlin.,stores;contact\n"
    )
    report = parse_knowledge(text, filename="kb.CSV", bot=None)
    assert [e.question for e in report.entries] == [
        "How do I pay?",
        "Multi line?",
        "Where are you?",
    ]
    assert report.entries[1].answer == "first line\nsecond line"
    assert report.entries[2].tags == ("stores", "contact")
    assert [p.line for p in report.problems] == [4, 5]
    assert "columns" in report.problems[0].reason
    assert report.problems[1].reason == "missing question"


def test_csv_with_header_id_and_variants() -> None:
    text = "id,question,answer,variants\npay,How do I pay?,Card.,payment methods|can i use paypal\n"
    (entry,) = parse_knowledge(text, filename="kb.csv", bot="b").entries
    assert entry.key == "pay"
    assert entry.variants == ("payment methods", "can i use paypal")


def test_yaml_reports_bad_entries_with_their_line() -> None:
    text = """entries:
  - question: How do I pay?
    answer: Card.
    alternatives: [payment methods]
  - question: No answer here
  - just a string
  - question: Weird
    answer: x
    colour: blue
  - id: pay2
    question: How do I pay?
    answer: duplicate question, but an explicit id
  - question: "how do I pay"
    answer: duplicate key
"""
    report = parse_knowledge(text, filename="kb.yml", bot=None)
    assert [e.key for e in report.entries] == ["how do i pay", "pay2"]
    assert report.entries[0].variants == ("payment methods",)
    lines = [(p.line, p.reason.split(":")[0].split(";")[0]) for p in report.problems]
    assert lines == [
        (5, "missing answer"),
        (6, "entry is not a mapping with question and answer"),
        (7, "unknown field(s)"),
        (13, "duplicate of the entry on line 2"),
    ]


def test_reimport_keys_are_stable_when_only_the_answer_changes() -> None:
    a = parse_knowledge("## How do I pay?\nCard.", filename="a.md", bot="b").entries[0]
    b = parse_knowledge("## how do I  pay\nPayPal too.", filename="a.md", bot="b").entries[0]
    assert a.key == b.key == normalize_key("HOW DO I PAY ?")


def test_answers_telegram_cannot_send_are_rejected() -> None:
    report = parse_knowledge(f"q,{'x' * 5000}\n", filename="kb.csv", bot=None)
    assert not report.entries
    assert "4096" in report.problems[0].reason


@pytest.mark.parametrize(
    ("text", "filename", "message"),
    [
        ("a: [", "kb.yaml", "YAML syntax error at line 1"),
        ("x", "kb.txt", "unsupported knowledge file type '.txt'"),
        ("answer: 1", "kb.yaml", "expected a list of entries or 'entries:'"),
    ],
)
def test_unreadable_files_are_one_line_user_errors(text: str, filename: str, message: str) -> None:
    with pytest.raises(KnowledgeImportError, match=message) as info:
        parse_knowledge(text, filename=filename, bot=None)
    assert "\n" not in str(info.value)
