"""The AI assistant plugged into the runtime's assistant port.

Builds the configured provider (offline retrieval, Gemini, or an OpenAI-compatible server),
keeps one retriever per bot built from the knowledge base in the database (rebuilt in an
executor when the entries change), and turns the service's answer into a ``Reply``: a
handoff marks the conversation as needing a human, and the AI stays silent there.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from botdesk import knowledge_base
from botdesk.app import App
from botdesk.assistant.embeddings import EmbedderStatus, load_default_embedder
from botdesk.assistant.knowledge import KnowledgeEntry
from botdesk.assistant.providers.base import Provider, Turn
from botdesk.assistant.retrieval import DEFAULT_CONFIDENCE_THRESHOLD, Retriever
from botdesk.assistant.service import AssistantService
from botdesk.config import AssistantSettings
from botdesk.errors import ConfigError
from botdesk.inbox import MessageView
from botdesk.log import get_logger
from botdesk.runtime.ports import AutoReply, Inbound, Reply, ReplyContext
from botdesk.store.db import Database

log = get_logger(__name__)

DEFAULT_MODELS = {"gemini": "gemini-2.5-flash"}
KB_CHECK_EVERY_S = 5.0


def build_provider(settings: AssistantSettings, secrets: Any) -> Provider:
    """The provider named in the configuration; keys come from the secret store."""
    if settings.provider == "offline":
        from botdesk.assistant.providers.offline import OfflineProvider

        return OfflineProvider()
    key = secrets.get(settings.api_key_secret) if settings.api_key_secret else None
    if settings.provider == "gemini":
        from botdesk.assistant.providers.gemini import GeminiProvider

        if not key:
            raise ConfigError(
                "the gemini provider needs an API key: store it with `botdesk secrets set NAME` "
                "and set assistant.api_key_secret = NAME",
                key="assistant.api_key_secret",
            )
        return GeminiProvider(
            api_key=key,
            model=settings.model or DEFAULT_MODELS["gemini"],
            base_url=settings.base_url or None,
            timeout=settings.timeout,
        )
    from botdesk.assistant.providers.openai_compat import OpenAICompatProvider

    if not settings.base_url or not settings.model:
        raise ConfigError(
            "the openai provider needs assistant.base_url (e.g. http://127.0.0.1:8080/v1) "
            "and assistant.model",
            key="assistant.base_url",
        )
    return OpenAICompatProvider(
        base_url=settings.base_url, model=settings.model, api_key=key, timeout=settings.timeout
    )


def _turns(history: Sequence[MessageView]) -> list[Turn]:
    out: list[Turn] = []
    for m in history:
        if m.direction == "in":
            out.append(Turn("user", m.text))
        elif m.author == "operator":
            out.append(Turn("operator", m.text))
        else:
            out.append(Turn("assistant", m.text))
    return out


class KnowledgeIndex:
    """One retriever per bot, rebuilt off the event loop when its entries change.

    The embedding model (about 100 MB mapped) is loaded on the first build that has entries
    to embed, in the executor: a bot without a knowledge base never pays for it. Whether it
    loaded is logged once, in one line (``status``): without it answers come from lexical
    retrieval, and the operator must be able to see that.
    """

    def __init__(
        self,
        db: Database,
        *,
        load_embedder: Callable[[], EmbedderStatus] | None,
        executor: ThreadPoolExecutor,
    ) -> None:
        self.db = db
        self._load_embedder = load_embedder
        self.status = (
            EmbedderStatus(None, "disabled in the configuration (assistant.embeddings = false)")
            if load_embedder is None
            else None
        )
        self.executor = executor
        self._retrievers: dict[str, Retriever] = {}
        self._versions: dict[str, tuple[int, str]] = {}
        self._checked: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def ensure(self, bot: str, *, recheck_soon: bool = False) -> Retriever:
        """The bot's retriever, rebuilt when its entries changed (checked every few seconds).

        ``recheck_soon`` (the warm-up): the next call checks the version again instead of
        trusting this build for ``KB_CHECK_EVERY_S``: an import right after serve started
        must be seen by the first question."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        if bot in self._retrievers and now - self._checked.get(bot, 0.0) < KB_CHECK_EVERY_S:
            return self._retrievers[bot]
        async with self._locks.setdefault(bot, asyncio.Lock()):
            version = await knowledge_base.version(self.db, bot=bot)
            self._checked[bot] = loop.time()
            if bot not in self._retrievers or self._versions.get(bot) != version:
                entries = await knowledge_base.entries(self.db, bot=bot)
                self._retrievers[bot] = await loop.run_in_executor(
                    self.executor, self._build, entries
                )
                self._versions[bot] = version
                log.info("knowledge index built", bot=bot, entries=len(entries))
            if recheck_soon:
                self._checked.pop(bot, None)
        return self._retrievers[bot]

    def _build(self, entries: list[KnowledgeEntry]) -> Retriever:
        if entries and self._load_embedder is not None:
            self.status, self._load_embedder = self._load_embedder(), None
            if self.status.embedder is not None:
                log.info("assistant retrieval: " + self.status.describe())
            else:
                log.warning("assistant retrieval: " + self.status.describe())
        embedder = self.status.embedder if self.status is not None else None
        return Retriever.build(entries, embedder=embedder)

    def get(self, bot: str) -> Retriever:
        return self._retrievers[bot]

    def known(self, bot: str) -> Retriever | None:
        """The bot's retriever as last built, or None if none was built yet."""
        return self._retrievers.get(bot)

    def built(self, bot: str) -> bool:
        """Whether the bot's index has been built (by the warm-up or a first question)."""
        return bot in self._retrievers


