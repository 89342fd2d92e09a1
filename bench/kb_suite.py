"""The generalisation suite: several knowledge bases, each with hand-written questions.

Read by bench/assistant_quality.py --kbs. bench/data/kb/manifest.yaml names each base, its
language, and whether it is a *tune* base (thresholds may be chosen on it) or *held-out* (only
reported). The Telegram FAQ is third-party text kept in the shared data folder beside the
repository, not copied into it; a base whose file is missing is reported as skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from botdesk.assistant.knowledge import KnowledgeEntry, parse_knowledge

REPO = Path(__file__).resolve().parents[1]
SUITE = REPO / "bench" / "data" / "kb"
SHARED = REPO.parent / "shared"


@dataclass(frozen=True)
class Question:
    text: str
    expect: frozenset[str] | None  # entry keys that answer it; None: out of scope
    lang: str


@dataclass(frozen=True)
class KnowledgeBase:
    name: str
    role: str
    lang: str
    shape: str
    entries: list[KnowledgeEntry]
    questions: list[Question]


def _path(spec: str) -> Path:
    if spec.startswith("shared:"):
        return SHARED / spec.removeprefix("shared:")
    return (SUITE / spec).resolve()


def _resolve(expect: object, keys: list[str], where: str) -> frozenset[str] | None:
    """An expected id is an exact key or a substring of exactly one key."""
    if expect is None:
        return None
    wanted = expect if isinstance(expect, list) else [expect]
    out = set()
    for w in wanted:
        w = str(w).casefold()
        if w in keys:
            out.add(w)
            continue
        found = [k for k in keys if w in k.casefold()]
        if len(found) != 1:
            raise SystemExit(f"{where}: expect {w!r} matches {len(found)} entries: {found[:5]}")
        out.add(found[0])
    return frozenset(out)


def _questions(path: Path, keys: list[str], lang: str) -> list[Question]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    # The older single-base file has tune/test splits (and tune_lang, its questions in other
    # languages); the suite reads them all as one set.
    rows = data.get("questions") or [
        *data.get("tune", []),
        *data.get("test", []),
        *data.get("tune_lang", []),
    ]
    return [
        Question(
            r["q"], _resolve(r["expect"], keys, f"{path.name}: {r['q']!r}"), r.get("lang", lang)
        )
        for r in rows
    ]


def load_suite() -> tuple[list[KnowledgeBase], list[str]]:
    """The bases that could be read, and one line per base skipped for a missing file."""
    manifest = yaml.safe_load((SUITE / "manifest.yaml").read_text(encoding="utf-8"))
    bases, skipped = [], []
    for spec in manifest["knowledge_bases"]:
        kb_path = _path(spec["kb"])
        if not kb_path.is_file():
            skipped.append(f"{spec['name']}: {kb_path} not found, skipped")
            continue
        report = parse_knowledge(
            kb_path.read_text(encoding="utf-8"), filename=kb_path.name, bot=None
        )
        if report.problems:
            raise SystemExit(f"{kb_path}: {[str(p) for p in report.problems]}")
        keys = [e.key for e in report.entries]
        bases.append(
            KnowledgeBase(
                spec["name"],
                spec["role"],
                spec["lang"],
                spec["shape"],
                report.entries,
                _questions(_path(spec["questions"]), keys, spec["lang"]),
            )
        )
    return bases, skipped
