"""Every row of the error table through the real google-genai SDK and the real aiohttp client,
against the loopback fakes in ``botdesk.assistant.testing``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from botdesk.assistant.failures import ProviderFailure
from botdesk.assistant.knowledge import KnowledgeEntry, Translation
from botdesk.assistant.providers.base import AssistantRequest, Turn
from botdesk.assistant.providers.gemini import GeminiProvider
from botdesk.assistant.providers.openai_compat import OpenAICompatProvider
from botdesk.assistant.retrieval import Hit
from botdesk.assistant.testing import Behaviour, FakeGemini, FakeOpenAI

ENTRIES = [
    KnowledgeEntry("ship", "How long does shipping take?", (), "3-5 business days."),
    KnowledgeEntry("pay", "How can I pay?", (), "Card or PayPal."),
]
REQUEST = AssistantRequest(
    question="when does it arrive",
    history=[Turn("user", "hi"), Turn("assistant", "Hello!")],
    hits=[Hit(ENTRIES[0], 0.8, 0.9), Hit(ENTRIES[1], 0.2, 0.1)],
    language="en",
)


@pytest.fixture
async def gemini() -> AsyncIterator[tuple[FakeGemini, GeminiProvider]]:
    async with FakeGemini() as fake:
        provider = GeminiProvider(api_key="test-key", base_url=fake.url, timeout=0.5, model="m1")
        try:
            yield fake, provider
        finally:
            await provider.aclose()


@pytest.fixture
async def openai() -> AsyncIterator[tuple[FakeOpenAI, OpenAICompatProvider]]:
    async with FakeOpenAI() as fake:
        provider = OpenAICompatProvider(
            base_url=fake.url + "/v1", model="llama", api_key="sk-local", timeout=0.5
        )
        try:
            yield fake, provider
        finally:
            await provider.aclose()


async def test_gemini_success_grounds_the_prompt_and_records_sources(gemini: Any) -> None:
    fake, provider = gemini
    fake.script(Behaviour.ok("It takes 3-5 business days.\nSOURCES: 1"))
    reply = await provider.answer(REQUEST)
    assert reply.text == "It takes 3-5 business days."
    assert reply.sources == ["ship"] and not reply.handoff and reply.confidence == 0.9
    body, headers = fake.requests[0], fake.headers[0]
    assert fake.paths == ["/v1/models/m1:generateContent"]
    assert headers["x-goog-api-key"] == "test-key"
    system = body["systemInstruction"]["parts"][0]["text"]
    assert "[1] Q: How long does shipping take?\nA: 3-5 business days." in system
    assert [(c["role"], c["parts"][0]["text"]) for c in body["contents"]] == [
        ("user", "hi"), ("model", "Hello!"), ("user", "when does it arrive"),
    ]  # fmt: skip


async def test_gemini_not_in_kb_is_a_handoff(gemini: Any) -> None:
    fake, provider = gemini
    fake.script(Behaviour.ok("NOT_IN_KB"))
    reply = await provider.answer(REQUEST)
    assert reply.handoff and reply.reason == "not_in_kb" and reply.sources == []


@pytest.mark.parametrize(
    ("behaviour", "kind", "retry_after"),
    [
        (Behaviour.slow(3.0), "timeout", None),
        (Behaviour.error(429, retry_delay="2s"), "rate_limited", 2.0),
        (Behaviour.error(429), "rate_limited", None),
        (Behaviour.error(401), "auth", None),
        (Behaviour.error(403), "auth", None),
        (Behaviour.safety(), "safety", None),
        (Behaviour.prompt_blocked(), "safety", None),
        (Behaviour.error(404), "not_found", None),
        (Behaviour.error(500), "server", None),
        (Behaviour.error(503), "server", None),
        (Behaviour.garbage(), "unknown", None),
        (Behaviour.error(400), "unknown", None),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
async def test_gemini_error_table(
    gemini: Any, behaviour: Behaviour, kind: str, retry_after: float | None
) -> None:
    fake, provider = gemini
    fake.script(behaviour)
    with pytest.raises(ProviderFailure) as info:
        await provider.answer(REQUEST)
    assert info.value.kind == kind
    assert info.value.retry_after == retry_after
    assert "test-key" not in info.value.detail


async def test_gemini_quota_details_reach_the_operator(gemini: Any) -> None:
    fake, provider = gemini
    fake.script(Behaviour.error(429, retry_delay="30s"))
    with pytest.raises(ProviderFailure) as info:
        await provider.answer(REQUEST)
    assert "GenerateRequestsPerMinutePerProjectPerModel-FreeTier" in info.value.detail
    assert info.value.retry_after == 30.0


async def test_gemini_unreachable_endpoint_is_a_server_failure() -> None:
    fake = FakeGemini()
    await fake.start()
    url = fake.url
    await fake.stop()
    provider = GeminiProvider(api_key="k", base_url=url, timeout=0.5)
    try:
        with pytest.raises(ProviderFailure) as info:
            await provider.answer(REQUEST)
    finally:
        await provider.aclose()
    assert info.value.kind == "server"


async def test_openai_success_sends_history_and_key(openai: Any) -> None:
    fake, provider = openai
    fake.script(Behaviour.ok("Card or PayPal.\nSources: 2"))
    reply = await provider.answer(REQUEST)
    assert (reply.text, reply.sources, reply.handoff) == ("Card or PayPal.", ["pay"], False)
    body = fake.requests[0]
    assert fake.headers[0]["Authorization"] == "Bearer sk-local"
    assert body["model"] == "llama"
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user"]
    assert "[2] Q: How can I pay?" in body["messages"][0]["content"]


@pytest.mark.parametrize(
    ("behaviour", "kind", "retry_after"),
    [
        (Behaviour.slow(3.0), "timeout", None),
        (Behaviour.error(429, retry_delay="1"), "rate_limited", 1.0),
        (Behaviour.error(401), "auth", None),
        (Behaviour.error(403), "auth", None),
        (Behaviour.safety(), "safety", None),
        (Behaviour.error(400, code="content_filter"), "safety", None),
        (Behaviour.error(404), "not_found", None),
        (Behaviour.error(500), "server", None),
        (Behaviour.error(502), "server", None),
        (Behaviour.garbage(), "unknown", None),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
async def test_openai_error_table(
    openai: Any, behaviour: Behaviour, kind: str, retry_after: float | None
) -> None:
    fake, provider = openai
    fake.script(behaviour)
    with pytest.raises(ProviderFailure) as info:
        await provider.answer(REQUEST)
    assert info.value.kind == kind
    assert info.value.retry_after == retry_after


async def test_openai_without_key_sends_no_authorization(openai: Any) -> None:
    fake, _ = openai
    provider = OpenAICompatProvider(base_url=fake.url + "/v1", model="m")
    try:
        await provider.answer(REQUEST)
    finally:
        await provider.aclose()
    assert "Authorization" not in fake.headers[0]


# -- grounding: the passages, the language, citations and handoffs, through both real SDKs --

RU_ENTRIES = [
    KnowledgeEntry(
        "ship", "How long does shipping take?", (), "3-5 business days.",
        translations=(Translation("ru", "Сколько идёт доставка?", (), "3-5 рабочих дней."),),
    ),
    KnowledgeEntry("pay", "How can I pay?", (), "Card or PayPal."),
]  # fmt: skip
RU_REQUEST = AssistantRequest(
    question="сколько ждать посылку",
    hits=[Hit(RU_ENTRIES[0], 0.8, 0.9), Hit(RU_ENTRIES[1], 0.3, 0.2)],
    language="ru",
    languages=["ru"],
)


def _system(name: str, fake: Any) -> str:
    body = fake.requests[-1]
    if name == "gemini":
        return str(body["systemInstruction"]["parts"][0]["text"])
    return str(body["messages"][0]["content"])


@pytest.fixture(params=["gemini", "openai"])
def llm(request: pytest.FixtureRequest) -> tuple[str, Any, Any]:
    fake, provider = request.getfixturevalue(request.param)
    return request.param, fake, provider


async def test_prompt_holds_the_passages_in_the_users_language_and_says_which(
    llm: tuple[str, Any, Any],
) -> None:
    name, fake, provider = llm
    fake.script(Behaviour.ok("Доставка занимает 3-5 рабочих дней.\nSOURCES: 1"))
    reply = await provider.answer(RU_REQUEST)
    system = _system(name, fake)
    # The entry's Russian version is the passage; an entry without one keeps its own text.
    assert "[1] Q: Сколько идёт доставка?\nA: 3-5 рабочих дней." in system
    assert "[2] Q: How can I pay?\nA: Card or PayPal." in system
    assert "Answer in Russian (language code ru)" in system
    assert "Answer ONLY from the knowledge entries" in system and "NOT_IN_KB" in system
    assert reply.text == "Доставка занимает 3-5 рабочих дней."
    assert reply.sources == ["ship"] and not reply.handoff and reply.language == "ru"


async def test_no_language_known_asks_for_the_language_of_the_message(
    llm: tuple[str, Any, Any],
) -> None:
    name, fake, provider = llm
    fake.script(Behaviour.ok("ok\nSOURCES: 1"))
    await provider.answer(AssistantRequest(question="q", hits=REQUEST.hits))
    assert "Answer in the language of the user's last message." in _system(name, fake)


async def test_cited_entries_map_to_sources(llm: tuple[str, Any, Any]) -> None:
    _, fake, provider = llm
    fake.script(Behaviour.ok("Card, PayPal; 3-5 days.\n**Sources:** 2, 1, 2, 9"))
    reply = await provider.answer(RU_REQUEST)
    # In citation order, once each; a number no entry has is dropped.
    assert reply.sources == ["pay", "ship"] and reply.text == "Card, PayPal; 3-5 days."
    assert reply.confidence == 0.9  # the best cited entry's


@pytest.mark.parametrize(
    ("model_says", "reason"),
    [
        ("NOT_IN_KB", "not_in_kb"),
        ("NOT_IN_KB\nSOURCES:", "not_in_kb"),
        ("Shipping is free everywhere!", "ungrounded"),  # cites nothing
        ("Shipping is free everywhere!\nSOURCES: none", "ungrounded"),
        ("Shipping is free everywhere!\nSOURCES: 7", "ungrounded"),  # no such entry
    ],
)
async def test_cannot_answer_and_uncited_answers_hand_off(
    llm: tuple[str, Any, Any], model_says: str, reason: str
) -> None:
    _, fake, provider = llm
    fake.script(Behaviour.ok(model_says))
    reply = await provider.answer(RU_REQUEST)
    assert reply.handoff and reply.reason == reason
    assert reply.text == "" and reply.sources == []
