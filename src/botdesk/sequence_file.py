"""The sequence file: a drip sequence as the operator writes it (YAML), validated at once.

Format in docs/engagement.md ("Sequences"). ``parse_sequence`` reports every problem with its
line and field (``SequenceFileError``, one line each, like the rules file); what the store keeps
is the validated YAML itself, parsed again by every worker (``sequences.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import time, timedelta
from pathlib import Path
from typing import Any

import yaml

from botdesk import campaigns
from botdesk.ab_campaigns import parse_duration
from botdesk.errors import SegmentSyntaxError, ValidationError
from botdesk.segments import check_tag, parse_segment
from botdesk.timezones import is_zone
from botdesk.yaml_file import (
    Problems,
    YamlFileError,
    compose_root,
    construct,
    line_of,
    mapping_nodes,
    message_fields,
)

MAX_STEPS = 50
MAX_FILE_BYTES = 1024 * 1024
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_TOP_KEYS = {"name", "trigger", "stop", "quiet_hours", "steps"}
_STEP_KEYS = {
    "text",
    "parse_mode",
    "photo",
    "document",
    "buttons",
    "menu",
    "delay",
    "after",
    "segment",
    "expires",
}
_STOP_KEYS = {"on_reply", "goal_tag"}
_QUIET_KEYS = {"from", "to", "timezone"}
TRIGGER_KINDS = ("start", "tag", "click")


class SequenceFileError(YamlFileError):
    """A sequence file with problems; ``problems`` holds one line per problem, with its place."""


@dataclass(frozen=True)
class Trigger:
    kind: str  # start | tag | click
    source: str | None = None  # start: only this deep-link payload (None: any /start)
    tag: str | None = None
    campaign: int | None = None  # click: the campaign and its button (0-based index or label)
    button: int | str | None = None

    def describe(self) -> str:
        if self.kind == "start":
            return f"/start {self.source}" if self.source else "/start"
        if self.kind == "tag":
            return f"tag {self.tag} added"
        return f"click on campaign {self.campaign} button {self.button}"


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time
    timezone: str = "UTC"  # for subscribers whose own time zone is not known

    def describe(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M} ({self.timezone} unless known)"


@dataclass(frozen=True)
class Step:
    number: int
    text: str
    parse_mode: str = "plain"
    photo: str | None = None
    document: str | None = None
    buttons: tuple[tuple[str, str], ...] = ()
    delay: timedelta = timedelta(0)
    after: str = "previous"  # previous | trigger
    segment: str | None = None
    expires: timedelta | None = None
    line: int = field(default=0, compare=False)


@dataclass(frozen=True)
class SequenceDef:
    name: str
    trigger: Trigger
    steps: tuple[Step, ...]
    stop_on_reply: bool = True
    goal_tag: str | None = None
    quiet: QuietHours | None = None


def read_sequence(path: Path) -> tuple[SequenceDef, str]:
    """Read and validate a file; its definition and the text to store."""
    from botdesk.textfiles import read_text

    text = read_text(path, limit=MAX_FILE_BYTES, error=ValidationError)
    return parse_sequence(text, filename=path.name, base=path.parent), text


def format_duration(seconds: float | None) -> str:
    """A duration as the file writes it (``2d``, ``3h``, ``90s``); ``-`` for none."""
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _delay(value: Any, *, zero: bool) -> timedelta:
    text = str(value).strip()
    if zero and text in ("0", "0s", "0m", "0h", "0d"):
        return timedelta(0)
    return parse_duration(text)


def parse_sequence(
    text: str, *, filename: str = "sequence.yaml", base: Path | None = None
) -> SequenceDef:
    """Validate a whole sequence file; raise ``SequenceFileError`` listing every problem.

    ``base`` resolves relative media paths (None: the stored copy, paths already absolute)."""
    problems = Problems(filename)
    root, parsed = compose_root(text, problems)
    if not parsed:
        raise SequenceFileError(filename, problems.lines) from None
    if root is None or not isinstance(root, yaml.MappingNode):
        problems.add(
            line_of(root) if root else 0, "", "expected a mapping with 'name', 'trigger', 'steps'"
        )
        raise SequenceFileError(filename, problems.lines)
    nodes = mapping_nodes(root)
    data = construct(root)
    for key in nodes:
        if key not in _TOP_KEYS:
            problems.add(
                line_of(nodes[key]),
                key,
                "unknown field (use name, trigger, stop, quiet_hours, steps)",
            )

    def at(key: str) -> int:
        return line_of(nodes[key]) if key in nodes else line_of(root)

    name = data.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        problems.add(
            at("name"),
            "name",
            "needs 1-64 letters, digits, '_', '.', '-' (first a letter or digit)",
        )
        name = ""
    trigger = _trigger(data.get("trigger"), at("trigger"), problems)
    stop_on_reply, goal = _stop(data.get("stop"), at("stop"), problems)
    quiet = _quiet(data.get("quiet_hours"), at("quiet_hours"), problems)
    steps: list[Step] = []
    snode = nodes.get("steps")
    if not isinstance(snode, yaml.SequenceNode) or not snode.value:
        problems.add(at("steps"), "steps", "expected a non-empty list of steps")
    elif len(snode.value) > MAX_STEPS:
        problems.add(at("steps"), "steps", f"at most {MAX_STEPS} steps")
    else:
        for i, node in enumerate(snode.value, start=1):
            step = _step(node, i, problems, base)
            if step is not None:
                steps.append(step)
    if problems.lines or trigger is None:
        raise SequenceFileError(filename, problems.lines or [f"{filename}: invalid"])
    return SequenceDef(
        name=name,
        trigger=trigger,
        steps=tuple(steps),
        stop_on_reply=stop_on_reply,
        goal_tag=goal,
        quiet=quiet,
    )


def _trigger(value: Any, line: int, problems: Problems) -> Trigger | None:
    what = "trigger"
    if value == "start":
        return Trigger("start")
    if not isinstance(value, dict) or len(value) != 1:
        problems.add(
            line,
            what,
            "use 'start', {start: SOURCE}, {tag: NAME} or {click: {campaign: ID, button: N|LABEL}}",
        )
        return None
    ((kind, arg),) = value.items()
    if kind == "start":
        src = None if arg is None else str(arg)
        if src is not None and not re.match(r"^[A-Za-z0-9_-]{1,64}$", src):
            problems.add(line, what, "a deep-link source is 1-64 of A-Z a-z 0-9 _ -")
            return None
        return Trigger("start", source=src)
    if kind == "tag":
        try:
            return Trigger("tag", tag=check_tag(str(arg or "")))
        except ValidationError as exc:
            problems.add(line, what, str(exc))
            return None
    if kind == "click":
        if (
            not isinstance(arg, dict)
            or not isinstance(arg.get("campaign"), int)
            or "button" not in arg
        ):
            problems.add(
                line, what, "click needs {campaign: ID, button: NUMBER (1-based) or LABEL}"
            )
            return None
        button = arg["button"]
        if isinstance(button, bool):  # YAML reads an unquoted Yes/No as a boolean
            problems.add(line, what, "quote the button label (YAML reads Yes/No as true/false)")
            return None
        if isinstance(button, int):
            if button < 1:
                problems.add(line, what, "button numbers start at 1")
                return None
            button = button - 1
        return Trigger(
            "click",
            campaign=int(arg["campaign"]),
            button=button if isinstance(button, int) else str(button),
        )
    problems.add(line, what, f"unknown trigger {kind!r} (start, tag, click)")
    return None


def _stop(value: Any, line: int, problems: Problems) -> tuple[bool, str | None]:
    if value is None:
        return True, None
    if not isinstance(value, dict):
        problems.add(line, "stop", "expected a mapping with on_reply and/or goal_tag")
        return True, None
    unknown = set(map(str, value)) - _STOP_KEYS
    if unknown:
        problems.add(line, "stop", f"unknown field(s): {', '.join(sorted(unknown))}")
    on_reply = value.get("on_reply", True)
    if not isinstance(on_reply, bool):
        problems.add(line, "stop.on_reply", "must be true or false")
        on_reply = True
    goal = value.get("goal_tag")
    if goal is not None:
        try:
            goal = check_tag(str(goal))
        except ValidationError as exc:
            problems.add(line, "stop.goal_tag", str(exc))
            goal = None
    return on_reply, goal


def _quiet(value: Any, line: int, problems: Problems) -> QuietHours | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        problems.add(line, "quiet_hours", "expected a mapping with from, to and timezone")
        return None
    unknown = set(map(str, value)) - _QUIET_KEYS
    if unknown:
        problems.add(line, "quiet_hours", f"unknown field(s): {', '.join(sorted(unknown))}")
    bounds: list[time] = []
    for key in ("from", "to"):
        m = _HHMM.match(str(value.get(key, "")))
        if not m:
            problems.add(line, f"quiet_hours.{key}", "needs a time HH:MM (24 h), quoted")
        else:
            bounds.append(time(int(m.group(1)), int(m.group(2))))
    tz = str(value.get("timezone") or "UTC")
    if not is_zone(tz):
        problems.add(
            line,
            "quiet_hours.timezone",
            f"unknown time zone {tz!r} (an IANA name such as Europe/Berlin)",
        )
        return None
    if len(bounds) != 2:
        return None
    if bounds[0] == bounds[1]:
        problems.add(line, "quiet_hours", "from and to are equal: the window would be empty")
        return None
    return QuietHours(start=bounds[0], end=bounds[1], timezone=tz)


def _step(node: yaml.Node, number: int, problems: Problems, base: Path | None) -> Step | None:
    line = line_of(node)
    what = f"step {number}"
    if not isinstance(node, yaml.MappingNode):
        problems.add(line, what, "expected a mapping (text, delay, ...)")
        return None
    data = construct(node)
    fields = mapping_nodes(node)

    def at(key: str) -> int:
        return line_of(fields[key]) if key in fields else line

    before = len(problems.lines)
    unknown = set(map(str, data)) - _STEP_KEYS
    if unknown:
        problems.add(line, what, f"unknown field(s): {', '.join(sorted(unknown))}")
    text, mode, photo, document = message_fields(data, at, what, problems, base, noun="step")
    buttons = _buttons(data.get("buttons"), data.get("menu"), at, what, problems)
    delay = timedelta(0)
    if "delay" in data:
        try:
            delay = _delay(data["delay"], zero=True)
        except ValidationError as exc:
            problems.add(at("delay"), what, f"delay: {exc}")
    after = str(data.get("after") or "previous")
    if after not in ("previous", "trigger"):
        problems.add(at("after"), what, "'after' is 'previous' (the step before) or 'trigger'")
    expires = None
    if data.get("expires") is not None:
        try:
            expires = _delay(data["expires"], zero=False)
        except ValidationError as exc:
            problems.add(at("expires"), what, f"expires: {exc}")
    segment = data.get("segment")
    if segment is not None:
        segment = str(segment)
        try:
            parse_segment(segment)
        except SegmentSyntaxError as exc:
            problems.add(at("segment"), what, f"segment: {exc}")
    if len(problems.lines) > before:
        return None
    return Step(
        number=number,
        text=text,
        parse_mode=mode,
        photo=photo,
        document=document,
        buttons=buttons,
        delay=delay,
        after=after,
        segment=segment,
        expires=expires,
        line=line,
    )


def _buttons(
    value: Any, menu: Any, at: Any, what: str, problems: Problems
) -> tuple[tuple[str, str], ...]:
    """``[{label, url}]`` or ``[{label, action: cb:...}]`` (or ``"LABEL=TARGET"``), then the
    ``menu``'s choices as ``cb:pick=``/``cb:tag=``/``cb:tz=`` buttons, checked like a
    campaign's ``--button``."""
    line = at("buttons")
    choices = [] if menu is None else _menu(menu, at("menu"), what, problems)
    if value is None and not choices:
        return ()
    value = [] if value is None else value
    if not isinstance(value, list):
        problems.add(line, what, "'buttons' must be a list of {label, url} or {label, action}")
        return ()
    out: list[tuple[str, str]] = []
    for b in value:
        if isinstance(b, str) and "=" in b:
            label, _, target = b.partition("=")
        elif isinstance(b, dict) and isinstance(b.get("label"), str):
            label, target = b["label"], str(b.get("url") or b.get("action") or "")
        else:
            problems.add(
                line, what, "each button is {label, url}, {label, action: cb:...} or 'LABEL=TARGET'"
            )
            continue
        out.append((label.strip(), target.strip()))
    out.extend(choices)
    try:
        campaigns._check_buttons(out)
    except ValidationError as exc:
        problems.add(line, what, str(exc))
        return ()
    return tuple(out)


