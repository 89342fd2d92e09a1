"""Versions in other languages end to end: `kb import` through the CLI stores them, `kb ask`
answers with the version in the asked language, and the serving runtime answers a
Russian-speaking sandbox user (Telegram language_code "ru") with the Russian version."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from tests.e2e.support import eventually, register, running

from botdesk import inbox
from botdesk.app import App, open_app
from botdesk.cli.main import main
from botdesk.sandbox.testing import running_sandbox

KB = """## How much does shipping cost?
Standard shipping is 4.95 EUR and free for orders over 60 EUR.

### ru: Сколько стоит доставка?
also: цена доставки
Стандартная доставка стоит 4,95 EUR, бесплатно для заказов от 60 EUR.

### de: Was kostet der Versand?
Der Standardversand kostet 4,95 EUR, ab 60 EUR ist er kostenlos.

## Can I return an item?
You have 30 days from delivery to return unworn items.
"""


async def _cli(*args: str) -> int:
    return await asyncio.to_thread(main, list(args))


def _json(out: str) -> Any:
    start = min(i for i in (out.find("{"), out.find("[")) if i >= 0)
    return json.loads(out[start:])


async def test_kb_import_and_ask_through_the_cli(home: Path, tmp_path: Path, capsys: Any) -> None:
    h = ["--home", str(home)]
    async with running_sandbox(seed=5) as sb:
        async with open_app(home, configure_logs=False) as app:
            await register(app, sb, "shop", "shop_bot")
        kb = tmp_path / "faq.md"
        kb.write_text(KB)
        capsys.readouterr()
        assert await _cli(*h, "kb", "import", str(kb), "--bot", "shop", "--json") == 0
        assert _json(capsys.readouterr().out)["added"] == 2
        # Re-importing the same file changes nothing; editing a version updates the entry.
        assert await _cli(*h, "kb", "import", str(kb), "--bot", "shop", "--json") == 0
        assert _json(capsys.readouterr().out)["unchanged"] == 2
        kb.write_text(KB.replace("4,95 EUR, ab", "4,90 EUR, ab"))
        assert await _cli(*h, "kb", "import", str(kb), "--bot", "shop", "--json") == 0
        assert _json(capsys.readouterr().out)["updated"] == 1

        assert await _cli(*h, "kb", "list", "--bot", "shop", "--json") == 0
        listed = {e["key"]: e for e in _json(capsys.readouterr().out)}
        ship = listed["how much does shipping cost"]
        assert sorted(ship["translations"]) == ["de", "ru"]
        assert ship["translations"]["ru"]["variants"] == ["цена доставки"]
        assert ship["translations"]["de"]["answer"].startswith("Der Standardversand kostet 4,90")
        assert listed["can i return an item"]["translations"] == {}

        ask = [*h, "kb", "ask", "--bot", "shop", "--json"]
        assert await _cli(*ask, "сколько стоит доставка?", "--lang", "ru") == 0
        out = _json(capsys.readouterr().out)
        assert out["answer"].startswith("Стандартная доставка") and out["language"] == "ru"
        assert out["sources"] == ["how much does shipping cost"] and not out["handoff"]
        # No --lang: the question's detected language picks the version.
        assert await _cli(*ask, "Was kostet der Versand nach Berlin?") == 0
        out = _json(capsys.readouterr().out)
        assert out["answer"].startswith("Der Standardversand") and out["language"] == "de"
        # A language without a version: the knowledge base's own text.
        assert await _cli(*ask, "how much is shipping", "--lang", "fr") == 0
        out = _json(capsys.readouterr().out)
        assert out["answer"].startswith("Standard shipping") and out["language"] is None


@asynccontextmanager
async def shop_with_kb(home: Path, tmp_path: Path, seed: int) -> AsyncIterator[tuple[Any, App]]:
    """A sandbox, the app, and bot "shop" whose knowledge base was imported with the CLI."""
    kb = tmp_path / "faq.md"
    kb.write_text(KB)
    async with running_sandbox(seed=seed) as sb, open_app(home, configure_logs=False) as app:
        await register(app, sb, "shop", "shop_bot")
        assert await _cli("--home", str(home), "kb", "import", str(kb), "--bot", "shop") == 0
        yield sb, app


async def test_serve_answers_a_russian_speaking_user_with_the_russian_version(
    home: Path, tmp_path: Path
) -> None:
    async with shop_with_kb(home, tmp_path, 7) as (sb, app):
        ru, en = sb.add_users(2)
        for user, code in ((ru, "ru"), (en, "en")):
            sb.world.user(user.id).info = dataclasses.replace(user, language_code=code)

        def texts(chat_id: int) -> list[str]:
            return [m.get("text") or "" for m in sb.messages(bot="shop_bot", chat_id=chat_id)]

        async with running(app):
            for user in (ru, en):
                await sb.user_start(user.id, "shop_bot")
            await sb.user_send(ru.id, "shop_bot", "сколько стоит доставка?")
            await sb.user_send(en.id, "shop_bot", "how much is shipping??")

            async def both_answered() -> bool:
                return any("Стандартная доставка" in t for t in texts(ru.id)) and any(
                    "Standard shipping" in t for t in texts(en.id)
                )

            await eventually(both_answered, within=60)
        assert not any("Standard shipping" in t for t in texts(ru.id))
        msgs = await inbox.show(app.db, bot="shop", chat_id=ru.id)
        answer = next(m for m in msgs if "Стандартная доставка" in m.text)
        assert answer.author == "assistant" and answer.meta is not None
        assert answer.meta["language"] == "ru"
        assert answer.meta["sources"] == ["how much does shipping cost"]


async def test_serve_builds_the_index_at_start_before_any_question(
    home: Path, tmp_path: Path
) -> None:
    from botdesk.runtime.assistant_port import AIAssistantPort

    async with shop_with_kb(home, tmp_path, 9) as (sb, app):
        await register(app, sb, "empty", "empty_bot")  # no knowledge base: nothing to warm
        async with running(app) as rt:
            port = rt.port
            assert isinstance(port, AIAssistantPort)

            async def warmed() -> bool:
                return port.index.built("shop") and port.index.built("empty")

            await eventually(warmed, within=60)
            assert port.index.get("shop").entries and not port.index.get("empty").entries
            # Nobody has written: the build came from the warm-up.
            assert await inbox.list_conversations(app.db, bot="shop") == []
            # A knowledge base imported right after the warm-up is seen by the first question.
            kb = tmp_path / "faq.md"
            assert await _cli("--home", str(home), "kb", "import", str(kb), "--bot", "empty") == 0
            (user,) = sb.add_users(1)
            await sb.user_send(user.id, "empty_bot", "how much is shipping??")

            async def answered() -> bool:
                msgs = sb.messages(bot="empty_bot", chat_id=user.id)
                return any("Standard shipping" in (m.get("text") or "") for m in msgs)

            await eventually(answered, within=60)
