"""The operator's YAML files (rules, sequences): reading them with every problem by line.

Owns what both file formats share: the error that lists every problem of a file
(``YamlFileError``), the collector of problems by line (``Problems``), the root node with
its syntax error (``compose_root``), the helpers that keep a value's line (``construct``,
``line_of``, ``mapping_nodes``), and a message's fields (``message_fields``: text, parse mode,
photo or document, checked as Telegram would). ``reply_rules.py`` and ``sequence_file.py``
build their formats on it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from botdesk.delivery import templates
from botdesk.errors import TemplateError, ValidationError

PARSE_MODES = ("plain", "html", "markdownv2")


class YamlFileError(ValidationError):
    """A file with problems; ``problems`` holds one line per problem, with its place."""

    def __init__(self, filename: str, problems: Sequence[str]) -> None:
        self.filename = filename
        self.problems = list(problems)
        first = self.problems[0] if self.problems else "invalid"
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(f"{first}{more}")


class Problems:
    """Problems found in one file, each ``FILE:LINE: WHAT: REASON``, reported in line order."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self._found: list[tuple[int, str]] = []

    def add(self, line: int, what: str, reason: str) -> None:
        where = f"{self.filename}:{line}" if line else self.filename
        self._found.append((line, f"{where}: {what}: {reason}" if what else f"{where}: {reason}"))

    @property
    def lines(self) -> list[str]:
        """In the file's order."""
        return [text for _, text in sorted(self._found, key=lambda f: f[0])]


def compose_root(text: str, problems: Problems) -> tuple[Any, bool]:
    """The YAML file's root node and True, or (None, False) with its syntax error noted in
    ``problems`` by line."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader), True
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = int(mark.line) + 1 if mark is not None else 0
        problems.add(at, "", f"YAML syntax error: {getattr(exc, 'problem', None) or exc}")
        return None, False


def construct(node: yaml.Node) -> Any:
    """The plain Python value of a node (safe types only)."""
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def line_of(node: yaml.Node) -> int:
    """The 1-based line a node starts on."""
    return int(node.start_mark.line) + 1


def mapping_nodes(node: yaml.Node) -> dict[str, yaml.Node]:
    """A mapping node's values by key (their nodes, for their lines); {} for other nodes."""
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {str(k.value): v for k, v in node.value if isinstance(k, yaml.ScalarNode)}


def media_path(
    value: Any, at: int, what: str, key: str, problems: Problems, base: Path | None
) -> str | None:
    """A photo or document: a URL as it is, a path made absolute against ``base`` (the file's
    folder) and checked to exist; ``base`` None (a stored copy): as it is."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        problems.add(at, what, f"'{key}' must be a path or a URL")
        return None
    text = value.strip()
    if text.startswith(("http://", "https://")) or base is None:
        return text
    path = Path(text).expanduser()
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        problems.add(at, what, f"{key} file not found: {text}")
        return None
    return str(path.resolve())


def message_fields(
    data: dict[str, Any],
    at: Callable[[str], int],
    what: str,
    problems: Problems,
    base: Path | None,
    *,
    noun: str,
) -> tuple[str, str, str | None, str | None]:
    """A message's text, parse mode, photo and document, checked (the template against its
    parse mode and Telegram's limits); ``at(key)`` is the line of a field."""
    where = at("")
    text = data.get("text")
    if not isinstance(text, str) or not text.strip():
        problems.add(at("text"), what, f"the {noun} needs a 'text'")
        text = ""
    mode = str(data.get("parse_mode") or "plain").lower()
    if mode not in PARSE_MODES:
        problems.add(
            at("parse_mode"), what, f"unknown parse mode {mode!r} (html, markdownv2, plain)"
        )
        mode = "plain"
    photo = media_path(data.get("photo"), at("photo"), what, "photo", problems, base)
    document = media_path(data.get("document"), at("document"), what, "document", problems, base)
    if photo and document:
        problems.add(where, what, f"a {noun} carries a photo or a document, not both")
    if text:
        limit = templates.CAPTION_LIMIT if photo or document else templates.TEXT_LIMIT
        try:
            templates.validate(text, parse_mode=mode, limit=limit)
        except TemplateError as exc:
            problems.add(at("text"), what, str(exc))
    return text, mode, photo, document
