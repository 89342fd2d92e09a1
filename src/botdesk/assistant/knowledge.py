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

Versions in other languages (``Translation``; the entry's own text is the knowledge base's
language, a version is keyed by an ISO 639-1 code such as ``ru`` or ``pt-br``):

- Markdown: a ``### ru: translated question`` sub-heading inside the entry starts its Russian
  version; ``also:`` lines directly under it are that version's variants, the text below is
  its answer. Only a known two-letter code before the colon makes such a heading a version
  (``### Note: ...`` stays answer text).
- CSV: header columns ``question_ru``, ``answer_ru``, ``variants_ru`` (any code).
- YAML: ``translations: {ru: {question: ..., variants: [...], answer: ...}}``; a version's
  ``question`` and ``variants`` are optional, its ``answer`` is required.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

import yaml

from botdesk.assistant.language import detect_language
from botdesk.errors import KnowledgeImportError

# Telegram refuses messages over 4096 characters; an answer we could never send is a bad row.
MAX_ANSWER_CHARS = 4096
MAX_QUESTION_CHARS = 500
_TAG_SPLIT = re.compile(r"[,;|]")


# ISO 639-1: a version's language must be one of these (so "### To: ..." is not a version).
LANGUAGE_CODES = frozenset(
    "aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv"
    " cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr"
    " ht hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw"
    " ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv"
    " ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr"
    " ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi"
    " yo za zh zu".split()
)
_LANGUAGE = re.compile(r"^([a-z]{2})(?:[-_]([a-z]{2,4}))?$")


def language_code(value: str) -> str | None:
    """``ru``, ``pt-br`` (lower-case, ``-``) for a valid code, else None."""
    m = _LANGUAGE.match(value.strip().casefold())
    if m is None or m.group(1) not in LANGUAGE_CODES:
        return None
    return m.group(1) + (f"-{m.group(2)}" if m.group(2) else "")


@dataclass(frozen=True)
class Translation:
    """An entry's version in another language; ``question`` may be empty (answer only)."""

    language: str
    question: str
    variants: tuple[str, ...]
    answer: str

    @property
    def phrasings(self) -> tuple[str, ...]:
        return tuple(p for p in (self.question, *self.variants) if p)


@dataclass(frozen=True)
class KnowledgeEntry:
    key: str
    question: str
    variants: tuple[str, ...]
    answer: str
    tags: tuple[str, ...] = ()
    bot: str | None = None  # None: the shared knowledge base
    translations: tuple[Translation, ...] = ()

    @property
    def phrasings(self) -> tuple[str, ...]:
        """The question followed by its alternative phrasings."""
        return (self.question, *self.variants)

    @property
    def all_phrasings(self) -> tuple[str, ...]:
        """Phrasings of every version: retrieval matches a question against all of them."""
        return (*self.phrasings, *(p for t in self.translations for p in t.phrasings))

    @property
    def language(self) -> str | None:
        """The language the entry's own text is written in (detected), None if unsure."""
        return detect_language(f"{self.question} {self.answer}")

    def version(self, languages: Sequence[str | None]) -> Translation | None:
        """The version in the first of ``languages`` that has one (``pt-br`` also takes
        ``pt``, ``pt`` also takes ``pt-br``); None: answer with the entry's own text, also
        when the first language that matches anything is the entry's own."""
        own = self.language if self.translations else None
        for wanted in languages:
            code = language_code(wanted) if wanted else None
            if code is None:
                continue
            base = code.split("-")[0]
            if base == own:
                return None
            exact = [t for t in self.translations if t.language == code]
            near = [t for t in self.translations if t.language.split("-")[0] == base]
            if exact or near:
                return (exact or near)[0]
        return None

    def question_in(self, languages: Sequence[str | None]) -> str:
        found = self.version(languages)
        return found.question if found is not None and found.question else self.question

    def answer_in(self, languages: Sequence[str | None]) -> str:
        found = self.version(languages)
        return found.answer if found is not None else self.answer


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
    # language -> [question, variants, answer]
    translations: dict[str, _Version] = field(default_factory=dict)
    error: str | None = None


@dataclass
class _Version:
    question: str = ""
    answer: str = ""
    variants: list[str] = field(default_factory=list)


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
    variants = _clean_variants(row.variants)
    tags = tuple(dict.fromkeys(t for t in (x.strip().casefold() for x in row.tags) if t))
    translations = []
    for language, v in row.translations.items():
        t_question, t_answer = " ".join(v.question.split()), v.answer.strip()
        if not t_answer and not t_question and not any(x.strip() for x in v.variants):
            continue  # an empty CSV cell: no version in that language
        if not t_answer:
            return f"the '{language}' version has no answer"
        if len(t_question) > MAX_QUESTION_CHARS:
            return f"the '{language}' question is longer than {MAX_QUESTION_CHARS} characters"
        if len(t_answer) > MAX_ANSWER_CHARS:
            return f"the '{language}' answer is longer than {MAX_ANSWER_CHARS} characters"
        translations.append(
            Translation(language, t_question, _clean_variants(v.variants), t_answer)
        )
    return KnowledgeEntry(key, question, variants, answer, tags, bot, tuple(translations))


def _clean_variants(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in (" ".join(x.split()) for x in values) if v))