def _menu(value: Any, line: int, what: str, problems: Problems) -> list[tuple[str, str]]:
    """A step's self-segmenting menu, ``{exclusive, answer, buttons: [{label, tag,
    timezone}]}``, as callback buttons: a press tags the subscriber (one choice of several
    when exclusive) and/or sets their time zone, counts as a click of the step's campaign, and
    is answered with ``answer`` (``{label}``: the pressed label; default "Saved: {label}")."""
    from botdesk import clicks  # not at import: it loads aiogram (see campaigns._check_buttons)

    if not isinstance(value, dict) or not isinstance(value.get("buttons"), list):
        problems.add(line, what, "'menu' must be a mapping with 'buttons': [{label, tag}]")
        return []
    unknown = set(map(str, value)) - {"buttons", "exclusive", "answer"}
    if unknown:
        problems.add(line, what, f"unknown menu field(s): {', '.join(sorted(unknown))}")
    exclusive = value.get("exclusive", False)
    if not isinstance(exclusive, bool):
        problems.add(line, what, "menu 'exclusive' must be true or false")
        exclusive = False
    answer = value.get("answer")  # None: "Saved: {label}"
    if answer is not None and not (
        isinstance(answer, str) and answer.strip() and len(answer) <= clicks.ANSWER_LIMIT
    ):
        problems.add(
            line, what, f"the menu's 'answer' must be a text of 1-{clicks.ANSWER_LIMIT} characters"
        )
        answer = None
    out: list[tuple[str, str]] = []
    for item in value["buttons"]:
        try:
            label, tag, zone = clicks.menu_choice(item)
        except ValidationError as exc:
            problems.add(line, what, str(exc))
            continue
        out.append((label, clicks.menu_target(tag, zone, exclusive=exclusive, answer=answer)))
    return out