class AIAssistantPort:
    def __init__(
        self,
        *,
        service: AssistantService,
        index: KnowledgeIndex,
        fallback: AutoReply,
        enabled: Mapping[str, bool],
        default_language: Mapping[str, str],
    ) -> None:
        self.service = service
        self.index = index
        self.fallback = fallback
        self.enabled = dict(enabled)
        self.default_language = dict(default_language)
        self._warm: asyncio.Task[None] | None = None

    def start_warm_up(self, bots: Sequence[str]) -> None:
        """Build the bots' indexes and run one query in the background, so that the first
        subscriber question does not wait for the model to load and touch its weights."""
        self._warm = asyncio.create_task(self._warm_up(list(bots)), name="assistant-warm-up")

    async def _warm_up(self, bots: list[str]) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        for bot in bots:
            if not self.enabled.get(bot, True):
                continue
            try:
                retriever = await self.index.ensure(bot, recheck_soon=True)
                if retriever.entries:
                    # The first query pays for the engine's first touch of its mapped weights.
                    await loop.run_in_executor(
                        self.index.executor, retriever.search, retriever.entries[0].question, 1
                    )
            except Exception as exc:  # a failed warm-up is retried by the first question
                log.warning("assistant warm-up failed", bot=bot, error=str(exc))
                continue
        log.info("assistant warmed up", bots=len(bots), seconds=round(loop.time() - started, 2))

    def answers(self, bot: str) -> bool:
        """False only when known: the fallback says nothing and the assistant is off or the
        bot's index was built without entries (a bot without a knowledge base)."""
        if self.fallback.answers(bot):
            return True
        if not self.enabled.get(bot, True):
            return False
        built = self.index.known(bot)
        return built is None or bool(built.entries)

    async def reply(self, msg: Inbound, ctx: ReplyContext) -> Reply | None:
        if not self.enabled.get(msg.bot, True):
            return await self.fallback.reply(msg, ctx)
        retriever = await self.index.ensure(msg.bot)
        if not retriever.entries:
            # Nothing to answer from: behave like a bot without an assistant.
            return await self.fallback.reply(msg, ctx)
        ctx.typing()
        history = await ctx.history()
        answer = await self.service.respond(
            bot=msg.bot,
            chat_id=msg.chat_id,
            text=msg.text,
            language=msg.language,
            history=_turns(history),
            default_language=self.default_language.get(msg.bot),
        )
        return Reply(
            text=answer.text,
            author="assistant",
            handoff_reason=(answer.reason or "handoff") if answer.handoff else None,
            meta={
                "sources": list(answer.sources),
                "confidence": round(answer.confidence, 3),
                "provider": answer.provider,
                "reason": answer.reason,
                "language": answer.language,
            },
        )

    async def aclose(self) -> None:
        if self._warm is not None and not self._warm.done():
            self._warm.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._warm
        await self.service.provider.aclose()
        self.index.executor.shutdown(wait=False, cancel_futures=True)


def open_index(app: App, executor: ThreadPoolExecutor) -> KnowledgeIndex:
    cache = Path(app.home.path) / "cache" / "embeddings"
    loader = (
        (lambda: load_default_embedder(cache_dir=cache))
        if app.settings.assistant.embeddings
        else None
    )
    return KnowledgeIndex(app.db, load_embedder=loader, executor=executor)


async def build_assistant_port(app: App, *, warm_up: bool = False) -> AIAssistantPort:
    """The assistant for ``serve``; ``warm_up`` (serve) builds every bot's index and loads
    the model in the background right away instead of on the first question."""
    s = app.settings
    cfg = s.assistant
    executor = ThreadPoolExecutor(max_workers=s.executor_size, thread_name_prefix="botdesk-kb")
    index = open_index(app, executor)
    service = AssistantService(
        provider=build_provider(cfg, app.secrets),
        retriever_for=index.get,
        per_subscriber_limit=cfg.per_subscriber_limit,
        per_seconds=cfg.per_seconds,
        history_token_budget=cfg.history_token_budget,
        confidence_threshold=cfg.confidence_threshold
        if cfg.confidence_threshold is not None
        else DEFAULT_CONFIDENCE_THRESHOLD,
        logger=get_logger("botdesk.assistant"),
        executor=executor,
    )
    port = AIAssistantPort(
        service=service,
        index=index,
        fallback=AutoReply.from_settings(s),
        enabled={n: o.assistant for n, o in s.bots.items()},
        default_language={n: o.language for n, o in s.bots.items()},
    )
    if warm_up:
        from botdesk.bots import BotRegistry

        port.start_warm_up([r.name for r in await BotRegistry(app.db, app.secrets).list()])
    return port
