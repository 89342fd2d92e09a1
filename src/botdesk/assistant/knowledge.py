"""Knowledge-base entries and their import from Markdown, CSV and YAML.

Owns the ``KnowledgeEntry`` value, how its stable ``key`` is derived, and the parsers. Parsing
is pure: it returns the good entries and a list of problems (line + reason) for the rows it
skipped; storing entries is the caller's job (the store upserts by ``(bot, key)``).

Key derivation (what makes a re-import update in place): an explicit id (``id`` field in YAML,
``id`` column in CSV, ``id:`` line under a Markdown heading) is used as is; otherwise the key is
the normalised question (NFKC, lower-case, whitespace collapsed, trailing ``?!.`` dropped), so
editing the answer of ``## How do I pay?`` updates the same entry, while rewording the question
creates a new one (give entries ids when questions get edited often).

Formats:

- Markdown: every ``## question`` heading starts an entry; the body up to the next ``##`` is the
  answer. Lines directly under the heading of the form ``id: x``, ``also: other phrasing`` (one
  per variant, repeatable) and ``tags: a, b`` are metadata, not answer text.
- CSV: columns ``question,answer[,tags]`` without header, or a header naming any of ``id``,
  ``question``, ``answer``, ``tags``, ``variants`` (variants separated by ``|``; tags by ``,``,
  ``;`` or ``|``).
- YAML: a list of mappings, or a mapping with an ``entries`` list; keys ``id``, ``question``,
  ``variants`` (or ``alternatives``), ``answer``, ``tags``.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

import yaml

from botdesk.errors import KnowledgeImportError

# Telegram refuses messages over 4096 characters; an answer we could never send is a bad row.
MAX_ANSWER_CHARS = 4096
MAX_QUESTION_CHARS = 500
_TAG_SPLIT = re.compile(r"[,;|]")


@dataclass(frozen=True)
class KnowledgeEntry:
    key: str
    question: str
    variants: tuple[str, ...]
    answer: str
    tags: tuple[str, ...] = ()
    bot: str | None = None  # None: the shared knowledge base

    @property
    def phrasings(self) -> tuple[str, ...]:
        """The question followed by its alternative phrasings."""
        return (self.question, *self.variants)


@dataclass(frozen=True)
class ImportProblem:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class ImportReport:
    entries: list[KnowledgeEntry] = field(default_factory=list)
    problems: list[ImportProblem] = field(default_factory=list)


def normalize_key(question: str) -> str:
    text = unicodedata.normalize("NFKC", question).casefold()
    text = " ".join(text.split())
    return text.rstrip("?!.。？！ ").strip()


def parse_knowledge(text: str, *, filename: str, bot: str | None) -> ImportReport:
    """Parse a knowledge file; the format is chosen by the suffix of ``filename``."""
    suffix = PurePath(filename).suffix.lower()
    if suffix in (".md", ".markdown"):
        rows = _markdown_rows(text)
    elif suffix == ".csv":
        rows = _csv_rows(text)
    elif suffix in (".yaml", ".yml"):
        rows = _yaml_rows(text, filename)
    else:
        raise KnowledgeImportError(
            f"{filename}: unsupported knowledge file type '{suffix or '(none)'}'"
            " (use .md, .csv, .yaml or .yml)"
        )
    report = ImportReport()
    seen: dict[str, int] = {}
    for row in rows:
        entry_or_reason = _build(row, bot)
        if isinstance(entry_or_reason, str):
            report.problems.append(ImportProblem(row.line, entry_or_reason))
            continue
        first = seen.get(entry_or_reason.key)
        if first is not None:
            report.problems.append(
                ImportProblem(row.line, f"duplicate of the entry on line {first}; skipped")
            )
            continue
        seen[entry_or_reason.key] = row.line
        report.entries.append(entry_or_reason)
    return report


@dataclass
class _Row:
    line: int
    question: str = ""
    answer: str = ""
    id: str = ""
    variants: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    error: str | None = None


def _build(row: _Row, bot: str | None) -> KnowledgeEntry | str:
    if row.error:
        return row.error
    question = " ".join(row.question.split())
    answer = row.answer.strip()
    if not question:
        return "missing question"
    if not answer:
        return "missing answer"
    if len(question) > MAX_QUESTION_CHARS:
        return f"question longer than {MAX_QUESTION_CHARS} characters"
    if len(answer) > MAX_ANSWER_CHARS:
        return f"answer longer than {MAX_ANSWER_CHARS} characters (Telegram's message limit)"
    key = row.id.strip() or normalize_key(question)
    variants = tuple(dict.fromkeys(v for v in (" ".join(x.split()) for x in row.variants) if v))
    tags = tuple(dict.fromkeys(t for t in (x.strip().casefold() for x in row.tags) if t))
    return KnowledgeEntry(key, question, variants, answer, tags, bot)


_HEADING = re.compile(r"^##(?!#)\s*(.*?)\s*#*\s*$")
_META = re.compile(r"^(id|also|tags)\s*:\s*(.*)$", re.IGNORECASE)


def _markdown_rows(text: str) -> list[_Row]:
    rows: list[_Row] = []
    current: _Row | None = None
    body: list[str] = []
    in_meta = False
    in_fence = False

    def close() -> None:
        if current is not None:
            current.answer = "\n".join(body).strip()
            rows.append(current)

    for lineno, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
        heading = None if in_fence else _HEADING.match(line)
        if heading:
            close()
            current, body, in_meta = _Row(line=lineno, question=heading.group(1)), [], True
            continue
        if current is None:
            continue  # preamble (title, intro) before the first question
        meta = _META.match(line.strip()) if in_meta else None
        if meta:
            name, value = meta.group(1).lower(), meta.group(2).strip()
            if name == "id":
                current.id = value
            elif name == "also":
                current.variants.append(value)
            else:
                current.tags.extend(_TAG_SPLIT.split(value))
            continue
        if in_meta and not line.strip() and not body:
            continue
        in_meta = False
        body.append(line)
    close()
    return rows


_CSV_COLUMNS = {"id", "question", "answer", "tags", "variants"}


def _csv_rows(text: str) -> list[_Row]:
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    rows: list[_Row] = []
    columns: list[str] | None = None
    for record in _numbered(reader):
        lineno, cells = record
        if not any(c.strip() for c in cells):
            continue
        lowered = [c.strip().casefold() for c in cells]
        if columns is None:
            if "question" in lowered and set(lowered) <= _CSV_COLUMNS | {""}:
                columns = lowered
                continue
            columns = ["question", "answer", "tags"]
        row = _Row(line=lineno)
        if len(cells) > len(columns) or len(cells) < 2:
            row.error = f"expected {len(columns)} columns ({','.join(columns)}), got {len(cells)}"
            rows.append(row)
            continue
        values = dict(zip(columns, cells, strict=False))
        row.question = values.get("question", "")
        row.answer = values.get("answer", "")
        row.id = values.get("id", "")
        row.variants = values.get("variants", "").split("|")
        row.tags = _TAG_SPLIT.split(values.get("tags", ""))
        rows.append(row)
    return rows


def _numbered(reader: Iterable[list[str]]) -> Iterator[tuple[int, list[str]]]:
    # csv.reader.line_num is the line where the record ENDS; a quoted multi-line answer would
    # otherwise report the wrong line, so remember where each record started.
    start = 1
    it = iter(reader)
    while True:
        try:
            cells = next(it)
        except StopIteration:
            return
        except csv.Error as exc:
            raise KnowledgeImportError(f"CSV syntax error near line {start}: {exc}") from exc
        yield start, cells
        start = reader.line_num + 1  # type: ignore[attr-defined]


def _yaml_rows(text: str, filename: str) -> list[_Row]:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise KnowledgeImportError(f"{filename}: YAML syntax error{where}") from exc
    if root is None:
        return []
    if isinstance(root, yaml.MappingNode):
        found = [
            v for k, v in root.value if isinstance(k, yaml.ScalarNode) and k.value == "entries"
        ]
        if not found:
            raise KnowledgeImportError(f"{filename}: expected a list of entries or 'entries:'")
        root = found[0]
    if not isinstance(root, yaml.SequenceNode):
        raise KnowledgeImportError(f"{filename}: expected a list of entries")
    loader = yaml.SafeLoader("")
    rows: list[_Row] = []
    try:
        for node in root.value:
            row = _Row(line=node.start_mark.line + 1)
            try:
                data = loader.construct_object(node, deep=True)
            except yaml.YAMLError as exc:
                row.error = f"unreadable entry: {getattr(exc, 'problem', exc)}"
                rows.append(row)
                continue
            _fill_from_mapping(row, data)
            rows.append(row)
    finally:
        loader.dispose()
    return rows


def _fill_from_mapping(row: _Row, data: Any) -> None:
    if not isinstance(data, dict):
        row.error = "entry is not a mapping with question and answer"
        return
    unknown = set(map(str, data)) - {"id", "question", "variants", "alternatives", "answer", "tags"}
    if unknown:
        row.error = f"unknown field(s): {', '.join(sorted(unknown))}"
        return
    for name in ("id", "question", "answer"):
        value = data.get(name)
        if value is not None and not isinstance(value, str | int | float):
            row.error = f"'{name}' must be text"
            return
        setattr(row, name, "" if value is None else str(value))
    variants = data.get("variants", data.get("alternatives")) or []
    tags = data.get("tags") or []
    if isinstance(variants, str):
        variants = [variants]
    if isinstance(tags, str):
        tags = _TAG_SPLIT.split(tags)
    if not isinstance(variants, list) or not isinstance(tags, list):
        row.error = "'variants' and 'tags' must be lists"
        return
    row.variants = [str(v) for v in variants]
    row.tags = [str(t) for t in tags]
