"""The operator's knowledge base in the database: import, list, remove, load for retrieval.

Entries belong to one bot (scope = the bot's name) or to the shared base (scope ``*``), which
every bot also answers from. Re-importing a file updates entries in place by their key (see
``assistant.knowledge.normalize_key``); the file format parsers live in
``assistant/knowledge.py`` and report bad rows with their line while keeping good ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, update

from botdesk.assistant.knowledge import (
    ImportProblem,
    KnowledgeEntry,
    Translation,
    parse_knowledge,
)
from botdesk.errors import KnowledgeImportError, NotFoundError
from botdesk.store.db import Database
from botdesk.store.models import KnowledgeEntryRow
from botdesk.textfiles import read_text

SHARED = "*"
MAX_FILE_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class ImportResult:
    added: int
    updated: int
    unchanged: int
    problems: list[ImportProblem]


def scope_of(bot: str | None) -> str:
    return bot if bot else SHARED


def translations_json(entry: KnowledgeEntry) -> dict[str, Any] | None:
    """The entry's versions as stored (None when it has none)."""
    if not entry.translations:
        return None
    return {
        t.language: {"question": t.question, "variants": list(t.variants), "answer": t.answer}
        for t in entry.translations
    }


def _translations(stored: Any) -> tuple[Translation, ...]:
    if not isinstance(stored, dict):
        return ()
    return tuple(
        Translation(
            str(lang),
            str(v.get("question") or ""),
            tuple(str(x) for x in v.get("variants") or ()),
            str(v.get("answer") or ""),
        )
        for lang, v in stored.items()
        if isinstance(v, dict) and v.get("answer")
    )


def read_file(path: Path) -> str:
    return read_text(path, limit=MAX_FILE_BYTES, error=KnowledgeImportError)


async def import_file(db: Database, path: Path, *, bot: str | None, now: datetime) -> ImportResult:
    report = parse_knowledge(read_file(path), filename=path.name, bot=bot)
    if not report.entries and report.problems:
        first = report.problems[0]
        raise KnowledgeImportError(
            f"{path}: no valid entries ({len(report.problems)} problems; "
            f"line {first.line}: {first.reason})"
        )
    scope = scope_of(bot)
    added = updated = unchanged = 0
    async with db.write() as conn:
        existing = {
            r.key: r
            for r in (
                await conn.execute(
                    select(
                        KnowledgeEntryRow.key,
                        KnowledgeEntryRow.question,
                        KnowledgeEntryRow.variants,
                        KnowledgeEntryRow.answer,
                        KnowledgeEntryRow.tags,
                        KnowledgeEntryRow.translations,
                    ).where(KnowledgeEntryRow.scope == scope)
                )
            ).all()
        }
        for e in report.entries:
            values = {
                "question": e.question,
                "variants": list(e.variants),
                "answer": e.answer,
                "tags": list(e.tags),
                "translations": translations_json(e),
            }
            old = existing.get(e.key)
            if old is None:
                await conn.execute(
                    insert(KnowledgeEntryRow).values(
                        scope=scope, key=e.key, updated_at=now, **values
                    )
                )
                added += 1
            elif (
                old.question,
                list(old.variants),
                old.answer,
                list(old.tags),
                old.translations or None,
            ) != (e.question, list(e.variants), e.answer, list(e.tags), values["translations"]):
                await conn.execute(
                    update(KnowledgeEntryRow)
                    .where(KnowledgeEntryRow.scope == scope, KnowledgeEntryRow.key == e.key)
                    .values(updated_at=now, **values)
                )
                updated += 1
            else:
                unchanged += 1
    return ImportResult(added, updated, unchanged, list(report.problems))


async def entries(
    db: Database, *, bot: str | None, include_shared: bool = True
) -> list[KnowledgeEntry]:
    """Entries a bot answers from: its own and (by default) the shared ones."""
    scopes = [scope_of(bot)]
    if bot and include_shared:
        scopes.append(SHARED)
    async with db.read() as conn:
        rows = (
            await conn.execute(
                select(
                    KnowledgeEntryRow.scope,
                    KnowledgeEntryRow.key,
                    KnowledgeEntryRow.question,
                    KnowledgeEntryRow.variants,
                    KnowledgeEntryRow.answer,
                    KnowledgeEntryRow.tags,
                    KnowledgeEntryRow.translations,
                )
                .where(KnowledgeEntryRow.scope.in_(scopes))
                .order_by(KnowledgeEntryRow.id)
            )
        ).all()
    return [
        KnowledgeEntry(
            key=r.key,
            question=r.question,
            variants=tuple(r.variants or ()),
            answer=r.answer,
            tags=tuple(r.tags or ()),
            bot=None if r.scope == SHARED else r.scope,
            translations=_translations(r.translations),
        )
        for r in rows
    ]


async def version(db: Database, *, bot: str) -> tuple[int, str]:
    """Changes whenever the bot's (or the shared) entries change: rebuild retrieval then."""
    async with db.read() as conn:
        n, latest = (
            await conn.execute(
                select(func.count(), func.max(KnowledgeEntryRow.updated_at)).where(
                    or_(KnowledgeEntryRow.scope == bot, KnowledgeEntryRow.scope == SHARED)
                )
            )
        ).one()
    return int(n), str(latest)


async def remove(db: Database, *, bot: str | None, key: str) -> None:
    async with db.write() as conn:
        res = await conn.execute(
            delete(KnowledgeEntryRow).where(
                KnowledgeEntryRow.scope == scope_of(bot), KnowledgeEntryRow.key == key
            )
        )
    if not res.rowcount:
        where = f"bot '{bot}'" if bot else "the shared knowledge base"
        raise NotFoundError(f"no entry with key {key!r} in {where} (see `botdesk kb list`)")


async def save_entry(
    db: Database,
    *,
    bot: str | None,
    key: str,
    question: str,
    answer: str,
    variants: tuple[str, ...] = (),
    tags: tuple[str, ...] = (),
    now: datetime,
) -> bool:
    """Add or replace one entry (the console's editor); True when it was new."""
    key, question, answer = key.strip(), question.strip(), answer.strip()
    if not key or len(key) > 200:
        raise KnowledgeImportError("an entry needs a key of 1-200 characters")
    if not question or not answer:
        raise KnowledgeImportError("an entry needs a question and an answer")
    scope = scope_of(bot)
    values = {
        "question": question,
        "variants": [v.strip() for v in variants if v.strip()],
        "answer": answer,
        "tags": [t.strip() for t in tags if t.strip()],
        "updated_at": now,
    }
    async with db.write() as conn:
        res = await conn.execute(
            update(KnowledgeEntryRow)
            .where(KnowledgeEntryRow.scope == scope, KnowledgeEntryRow.key == key)
            .values(**values)
        )
        if res.rowcount:
            return False
        await conn.execute(insert(KnowledgeEntryRow).values(scope=scope, key=key, **values))
    return True
