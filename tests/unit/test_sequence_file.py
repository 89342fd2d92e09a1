"""The sequence file: a valid file parsed into steps; every problem reported with its line."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from botdesk.sequence_file import SequenceFileError, parse_sequence

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "welcome-sequence.yaml"


def test_the_example_file_parses() -> None:
    d = parse_sequence(EXAMPLE.read_text(), filename=EXAMPLE.name, base=EXAMPLE.parent)
    assert d.name == "welcome"
    assert d.trigger.kind == "start" and d.trigger.source is None
    assert d.goal_tag == "customer" and d.stop_on_reply is True
    assert d.quiet is not None and d.quiet.timezone == "Europe/Berlin"
    assert [s.delay for s in d.steps] == [timedelta(0), timedelta(days=1), timedelta(days=3)]
    assert d.steps[1].expires == timedelta(days=2)
    assert d.steps[1].buttons == (("Prices", "cb:tag=prices"), ("Our site", "https://example.com"))
    assert d.steps[2].after == "trigger" and d.steps[2].segment == "tag:prices"
    assert d.steps[2].parse_mode == "html"


@pytest.mark.parametrize(
    ("trigger", "kind", "detail"),
    [
        ("{start: ads}", "start", "ads"),
        ("{tag: interested}", "tag", "interested"),
        ("{click: {campaign: 4, button: 2}}", "click", 1),
        ("{click: {campaign: 4, button: Prices}}", "click", "Prices"),
    ],
)
def test_triggers(trigger: str, kind: str, detail: object) -> None:
    d = parse_sequence(f"name: s\ntrigger: {trigger}\nsteps:\n  - text: hi\n")
    assert d.trigger.kind == kind
    assert detail in (d.trigger.source, d.trigger.tag, d.trigger.button)


def test_every_problem_has_its_line_and_field() -> None:
    text = (
        "name: 'bad name!'\n"  # 1
        "trigger: {tag: ''}\n"  # 2
        "stop: {on_reply: maybe}\n"  # 3
        "quiet_hours: {from: '25:00', to: '08:00', timezone: Mars/Olympus}\n"  # 4
        "colour: blue\n"  # 5
        "steps:\n"  # 6
        "  - text: hello\n"  # 7
        "    delay: soon\n"  # 8
        "  - text: '<b>unclosed'\n"  # 9
        "    parse_mode: html\n"  # 10
        "    segment: 'tag:'\n"  # 11
        "    buttons: ['Go=ftp://x']\n"  # 12
        "  - delay: 1h\n"  # 13
    )
    with pytest.raises(SequenceFileError) as info:
        parse_sequence(text, filename="s.yaml")
    problems = info.value.problems
    joined = "\n".join(problems)
    for expected in (
        "s.yaml:1: name:",
        "s.yaml:2: trigger:",
        "s.yaml:3: stop.on_reply: must be true or false",
        "s.yaml:4: quiet_hours.from:",
        "s.yaml:4: quiet_hours.timezone: unknown time zone 'Mars/Olympus'",
        "s.yaml:5: colour: unknown field",
        "s.yaml:8: step 1: delay:",
        "s.yaml:9: step 2:",
        "s.yaml:11: step 2: segment:",
        "s.yaml:12: step 2: button URL must start",
        "s.yaml:13: step 3: the step needs a 'text'",
    ):
        assert expected in joined, (expected, problems)
    assert all("Traceback" not in p for p in problems)


def test_yaml_syntax_error_is_one_line() -> None:
    with pytest.raises(SequenceFileError) as info:
        parse_sequence("name: x\nsteps: [\n", filename="broken.yaml")
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith("broken.yaml:")
    assert "YAML syntax error" in info.value.problems[0]


def test_unquoted_yes_as_a_button_label_is_refused() -> None:
    with pytest.raises(SequenceFileError, match="quote the button label"):
        parse_sequence(
            "name: x\ntrigger: {click: {campaign: 1, button: Yes}}\nsteps: [{text: a}]\n"
        )


def test_no_steps() -> None:
    with pytest.raises(SequenceFileError, match="non-empty list of steps"):
        parse_sequence("name: x\ntrigger: start\nsteps: []\n")
