"""Knowledge base: import, list, remove entries and ask it questions."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer

from botdesk.cli.common import console, print_json, table, with_app

app = typer.Typer(no_args_is_help=True)


@app.command("import")
def import_(
    file: Path = typer.Argument(
        ...,
        help="Markdown (## question), CSV or YAML file. Versions in other languages: "
        "'### ru: question' in Markdown, question_ru/answer_ru columns in CSV, "
        "translations: {ru: {question, answer}} in YAML (docs/assistant.md).",
    ),
    bot: str | None = typer.Option(None, "--bot", help="Bot name; omit for the shared base."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Import entries; re-importing updates them in place. Bad rows are reported and skipped."""

    async def go(a):  # type: ignore[no-untyped-def]
        from botdesk import knowledge_base
        from botdesk.bots import BotRegistry

        if bot:
            await BotRegistry(a.db, a.secrets).get(bot)
        return await knowledge_base.import_file(a.db, file, bot=bot, now=datetime.now(UTC))

    res = with_app(go)
    if json_out:
        print_json(
            {
                "added": res.added,
                "updated": res.updated,
                "unchanged": res.unchanged,
                "problems": [{"line": p.line, "reason": p.reason} for p in res.problems],
            }
        )
        return
    console().print(
        f"{file}: {res.added} added, {res.updated} updated, {res.unchanged} unchanged, "
        f"{len(res.problems)} skipped"
    )
    err = console(stderr=True)
    for p in res.problems:
        err.print(f"  line {p.line}: {p.reason}", markup=False)


@app.command("list")
def list_(
    bot: str | None = typer.Option(None, "--bot", help="Bot name; omit for the shared base."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """List entries (a bot's own and the shared ones)."""

    async def go(a):  # type: ignore[no-untyped-def]
        from botdesk import knowledge_base

        return await knowledge_base.entries(a.db, bot=bot)

    entries = with_app(go)
    from botdesk import knowledge_base

    if json_out:
        print_json(
            [
                {
                    "key": e.key,
                    "scope": e.bot or "shared",
                    "question": e.question,
                    "variants": list(e.variants),
                    "answer": e.answer,
                    "tags": list(e.tags),
                    "translations": knowledge_base.translations_json(e) or {},
                }
                for e in entries
            ]
        )
        return
    table(
        None,
        ["key", "scope", "question", "answer", "versions"],
        [
            [
                e.key,
                e.bot or "shared",
                e.question,
                e.answer[:60],
                ", ".join(t.language for t in e.translations) or "-",
            ]
            for e in entries
        ],
    )


@app.command("remove")
def remove(
    key: str,
    bot: str | None = typer.Option(None, "--bot", help="Bot name; omit for the shared base."),
) -> None:
    """Remove one entry by its key (see `kb list`)."""

    async def go(a):  # type: ignore[no-untyped-def]
        from botdesk import knowledge_base

        await knowledge_base.remove(a.db, bot=bot, key=key)

    with_app(go)
    console().print(f"removed {key}")


@app.command("ask")
def ask(
    question: str,
    bot: str = typer.Option(..., "--bot"),
    language: str | None = typer.Option(
        None,
        "--lang",
        help="Subscriber's language code (Telegram's language_code); without it the question's "
        "detected language picks the entry's version.",
    ),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Ask the configured assistant as a subscriber would; shows answer, sources, confidence."""

    async def go(a):  # type: ignore[no-untyped-def]
        from botdesk.bots import BotRegistry
        from botdesk.runtime.assistant_port import build_assistant_port

        await BotRegistry(a.db, a.secrets).get(bot)
        port = await build_assistant_port(a)
        try:
            retriever = await port.index.ensure(bot)
            reply = await port.service.respond(
                bot=bot,
                chat_id=0,
                text=question,
                language=language,
                history=[],
                default_language=port.default_language.get(bot),
            )
            return reply, retriever, port.index.status
        finally:
            await port.aclose()

    reply, retriever, status = with_app(go)
    model = retriever.embedder.name if retriever.embedder is not None else None
    out = {
        "answer": reply.text,
        "sources": list(reply.sources),
        "confidence": round(reply.confidence, 3),
        "handoff": reply.handoff,
        "reason": reply.reason,
        # The entry version answered with; null: the knowledge base's own text.
        "language": reply.language,
        # Which retrieval answered: "lexical" when the model is missing, broken or disabled.
        "retrieval": "semantic" if retriever.semantic else "lexical",
        "model": model,
        "model_problem": status.problem if status is not None else None,
    }
    if json_out:
        print_json(out)
        return
    c = console()
    c.print(reply.text, markup=False)
    c.print(
        f"[dim]sources: {', '.join(reply.sources) or '-'}  confidence: {out['confidence']}"
        f"  handoff: {'yes (' + (reply.reason or '') + ')' if reply.handoff else 'no'}"
        f"  retrieval: {out['retrieval']}[/]"
    )
    if status is not None and status.embedder is None:
        c.print(status.describe(), style="yellow", markup=False)
