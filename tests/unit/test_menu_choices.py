"""Self-segmenting menu choices on campaign and step buttons (cb:pick=, cb:tz=), in the
sequence file's step menus and the rules file's menus: parsed and refused without a database."""

from __future__ import annotations

from dataclasses import replace

import pytest

from botdesk import clicks
from botdesk.errors import ValidationError
from botdesk.reply_rules import parse_rules
from botdesk.sequence_file import SequenceFileError, parse_sequence


@pytest.mark.parametrize(
    ("target", "action"),
    [
        ("cb:tag=vip", clicks.Action("tag", "vip")),
        ("cb:pick=shoes", clicks.Action("menu", "shoes", exclusive=True)),
        ("cb:tz=Asia/Tokyo", clicks.Action("menu", "", timezone="Asia/Tokyo")),
        (
            "cb:pick=berlin, tz=Europe/Berlin",
            clicks.Action("menu", "berlin", timezone="Europe/Berlin", exclusive=True),
        ),
        ("cb:tag=de,tz=Europe/Berlin", clicks.Action("menu", "de", timezone="Europe/Berlin")),
        ("cb:reply=a, b", clicks.Action("reply", "a, b")),  # a reply's text keeps its commas
        (  # the operator's answer text: the rest of the target, commas included
            "cb:pick=shoes,say=Noted, {label}!",
            clicks.Action("menu", "shoes", exclusive=True, say="Noted, {label}!"),
        ),
    ],
)
def test_menu_actions(target: str, action: clicks.Action) -> None:
    assert clicks.parse_action(target) == action


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("cb:tz=Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
        ("cb:pick=a,tag=b", "at most one tag"),
        ("cb:pick=a,colour=red", "join tag=NAME, pick=NAME and tz=ZONE"),
        ("cb:pick=no spaces", "invalid tag"),
        ("cb:size=9", "unknown button action 'size'"),
        ("cb:tag=vip,say=hi", "say= answers a menu choice"),
        ("cb:pick=a,say= ", "say= needs an answer text"),
    ],
)
def test_bad_menu_actions_say_why(target: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        clicks.parse_action(target)


def test_answer_names_the_choice_only_for_menus() -> None:
    assert clicks.Action("menu", "x", label="Shoes").answer() == "Saved: Shoes"
    assert clicks.Action("tag", "x", label="Shoes").answer() is None
    pressed = clicks.Action("menu", "x", label="Shoes", say="{label}: noted")
    assert pressed.answer() == "Shoes: noted"


STEP = """name: s
trigger: start
steps:
  - text: Which time zone?
    buttons: [{label: Site, url: "https://example.com"}]
    menu:
      exclusive: true
      buttons:
        - {label: Berlin, tag: tz-berlin, timezone: Europe/Berlin}
        - {label: Tokyo, timezone: Asia/Tokyo}
        - {label: Shoes, tag: shoes}
"""


def test_a_step_menu_becomes_callback_buttons_after_the_others() -> None:
    step = parse_sequence(STEP).steps[0]
    assert step.buttons == (
        ("Site", "https://example.com"),
        ("Berlin", "cb:pick=tz-berlin,tz=Europe/Berlin"),
        ("Tokyo", "cb:tz=Asia/Tokyo"),
        ("Shoes", "cb:pick=shoes"),
    )


def test_a_step_menu_answer_is_the_operators_text() -> None:
    answered = STEP.replace("exclusive: true", 'exclusive: true\n      answer: "Got it: {label}"')
    buttons = parse_sequence(answered).steps[0].buttons
    assert buttons[1] == ("Berlin", "cb:pick=tz-berlin,tz=Europe/Berlin,say=Got it: {label}")
    berlin = clicks.parse_action(buttons[1][1])
    assert replace(berlin, label="Berlin").answer() == "Got it: Berlin"


def test_a_bad_step_menu_is_reported_with_its_line() -> None:
    bad = STEP.replace("exclusive: true", "exclusive: true\n      colour: red").replace(
        "Asia/Tokyo", "Mars/Olympus"
    )
    with pytest.raises(SequenceFileError) as info:
        parse_sequence(bad, filename="s.yaml")
    assert info.value.problems == [
        "s.yaml:7: step 1: unknown menu field(s): colour",
        "s.yaml:7: step 1: unknown time zone 'Mars/Olympus' (an IANA name such as Europe/Berlin)",
    ]


def test_rules_menu_buttons_can_set_the_time_zone() -> None:
    rules = parse_rules(
        """rules:
  - name: zone
    command: /zone
    reply:
      text: Which time zone?
      menu:
        buttons:
          - {label: Berlin, timezone: Europe/Berlin}
          - {label: Tokyo, tag: asia, timezone: Asia/Tokyo}
"""
    )
    berlin, tokyo = rules.rules[0].reply.menu
    assert (berlin.tag, berlin.timezone, tokyo.tag, tokyo.timezone) == (
        "",
        "Europe/Berlin",
        "asia",
        "Asia/Tokyo",
    )
    assert berlin.key != tokyo.key and rules.button(berlin.key) == berlin
    # The stored copy (what workers read) keeps the time zones.
    from botdesk.reply_rules import stored_text

    again = parse_rules(stored_text(rules))
    assert again.rules[0].reply.menu == rules.rules[0].reply.menu
