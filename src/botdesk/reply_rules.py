"""Keyword replies and self-tagging menus: the rules file, its validation, the matcher, storage.

A bot's rules come from one YAML file (format in docs/engagement.md, "Keyword replies and
menus"). ``parse_rules`` validates the whole file at once and reports every problem with its
line and rule name (``RulesFileError``); what is stored is the validated YAML itself, one row
per bot (``reply_rule_sets``), so every worker that serves the bot, on any machine sharing the
database, reads the same rules and parses them again when the stored version changes.

Matching (``RuleSet.match``) is a pure function of the text and the subscriber's language:
command rules first, then keyword rules, then regular expressions; within a kind, a rule for
the subscriber's language (Telegram's ``language_code``, by prefix) wins over a language-less
one, and the file's order decides among equals.

Menu buttons carry ``m:`` + a short hash of (rule name, tag) as callback data: opaque, fixed
length, and meaningful only as a key into the bot's current rule set, which a press must find
again (``RuleSet.button``); a user cannot make a button add a tag the operator did not offer.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from botdesk import yaml_file
from botdesk.delivery import templates
from botdesk.errors import NotFoundError, ValidationError
from botdesk.segments import check_tag
from botdesk.store.db import Database
from botdesk.store.models import ReplyRuleSet, Subscriber, SubscriberTag
from botdesk.textfiles import read_text
from botdesk.yaml_file import (
    Problems,
    compose_root,
    construct,
    line_of,
    mapping_nodes,
    message_fields,
)

MENU_PREFIX = "m:"
MENU_KEY_CHARS = 12  # hex characters of the hash: 48 bits, callback data of 14 bytes
MAX_FILE_BYTES = 1024 * 1024
MAX_RULES = 500
MAX_COMMANDS = 100  # Telegram's limit per scope and language
# Commands that change consent or are answered by botdesk itself: a rule cannot take them.
RESERVED_COMMANDS = frozenset({"start", "stop", "unsubscribe", "help"})
_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})?$")
_RULE_KEYS = {"name", "command", "keyword", "keywords", "regex", "language", "reply", "tags"}
_REPLY_KEYS = {"text", "parse_mode", "photo", "document", "buttons", "menu"}
_MENU_KEYS = {"buttons", "exclusive", "answer"}


class RulesFileError(yaml_file.YamlFileError):
    """A rules file with problems; ``problems`` holds one line per problem, with its place."""


# -- the rule set -----------------------------------------------------------------------


@dataclass(frozen=True)
class MenuButton:
    key: str  # the callback data: MENU_PREFIX + hash
    label: str
    tag: str  # "" for a button that only sets the time zone
    rule: str
    group: tuple[str, ...]  # every tag of the menu (removed on press when exclusive)
    exclusive: bool
    answer: str
    timezone: str | None = None  # an IANA name the press sets as the subscriber's time zone


@dataclass(frozen=True)
class RuleReply:
    text: str
    parse_mode: str = "plain"
    photo: str | None = None  # a URL, a file_id or an absolute path
    document: str | None = None
    links: tuple[tuple[str, str], ...] = ()  # URL buttons: (label, url)
    menu: tuple[MenuButton, ...] = ()


@dataclass(frozen=True)
class Rule:
    name: str
    kind: str  # command | keyword | regex
    patterns: tuple[str, ...]  # the command (no slash), the keywords, or the expression
    reply: RuleReply
    language: str | None = None
    tags: tuple[str, ...] = ()
    line: int = field(default=0, compare=False)  # in the operator's file (0: stored copy)
    pattern: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def hits(self, text: str, command: str | None) -> bool:
        if self.kind == "command":
            return command is not None and command in self.patterns
        assert self.pattern is not None
        return self.pattern.search(text) is not None


@dataclass(frozen=True)
class Command:
    command: str
    description: str
    language: str | None = None


_KIND_ORDER = ("command", "keyword", "regex")


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...] = ()
    commands: tuple[Command, ...] = ()
    version: int = 0

    def match(self, text: str, language: str | None) -> Rule | None:
        """The rule that answers ``text`` from a subscriber with ``language``, or None (the
        assistant answers)."""
        command = command_of(text)
        lang = (language or "").lower()
        for kind in _KIND_ORDER:
            best: Rule | None = None
            best_score = -1
            for rule in self.rules:
                if rule.kind != kind:
                    continue
                score = _language_score(rule.language, lang)
                if score <= best_score or not rule.hits(text, command):
                    continue
                best, best_score = rule, score
            if best is not None:
                return best
        return None

    def button(self, data: str) -> MenuButton | None:
        """The menu button ``data`` names in this rule set (None: not offered, or no longer)."""
        for rule in self.rules:
            for b in rule.reply.menu:
                if b.key == data:
                    return b
        return None

    def commands_by_language(self) -> dict[str | None, list[Command]]:
        out: dict[str | None, list[Command]] = {}
        for c in self.commands:
            out.setdefault(c.language, []).append(c)
        return out


def _language_score(rule_lang: str | None, lang: str) -> int:
    """-1: the rule is for another language; 0: for every language; more: the longer the
    matching language tag, the better (``pt-br`` beats ``pt`` for a ``pt-br`` subscriber)."""
    if rule_lang is None:
        return 0
    if lang == rule_lang or lang.startswith(rule_lang + "-"):
        return len(rule_lang)
    return -1


def command_of(text: str) -> str | None:
    """``/Price@shop_bot shoes`` -> ``price``; None when the text is not a command."""
    if not text.startswith("/"):
        return None
    head = text[1:].split(maxsplit=1)[0] if len(text) > 1 else ""
    head = head.split("@", 1)[0].lower()
    return head or None


def menu_key(rule: str, tag: str) -> str:
    digest = hashlib.sha256(f"{rule}\0{tag}".encode()).hexdigest()
    return MENU_PREFIX + digest[:MENU_KEY_CHARS]


def keyword_pattern(keywords: Iterable[str]) -> re.Pattern[str]:
    """Any of the keywords as whole words (or phrases), case-insensitive, Unicode-aware."""
    alts = "|".join(re.escape(k) for k in sorted(keywords, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alts})(?!\w)", re.IGNORECASE)


# -- the file -----------------------------------------------------------------------------


def _texts(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return [str(v) for v in value]
    return None


def parse_rules(text: str, *, filename: str = "rules.yaml", base: Path | None = None) -> RuleSet:
    """Validate a whole rules file; raise ``RulesFileError`` listing every problem.

    ``base`` is the folder relative media paths are read from (the file's own); a path must
    exist now and is kept absolute. Without ``base`` (the stored copy, already validated) paths
    are taken as they are.
    """
    problems = Problems(filename)
    root, parsed = compose_root(text, problems)
    if not parsed:
        raise RulesFileError(filename, problems.lines) from None
    if root is None:
        return RuleSet()
    top = mapping_nodes(root)
    if not top:
        problems.add(line_of(root), "", "expected a mapping with 'rules:' and/or 'commands:'")
        raise RulesFileError(filename, problems.lines)
    for key, node in top.items():
        if key not in ("rules", "commands"):
            problems.add(line_of(node), "", f"unknown section {key!r} (use rules, commands)")
    rules: list[Rule] = []
    if "rules" in top:
        node = top["rules"]
        if not isinstance(node, yaml.SequenceNode):
            problems.add(line_of(node), "rules", "expected a list of rules")
        else:
            if len(node.value) > MAX_RULES:
                problems.add(line_of(node), "rules", f"at most {MAX_RULES} rules")
            names: dict[str, int] = {}
            for i, rnode in enumerate(node.value, start=1):
                rule_name, rule = _rule(rnode, i, problems, base)
                if rule_name in names:
                    problems.add(
                        line_of(rnode),
                        f"rule {rule_name!r}",
                        f"duplicate name (first at line {names[rule_name]})",
                    )
                    continue
                names[rule_name] = line_of(rnode)
                if rule is not None:
                    rules.append(rule)
    commands = _commands(top["commands"], problems) if "commands" in top else []
    if problems.lines:
        raise RulesFileError(filename, problems.lines)
    return RuleSet(rules=tuple(rules), commands=tuple(commands))


def _rule(
    node: yaml.Node, index: int, problems: Problems, base: Path | None
) -> tuple[str, Rule | None]:
    """The rule's name (for duplicate checks) and the rule, None when it has problems."""
    line = line_of(node)
    fields = mapping_nodes(node)
    if not fields:
        problems.add(line, f"rule #{index}", "expected a mapping (name, keyword, reply, ...)")
        return f"rule-{index}", None
    try:
        data = construct(node)
    except yaml.YAMLError as exc:
        problems.add(line, f"rule #{index}", f"unreadable: {getattr(exc, 'problem', exc)}")
        return f"rule-{index}", None
    raw_name = data.get("name")
    name = str(raw_name).strip() if isinstance(raw_name, str | int) else f"rule-{index}"
    what = f"rule {name!r}"
    before = len(problems.lines)
    if not name or len(name) > 64:
        problems.add(line, f"rule #{index}", "'name' must be 1-64 characters")
    unknown = set(map(str, data)) - _RULE_KEYS
    if unknown:
        problems.add(line, what, f"unknown field(s): {', '.join(sorted(unknown))}")

    def at(key: str) -> int:
        return line_of(fields[key]) if key in fields else line

    kinds = [k for k in ("command", "keyword", "keywords", "regex") if k in data]
    kind = ""
    patterns: tuple[str, ...] = ()
    pattern: re.Pattern[str] | None = None
    if len(kinds) != 1:
        problems.add(line, what, "needs exactly one of 'command', 'keyword' or 'regex'")
    else:
        key = kinds[0]
        kind = "keyword" if key == "keywords" else key
        values = _texts(data[key])
        if not values or not all(v.strip() for v in values):
            problems.add(at(key), what, f"'{key}' must be a text or a list of texts")
        elif kind == "command":
            cmds = [v.strip().lstrip("/").lower() for v in values]
            for c in cmds:
                if not _COMMAND_RE.match(c):
                    problems.add(at(key), what, f"invalid command /{c}: 1-32 of a-z, 0-9, _")
                elif c in RESERVED_COMMANDS:
                    problems.add(at(key), what, f"/{c} is answered by botdesk itself")
            patterns = tuple(cmds)
        elif kind == "keyword":
            patterns = tuple(v.strip() for v in values)
            pattern = keyword_pattern(patterns)
        else:
            if len(values) != 1:
                problems.add(at(key), what, "'regex' must be one expression")
            else:
                try:
                    pattern = re.compile(values[0], re.IGNORECASE)
                except re.error as exc:
                    problems.add(at(key), what, f"invalid regular expression: {exc}")
                patterns = (values[0],)
    language = data.get("language")
    if language is not None:
        language = str(language).strip().lower()
        if not _LANGUAGE_RE.match(language):
            problems.add(at("language"), what, f"invalid language {language!r} (e.g. en, pt-br)")
    tags = _tags(data.get("tags"), at("tags"), what, problems)
    reply = None
    if "reply" not in fields:
        problems.add(line, what, "needs a 'reply'")
    else:
        reply = _reply(fields["reply"], data["reply"], name, what, problems, base)
    if len(problems.lines) > before or reply is None:
        return name, None
    return name, Rule(
        name=name,
        kind=kind,
        patterns=patterns,
        reply=reply,
        language=language,
        tags=tuple(tags),
        line=line,
        pattern=pattern,
    )


def _tags(value: Any, line: int, what: str, problems: Problems) -> list[str]:
    if value is None:
        return []
    values = _texts(value)
    if values is None:
        problems.add(line, what, "'tags' must be a tag or a list of tags")
        return []
    out = []
    for t in values:
        try:
            out.append(check_tag(t.strip()))
        except ValidationError as exc:
            problems.add(line, what, str(exc))
    return out


def _reply(
    node: yaml.Node, data: Any, rule: str, what: str, problems: Problems, base: Path | None
) -> RuleReply | None:
    line = line_of(node)
    if isinstance(data, str):
        data = {"text": data}
    if not isinstance(data, dict):
        problems.add(line, what, "'reply' must be a text or a mapping with 'text'")
        return None
    fields = mapping_nodes(node)

    def at(key: str) -> int:
        return line_of(fields[key]) if key in fields else line

    unknown = set(map(str, data)) - _REPLY_KEYS
    if unknown:
        problems.add(line, what, f"unknown reply field(s): {', '.join(sorted(unknown))}")
    text, mode, photo, document = message_fields(data, at, what, problems, base, noun="reply")
    links: list[tuple[str, str]] = []
    buttons = data.get("buttons") or []
    if not isinstance(buttons, list):
        problems.add(at("buttons"), what, "'buttons' must be a list of {label, url}")
        buttons = []
    for b in buttons:
        label, url = (b.get("label"), b.get("url")) if isinstance(b, dict) else (None, None)
        if not isinstance(label, str) or not label.strip() or not isinstance(url, str):
            problems.add(at("buttons"), what, "each button needs a 'label' and a 'url'")
        elif not url.startswith(("http://", "https://", "tg://")):
            problems.add(at("buttons"), what, f"button {label!r}: URL must start with https://")
        else:
            links.append((label.strip(), url))
    menu = (
        _menu(fields.get("menu"), data.get("menu"), rule, what, problems) if "menu" in data else ()
    )
    return RuleReply(
        text=text,
        parse_mode=mode,
        photo=photo,
        document=document,
        links=tuple(links),
        menu=menu,
    )


def _menu(
    node: yaml.Node | None, data: Any, rule: str, what: str, problems: Problems
) -> tuple[MenuButton, ...]:
    line = line_of(node) if node is not None else 0
    if not isinstance(data, dict):
        problems.add(line, what, "'menu' must be a mapping with 'buttons'")
        return ()
    unknown = set(map(str, data)) - _MENU_KEYS
    if unknown:
        problems.add(line, what, f"unknown menu field(s): {', '.join(sorted(unknown))}")
    raw = data.get("buttons")
    if not isinstance(raw, list) or not raw:
        problems.add(line, what, "the menu needs 'buttons': a list of {label, tag}")
        return ()
    answer = data.get("answer", "Saved: {label}")
    if not isinstance(answer, str) or len(answer) > 200:
        problems.add(line, what, "the menu's 'answer' must be a text of at most 200 characters")
        answer = ""
    from botdesk import clicks  # not at import: it loads aiogram (rules load stays light)

    choices: list[tuple[str, str, str | None]] = []
    for b in raw:
        try:
            label, tag, zone = clicks.menu_choice(b)
        except ValidationError as exc:
            problems.add(line, what, str(exc))
            continue
        if any((t or f"tz:{z}") == (tag or f"tz:{zone}") for _, t, z in choices):
            problems.add(line, what, f"menu choice {tag or zone!r} appears twice")
            continue
        choices.append((label, tag or "", zone))
    group = tuple(t for _, t, _z in choices if t)
    exclusive = bool(data.get("exclusive", False))
    return tuple(
        MenuButton(
            key=menu_key(rule, tag or f"tz:{zone}"),
            label=label,
            tag=tag,
            rule=rule,
            group=group,
            exclusive=exclusive,
            answer=answer,
            timezone=zone,
        )
        for label, tag, zone in choices
    )


def _commands(node: yaml.Node, problems: Problems) -> list[Command]:
    if not isinstance(node, yaml.SequenceNode):
        problems.add(line_of(node), "commands", "expected a list of {command, description}")
        return []
    out: list[Command] = []
    seen: set[tuple[str, str | None]] = set()
    for item in node.value:
        line = line_of(item)
        data = construct(item)
        if not isinstance(data, dict):
            problems.add(line, "commands", "each entry needs 'command' and 'description'")
            continue
        name = str(data.get("command") or "").strip().lstrip("/").lower()
        about = data.get("description")
        lang = data.get("language")
        lang = str(lang).strip().lower() if lang is not None else None
        what = f"command /{name}"
        if not _COMMAND_RE.match(name):
            problems.add(line, "commands", f"invalid command {name!r}: 1-32 of a-z, 0-9, _")
        elif not isinstance(about, str) or not 1 <= len(about.strip()) <= 256:
            problems.add(line, what, "'description' must be 1-256 characters")
        elif lang is not None and not _LANGUAGE_RE.match(lang):
            problems.add(line, what, f"invalid language {lang!r} (e.g. en, de)")
        elif (name, lang) in seen:
            problems.add(line, what, "listed twice for the same language")
        else:
            seen.add((name, lang))
            out.append(Command(name, about.strip(), lang))
    for lang in {c.language for c in out}:
        if sum(c.language == lang for c in out) > MAX_COMMANDS:
            problems.add(line_of(node), "commands", f"at most {MAX_COMMANDS} per language")
    return out


def read_file(path: Path) -> str:
    return read_text(path, limit=MAX_FILE_BYTES, error=ValidationError)


def render(reply: RuleReply, *, first_name: str | None, username: str | None) -> str:
    values = {"first_name": first_name, "username": username}
    return templates.render(reply.text, values, parse_mode=reply.parse_mode)


# -- storage ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredRules:
    version: int
    filename: str
    source: str
    loaded_at: datetime


def stored_text(rules: RuleSet) -> str:
    """The stored copy: the validated rules in the file's own format, media paths made
    absolute (they were resolved against the file's folder, which workers do not know)."""
    return yaml.safe_dump(_as_data(rules), sort_keys=False, allow_unicode=True)


def _as_data(rules: RuleSet) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if rules.rules:
        out["rules"] = [_rule_data(r) for r in rules.rules]
    if rules.commands:
        out["commands"] = [
            {"command": c.command, "description": c.description}
            | ({"language": c.language} if c.language else {})
            for c in rules.commands
        ]
    return out


def _rule_data(r: Rule) -> dict[str, Any]:
    key = "regex" if r.kind == "regex" else r.kind
    d: dict[str, Any] = {"name": r.name}
    d[key] = r.patterns[0] if r.kind == "regex" else list(r.patterns)
    if r.kind == "command":
        d[key] = ["/" + p for p in r.patterns]
    if r.language:
        d["language"] = r.language
    reply: dict[str, Any] = {"text": r.reply.text, "parse_mode": r.reply.parse_mode}
    for k in ("photo", "document"):
        if getattr(r.reply, k):
            reply[k] = getattr(r.reply, k)
    if r.reply.links:
        reply["buttons"] = [{"label": lab, "url": url} for lab, url in r.reply.links]
    if r.reply.menu:
        first = r.reply.menu[0]
        reply["menu"] = {
            "exclusive": first.exclusive,
            "answer": first.answer,
            "buttons": [_menu_button_data(b) for b in r.reply.menu],
        }
    d["reply"] = reply
    if r.tags:
        d["tags"] = list(r.tags)
    return d


def _menu_button_data(b: MenuButton) -> dict[str, Any]:
    d: dict[str, Any] = {"label": b.label}
    if b.tag:
        d["tag"] = b.tag
    if b.timezone:
        d["timezone"] = b.timezone
    return d


async def store(db: Database, *, bot_id: int, path: Path, now: datetime) -> tuple[RuleSet, int]:
    """Validate ``path`` and make it the bot's rule set; returns it and its new version."""
    rules = parse_rules(read_file(path), filename=path.name, base=path.parent.resolve())
    source = stored_text(rules)
    async with db.write() as conn:
        current = (
            await conn.execute(select(ReplyRuleSet.version).where(ReplyRuleSet.bot_id == bot_id))
        ).scalar()
        values = {"filename": path.name[:256], "source": source, "loaded_at": now}
        if current is None:
            version = 1
            await conn.execute(insert(ReplyRuleSet).values(bot_id=bot_id, version=1, **values))
        else:
            version = int(current) + 1
            await conn.execute(
                update(ReplyRuleSet)
                .where(ReplyRuleSet.bot_id == bot_id)
                .values(version=version, **values)
            )
    return rules, version


async def clear(db: Database, *, bot_id: int) -> bool:
    async with db.write() as conn:
        res = await conn.execute(delete(ReplyRuleSet).where(ReplyRuleSet.bot_id == bot_id))
    return bool(res.rowcount)


async def stored_version(conn: AsyncConnection, bot_id: int) -> int:
    """0 when the bot has no rules."""
    v = (
        await conn.execute(select(ReplyRuleSet.version).where(ReplyRuleSet.bot_id == bot_id))
    ).scalar()
    return int(v or 0)


async def _stored(conn: AsyncConnection, bot_id: int) -> StoredRules | None:
    row = (
        await conn.execute(
            select(
                ReplyRuleSet.version,
                ReplyRuleSet.filename,
                ReplyRuleSet.source,
                ReplyRuleSet.loaded_at,
            ).where(ReplyRuleSet.bot_id == bot_id)
        )
    ).first()
    return StoredRules(int(row.version), row.filename, row.source, row.loaded_at) if row else None


async def load_stored(conn: AsyncConnection, bot_id: int) -> RuleSet:
    row = await _stored(conn, bot_id)
    if row is None:
        return RuleSet()
    rules = parse_rules(row.source, filename=row.filename)
    return RuleSet(rules=rules.rules, commands=rules.commands, version=row.version)


async def current(db: Database, *, bot_id: int) -> RuleSet:
    async with db.read() as conn:
        return await load_stored(conn, bot_id)


async def stored_info(db: Database, *, bot_id: int) -> StoredRules:
    async with db.read() as conn:
        row = await _stored(conn, bot_id)
    if row is None:
        raise NotFoundError("this bot has no rules: load a file with `botdesk rules load`")
    return row


# -- tags, inside the update's transaction -----------------------------------------------


async def retag(
    conn: AsyncConnection,
    *,
    bot_id: int,
    chat_id: int,
    add: Sequence[str],
    remove: Sequence[str] = (),
    timezone: str | None = None,
    now: datetime | None = None,
) -> bool:
    """Add ``add`` (and drop ``remove``) on a subscriber, and set its ``timezone`` if given,
    in the caller's transaction, so a redelivered update cannot tag twice. False when the
    chat is no subscriber (never sent /start): there is nobody to tag."""
    sid = (
        await conn.execute(
            select(Subscriber.id).where(Subscriber.bot_id == bot_id, Subscriber.chat_id == chat_id)
        )
    ).scalar()
    if sid is None:
        return False
    drop = [t for t in remove if t not in add]
    if drop:
        await conn.execute(
            delete(SubscriberTag).where(
                SubscriberTag.subscriber_id == sid, SubscriberTag.tag.in_(drop)
            )
        )
    if add:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        await conn.execute(
            dialect.insert(SubscriberTag)
            .values([{"subscriber_id": sid, "tag": t} for t in dict.fromkeys(add)])
            .on_conflict_do_nothing(index_elements=["subscriber_id", "tag"])
        )
    if timezone is not None:
        values: dict[str, Any] = {"timezone": timezone}
        if now is not None:
            values["updated_at"] = now
        await conn.execute(update(Subscriber).where(Subscriber.id == sid).values(**values))
    return True
