"""AssistantService: handoff rules, subscriber limit, retries per the table, circuit breaker,
history budget -- with the offline provider and with the real SDK against the fake Gemini."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from botdesk.assistant.failures import BreakerState, CircuitBreaker
from botdesk.assistant.knowledge import KnowledgeEntry
from botdesk.assistant.providers.base import Turn
from botdesk.assistant.providers.gemini import GeminiProvider
from botdesk.assistant.providers.offline import OfflineProvider
from botdesk.assistant.retrieval import Retriever
from botdesk.assistant.service import AssistantService, asks_for_human, trim_history
from botdesk.assistant.testing import Behaviour, FakeGemini
from botdesk.assistant.texts import text_for


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class RecordingLog:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    def info(self, event: str, **kw: Any) -> None:
        self.events.append(("info", event, kw))

    def warning(self, event: str, **kw: Any) -> None:
        self.events.append(("warning", event, kw))

    def error(self, event: str, **kw: Any) -> None:
        self.events.append(("error", event, kw))


@pytest.fixture(scope="module")
def retriever(eval_entries: list[KnowledgeEntry]) -> Retriever:
    return Retriever.build(eval_entries, embedder=None)


def make(provider: Any, retriever: Retriever, **kw: Any) -> tuple[AssistantService, list[float]]:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    clock = kw.pop("clock", Clock())
    service = AssistantService(
        provider=provider, retriever_for=lambda bot: retriever, clock=clock, sleep=sleep, **kw
    )
    return service, slept


@pytest.fixture
async def gemini() -> AsyncIterator[tuple[FakeGemini, GeminiProvider]]:
    async with FakeGemini() as fake:
        provider = GeminiProvider(api_key="k", base_url=fake.url, timeout=0.5)
        try:
            yield fake, provider
        finally:
            await provider.aclose()


async def ask(service: AssistantService, text: str, language: str | None = "en") -> Any:
    return await service.respond(bot="shop", chat_id=7, text=text, language=language, history=[])


async def test_offline_answers_from_the_knowledge_base(retriever: Retriever) -> None:
    service, _ = make(OfflineProvider(), retriever)
    reply = await ask(service, "how much does shipping cost")
    assert reply.sources == ["ship-cost"] and not reply.handoff
    assert reply.text.startswith("Standard shipping costs 4.95 EUR")


@pytest.mark.parametrize(
    "text",
    ["can I talk to a human?", "I want a real person", "operator please", "Ich will einen Menschen",
     "con un agente por favor", "хочу поговорити з людиною", "позовите оператора"],
)  # fmt: skip
async def test_asking_for_a_human_hands_off(retriever: Retriever, text: str) -> None:
    assert asks_for_human(text)
    service, _ = make(OfflineProvider(), retriever)
    reply = await ask(service, text, language="de")
    assert reply.handoff and reply.reason == "human_requested"
    assert reply.text == text_for("handoff_requested", "de")


def test_ordinary_questions_do_not_look_like_handoff_requests() -> None:
    assert not asks_for_human("how do I reset my password")
    assert not asks_for_human("what is your humane animal policy for down")  # "humane" != human
    assert not asks_for_human("which agencies deliver")


async def test_low_confidence_hands_off_in_the_subscriber_language(retriever: Retriever) -> None:
    service, _ = make(OfflineProvider(), retriever)
    reply = await ask(service, "who won the football game yesterday", language="uk")
    assert reply.handoff and reply.reason == "low_confidence"
    assert reply.text == text_for("handoff_low_confidence", "uk")


async def test_per_subscriber_limit_skips_the_provider(retriever: Retriever) -> None:
    clock = Clock()
    service, _ = make(OfflineProvider(), retriever, clock=clock, per_subscriber_limit=2)
    for _ in range(2):
        assert not (await ask(service, "shipping cost")).reason
    limited = await ask(service, "shipping cost")
    assert limited.reason == "subscriber_limit" and not limited.handoff
    other = await service.respond(
        bot="shop", chat_id=8, text="shipping cost", language=None, history=[]
    )
    assert other.sources == ["ship-cost"]
    clock.now += 60.0
    assert (await ask(service, "shipping cost")).sources == ["ship-cost"]


async def test_timeouts_retry_with_backoff_then_say_try_later(
    retriever: Retriever, gemini: Any
) -> None:
    fake, provider = gemini
    fake.script(*[Behaviour.slow(2.0)] * 3)
    log = RecordingLog()
    service, slept = make(provider, retriever, logger=log)
    reply = await ask(service, "how much does shipping cost", language="es")
    assert slept == [0.5, 1.0] and len(fake.requests) == 3
    assert reply.text == text_for("timeout", "es") and not reply.handoff
    assert [e[2]["kind"] for e in log.events] == ["timeout"] * 3


async def test_transient_failure_then_success(retriever: Retriever, gemini: Any) -> None:
    fake, provider = gemini
    fake.script(Behaviour.error(503), Behaviour.ok("Shipping is 4.95 EUR.\nSOURCES: 1"))
    service, slept = make(provider, retriever)
    reply = await ask(service, "how much does shipping cost")
    assert reply.text == "Shipping is 4.95 EUR." and reply.sources == ["ship-cost"]
    assert slept == [0.5] and reply.provider == "gemini"


async def test_short_429_is_retried_long_429_is_not(retriever: Retriever, gemini: Any) -> None:
    fake, provider = gemini
    fake.script(Behaviour.error(429, retry_delay="2s"), Behaviour.ok("ok\nSOURCES: 1"))
    service, slept = make(provider, retriever)
    assert (await ask(service, "shipping cost")).text == "ok"
    assert slept == [2.0]
    fake.script(Behaviour.error(429, retry_delay="45s"))
    log = RecordingLog()
    service, slept = make(provider, retriever, logger=log)
    reply = await ask(service, "shipping cost")
    assert slept == [] and reply.text == text_for("rate_limited", "en")
    assert log.events[0][0] == "warning" and "quota" in log.events[0][2]["detail"]


async def test_auth_error_alerts_the_operator_and_hands_off(
    retriever: Retriever, gemini: Any
) -> None:
    fake, provider = gemini
    fake.script(Behaviour.error(401))
    log = RecordingLog()
    service, slept = make(provider, retriever, logger=log)
    reply = await ask(service, "shipping cost")
    assert slept == [] and reply.handoff and reply.reason == "provider_auth"
    assert reply.text == text_for("handoff_unavailable", "en")
    assert log.events[0][0] == "error" and log.events[0][2]["alert"] is True


async def test_safety_block_asks_to_rephrase_without_retry(
    retriever: Retriever, gemini: Any
) -> None:
    fake, provider = gemini
    fake.script(Behaviour.prompt_blocked())
    service, slept = make(provider, retriever)
    reply = await ask(service, "shipping cost")
    assert reply.text == text_for("safety", "en") and slept == [] and not reply.handoff


async def test_unknown_error_and_model_saying_not_in_kb(retriever: Retriever, gemini: Any) -> None:
    fake, provider = gemini
    fake.script(*[Behaviour.garbage()] * 3)
    service, slept = make(provider, retriever)
    reply = await ask(service, "shipping cost")
    assert reply.text == text_for("unknown", "en") and slept == [0.5, 1.0]
    fake.script(Behaviour.ok("NOT_IN_KB"))
    reply = await ask(service, "shipping cost")
    assert reply.handoff and reply.reason == "not_in_kb"


async def test_breaker_opens_routes_to_handoff_then_recovers(
    retriever: Retriever, gemini: Any
) -> None:
    fake, provider = gemini
    clock = Clock()
    breaker = CircuitBreaker(clock=clock, failure_threshold=3, reset_after=30.0)
    service, _ = make(provider, retriever, clock=clock, breaker=breaker, per_subscriber_limit=100)
    fake.script(*[Behaviour.error(500)] * 3)
    reply = await ask(service, "shipping cost")
    assert reply.handoff and breaker.state is BreakerState.OPEN
    calls = len(fake.requests)
    reply = await ask(service, "shipping cost")
    assert reply.reason == "circuit_open" and len(fake.requests) == calls  # provider not called
    clock.now += 30.0
    fake.script(Behaviour.ok("back\nSOURCES: 1"))
    assert (await ask(service, "shipping cost")).text == "back"
    assert breaker.state is BreakerState.CLOSED


async def test_history_is_trimmed_to_the_token_budget(retriever: Retriever, gemini: Any) -> None:
    fake, provider = gemini
    history = [Turn("user", "old " * 200), Turn("assistant", "x" * 40), Turn("user", "recent")]
    assert trim_history(history, 15) == history[1:]
    service, _ = make(provider, retriever, history_token_budget=15)
    await service.respond(
        bot="shop", chat_id=1, text="shipping cost", language="en", history=history
    )
    texts = [c["parts"][0]["text"] for c in fake.requests[0]["contents"]]
    assert texts == ["x" * 40, "recent", "shipping cost"]


async def test_an_answer_citing_no_entry_is_a_handoff(retriever: Retriever, gemini: Any) -> None:
    fake, provider = gemini
    fake.script(Behaviour.ok("We ship to Mars for free."))
    service, _ = make(provider, retriever)
    reply = await ask(service, "shipping cost", language="de")
    assert reply.handoff and reply.reason == "ungrounded" and reply.sources == []
    assert reply.text == text_for("handoff_low_confidence", "de")