_HEADING = re.compile(r"^##(?!#)\s*(.*?)\s*#*\s*$")
_VERSION_HEADING = re.compile(r"^###(?!#)\s*([a-z]{2}(?:-[A-Za-z]{2,4})?)\s*:\s*(.*?)\s*$")
_META = re.compile(r"^(id|also|tags)\s*:\s*(.*)$", re.IGNORECASE)


def _markdown_rows(text: str) -> list[_Row]:
    rows: list[_Row] = []
    current: _Row | None = None
    version: _Version | None = None  # the "### ru: ..." version being read, if any
    body: list[str] = []
    in_meta = False
    in_fence = False

    def close_body() -> None:
        if current is None:
            return
        if version is not None:
            version.answer = "\n".join(body).strip()
        else:
            current.answer = "\n".join(body).strip()

    def close() -> None:
        if current is not None:
            close_body()
            rows.append(current)

    for lineno, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
        heading = None if in_fence else _HEADING.match(line)
        if heading:
            close()
            current, body, in_meta = _Row(line=lineno, question=heading.group(1)), [], True
            version = None
            continue
        if current is None:
            continue  # preamble (title, intro) before the first question
        sub = None if in_fence else _VERSION_HEADING.match(line)
        language = language_code(sub.group(1)) if sub else None
        if sub and language is not None:
            close_body()
            if language in current.translations:
                current.error = f"a second '{language}' version (line {lineno})"
            version = current.translations.setdefault(language, _Version())
            version.question = sub.group(2)
            body, in_meta = [], True
            continue
        meta = _META.match(line.strip()) if in_meta else None
        if meta:
            name, value = meta.group(1).lower(), meta.group(2).strip()
            if version is not None:
                if name != "also":
                    current.error = f"only 'also:' may follow a version heading (line {lineno})"
                version.variants.append(value)
            elif name == "id":
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
_CSV_VERSION_COLUMN = re.compile(r"^(question|answer|variants)_([a-z]{2}(?:[-_][a-z]{2,4})?)$")


def _csv_column(name: str) -> bool:
    m = _CSV_VERSION_COLUMN.match(name)
    return name in _CSV_COLUMNS or name == "" or (m is not None and bool(language_code(m[2])))


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
            if "question" in lowered and all(_csv_column(c) for c in lowered):
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
        for name, value in values.items():
            m = _CSV_VERSION_COLUMN.match(name)
            code = language_code(m[2]) if m else None
            if m is None or code is None:
                continue
            version = row.translations.setdefault(code, _Version())
            if m[1] == "variants":
                version.variants = value.split("|")
            else:
                setattr(version, m[1], value)
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
    unknown = set(map(str, data)) - {
        "id", "question", "variants", "alternatives", "answer", "tags", "translations",
    }  # fmt: skip
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
    translations = data.get("translations") or {}
    if not isinstance(translations, dict):
        row.error = "'translations' must map language codes to {question, variants, answer}"
        return
    for name, value in translations.items():
        code = language_code(str(name))
        if code is None:
            row.error = f"'{name}' in translations is not a language code (ISO 639-1: ru, pt-br)"
            return
        if isinstance(value, str):
            value = {"answer": value}  # the short form: `ru: translated answer`
        if not isinstance(value, dict) or set(map(str, value)) - {
            "question", "variants", "alternatives", "answer",
        }:  # fmt: skip
            row.error = f"translations.{name}: expected question, variants and answer"
            return
        t_variants = value.get("variants", value.get("alternatives")) or []
        if isinstance(t_variants, str):
            t_variants = [t_variants]
        if not isinstance(t_variants, list):
            row.error = f"translations.{name}.variants must be a list"
            return
        row.translations[code] = _Version(
            question=str(value.get("question") or ""),
            answer=str(value.get("answer") or ""),
            variants=[str(v) for v in t_variants],
        )
