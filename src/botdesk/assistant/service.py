"""The assistant's decision pipeline for one incoming question.

Owns ``AssistantService.respond``: explicit requests for a human, the per-subscriber answer
limit, retrieval and the confidence threshold, the circuit breaker, calling the provider with
the retry table of ``failures``, history trimming to a token budget, and the final reply
(text in the subscriber's language, sources, confidence, handoff flag and an internal reason).

Not owned here (the runtime's job): idempotency per update, the "typing" action, and keeping
the AI silent while a conversation needs a human. ``respond`` is called only when the AI should
speak, and the caller marks the conversation as needing a human when ``reply.handoff`` is set.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import Any, Protocol

import structlog

from botdesk.assistant.failures import (
    OPERATOR_SEVERITY,
    BreakerState,
    CircuitBreaker,
    Clock,
    ProviderFailure,
    retry_delay,
)
from botdesk.assistant.language import answer_languages
from botdesk.assistant.providers.base import AssistantReply, AssistantRequest, Provider, Turn
from botdesk.assistant.retrieval import DEFAULT_CONFIDENCE_THRESHOLD, Hit, Retriever
from botdesk.assistant.texts import text_for

DEFAULT_PER_SUBSCRIBER_LIMIT = 10
DEFAULT_PER_SECONDS = 60.0
DEFAULT_HISTORY_TOKEN_BUDGET = 1500
DEFAULT_TOP_K = 5
_CHARS_PER_TOKEN = 4  # a rough, model-independent estimate; the budget is a safety margin

# Word prefixes that ask for a person, in the languages botdesk ships texts for (plus Russian,
# which many Ukrainian-speaking subscribers type). Matched on word starts, case-insensitive.
_HUMAN_PATTERNS = [
    r"humans?\b",
    r"real person",
    r"live (?:agent|person|chat)\b",
    r"(?:operator|agent)s?\b",
    r"(?:talk|speak|chat) (?:to|with) (?:a |an |some)?(?:person|someone|somebody|people)\b",
    r"customer service rep",
    r"mensch(?:en)?\b",
    r"mitarbeiter(?:in)?\b",
    r"echte[nr]? person",
    r"humano\b",
    r"persona real",
    r"agente\b",
    # Slavic words inflect at the end: match the stem.
    r"людин",
    r"оператор",
    r"менеджер",
    r"человек",
    r"живой",
]
_HUMAN = re.compile(r"(?<!\w)(?:" + "|".join(_HUMAN_PATTERNS) + ")", re.IGNORECASE)


def asks_for_human(text: str) -> bool:
    return _HUMAN.search(text) is not None


def estimate_tokens(text: str) -> int:
    return max(1, len(text) // _CHARS_PER_TOKEN)


def trim_history(history: list[Turn], budget: int) -> list[Turn]:
    """The most recent turns whose estimated size fits ``budget`` tokens, oldest first."""
    kept: list[Turn] = []
    used = 0
    for turn in reversed(history):
        cost = estimate_tokens(turn.text)
        if used + cost > budget:
            break
        kept.append(turn)
        used += cost
    kept.reverse()
    return kept


class _Logger(Protocol):
    def info(self, event: str, **kw: Any) -> Any: ...
    def warning(self, event: str, **kw: Any) -> Any: ...
    def error(self, event: str, **kw: Any) -> Any: ...


class AssistantService:
    def __init__(
        self,
        *,
        provider: Provider,
        retriever_for: Callable[[str], Retriever],
        clock: Clock = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        per_subscriber_limit: int = DEFAULT_PER_SUBSCRIBER_LIMIT,
        per_seconds: float = DEFAULT_PER_SECONDS,
        history_token_budget: int = DEFAULT_HISTORY_TOKEN_BUDGET,
        confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD,
        top_k: int = DEFAULT_TOP_K,
        breaker: CircuitBreaker | None = None,
        logger: _Logger | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.provider = provider
        self._retriever_for = retriever_for
        self._clock = clock
        self._sleep = sleep
        self._limit = per_subscriber_limit
        self._window = per_seconds
        self._budget = history_token_budget
        self.confidence_threshold = confidence_threshold
        self._top_k = top_k
        self.breaker = breaker or CircuitBreaker(clock=clock)
        self._log: _Logger = logger or structlog.get_logger("botdesk.assistant")
        self._executor = executor
        self._recent: dict[tuple[str, int], deque[float]] = {}

    async def respond(
        self,
        *,
        bot: str,
        chat_id: int,
        text: str,
        language: str | None,
        history: list[Turn],
        default_language: str | None = None,
    ) -> AssistantReply:
        """``language``: Telegram's ``language_code`` (None when the client sent none); the
        answer's version is chosen in it, else in the question's detected language, else in
        ``default_language`` (the bot's), else the knowledge base's own text is the answer."""
        languages = answer_languages(language, text)
        if default_language and default_language not in languages:
            languages.append(default_language)
        language = languages[0] if languages else None
        if asks_for_human(text):
            return self._handoff("handoff_requested", "human_requested", language, 1.0)
        if not self._admit(bot, chat_id):
            self._log.info("assistant.subscriber_limit", bot=bot, chat_id=chat_id)
            return AssistantReply(
                text_for("subscriber_limit", language), [], 0.0, False, "subscriber_limit"
            )
        hits = await self._search(bot, text)
        top = hits[0].confidence if hits else 0.0
        if top < self.confidence_threshold:
            return self._handoff("handoff_low_confidence", "low_confidence", language, top)
        if not self.breaker.allow():
            self._log.warning("assistant.circuit_open", bot=bot, provider=self.provider.name)
            return self._handoff("handoff_unavailable", "circuit_open", language, top)
        request = AssistantRequest(
            text, trim_history(history, self._budget), hits, language, languages
        )
        reply = await self._call_with_retries(request, bot=bot, language=language)
        if reply.handoff and reply.reason in ("not_in_kb", "ungrounded"):
            return self._handoff("handoff_low_confidence", reply.reason, language, reply.confidence)
        return reply

    def _admit(self, bot: str, chat_id: int) -> bool:
        now = self._clock()
        recent = self._recent.setdefault((bot, chat_id), deque())
        while recent and now - recent[0] >= self._window:
            recent.popleft()
        if len(recent) >= self._limit:
            return False
        recent.append(now)
        if len(self._recent) > 10_000:  # forget idle subscribers so memory stays bounded
            for key in [k for k, q in self._recent.items() if not q or now - q[-1] >= self._window]:
                del self._recent[key]
        return True

    async def _search(self, bot: str, text: str) -> list[Hit]:
        retriever = self._retriever_for(bot)
        if self._executor is None:
            return retriever.search(text, self._top_k)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, retriever.search, text, self._top_k)

    async def _call_with_retries(
        self, request: AssistantRequest, *, bot: str, language: str | None
    ) -> AssistantReply:
        attempt = 1
        while True:
            try:
                reply = await self.provider.answer(request)
            except ProviderFailure as failure:
                self.breaker.record_failure(failure.kind)
                delay = retry_delay(failure, attempt)
                self._report(failure, bot=bot, attempt=attempt, final=delay is None)
                if delay is None or self.breaker.state is BreakerState.OPEN:
                    return self._failure_reply(failure, language, request)
                await self._sleep(delay)
                attempt += 1
                continue
            self.breaker.record_success()
            reply.provider = reply.provider or self.provider.name
            return reply

    def _report(self, failure: ProviderFailure, *, bot: str, attempt: int, final: bool) -> None:
        fields: dict[str, Any] = {
            "bot": bot,
            "provider": self.provider.name,
            "kind": failure.kind,
            "attempt": attempt,
            "final": final,
            "detail": failure.detail,
        }
        if failure.retry_after is not None:
            fields["retry_after"] = failure.retry_after
        severity = OPERATOR_SEVERITY[failure.kind]
        if severity == "alert":
            self._log.error("assistant.provider_misconfigured", alert=True, **fields)
        elif severity == "warning":
            self._log.warning("assistant.provider_quota", **fields)
        else:
            self._log.info("assistant.provider_failed", **fields)

    def _failure_reply(
        self, failure: ProviderFailure, language: str | None, request: AssistantRequest
    ) -> AssistantReply:
        top = request.hits[0].confidence if request.hits else 0.0
        # The provider itself is failing (or the breaker just opened): a person takes over.
        if (
            failure.kind in ("auth", "not_found", "server")
            or self.breaker.state is BreakerState.OPEN
        ):
            return self._handoff("handoff_unavailable", f"provider_{failure.kind}", language, top)
        return AssistantReply(
            text_for(failure.kind, language), [], top, False, f"provider_{failure.kind}"
        )

    def _handoff(
        self, key: Any, reason: str, language: str | None, confidence: float
    ) -> AssistantReply:
        return AssistantReply(
            text_for(key, language), [], confidence, True, reason, provider=self.provider.name
        )
