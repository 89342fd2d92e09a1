"""The provider interface and what every LLM provider shares: the grounding prompt and the
parsing of the model's reply into answer + sources.

Owns ``Turn``, ``AssistantRequest``, ``AssistantReply``, the ``Provider`` protocol,
``build_prompt`` and ``parse_grounded_reply``. Providers raise
``failures.ProviderFailure`` for every failure; they never retry (the service does).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from botdesk.assistant.retrieval import Hit

NOT_IN_KB = "NOT_IN_KB"
MAX_GROUNDING_ENTRIES = 5


@dataclass(frozen=True)
class Turn:
    role: Literal["user", "assistant", "operator"]
    text: str


@dataclass
class AssistantRequest:
    question: str
    history: list[Turn] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)
    language: str | None = None
    # Where an entry has versions: the languages to pick one in, best first (see language.py).
    languages: list[str] = field(default_factory=list)

    @property
    def preferred(self) -> list[str | None]:
        return list(self.languages) if self.languages else [self.language]


@dataclass
class AssistantReply:
    text: str
    sources: list[str]  # knowledge-entry keys the answer used
    confidence: float
    handoff: bool
    reason: str | None = None  # why it handed off / failed; never shown to the subscriber
    provider: str = ""
    # The language of the entry version answered with; None: the knowledge base's own text.
    language: str | None = None


class Provider(Protocol):
    name: str

    async def answer(self, req: AssistantRequest) -> AssistantReply:
        """Answer or raise ``ProviderFailure``."""
        ...

    async def aclose(self) -> None:
        """Release sessions and sockets."""
        ...


SYSTEM_INSTRUCTION = f"""You are the support assistant of a Telegram bot.
Answer ONLY from the knowledge entries given below; never use other knowledge and never invent
facts, prices, dates or links. If the entries do not answer the question, reply with exactly
{NOT_IN_KB} and nothing else. Answer briefly. {{language}}
After the answer, write one last line "SOURCES: " followed by the numbers of the entries you
used, comma-separated (for example "SOURCES: 2" or "SOURCES: 1, 3")."""

# Names the model reads in the language instruction; other codes are given as they are.
LANGUAGE_NAMES = {
    "en": "English", "ru": "Russian", "uk": "Ukrainian", "es": "Spanish", "pt": "Portuguese",
    "de": "German", "fr": "French", "it": "Italian", "tr": "Turkish", "id": "Indonesian",
    "fa": "Persian", "ar": "Arabic", "hi": "Hindi", "nl": "Dutch", "pl": "Polish",
    "zh": "Chinese", "ja": "Japanese", "ko": "Korean", "he": "Hebrew", "uz": "Uzbek",
    "kk": "Kazakh", "be": "Belarusian", "vi": "Vietnamese", "th": "Thai", "ms": "Malay",
}  # fmt: skip


def language_instruction(language: str | None) -> str:
    if not language:
        return "Answer in the language of the user's last message."
    base = language.split("-")[0]
    name = LANGUAGE_NAMES.get(base, language)
    return (
        f"Answer in {name} (language code {language}), the user's language, even when the"
        " entries are written in another language."
    )


def grounding_block(hits: Sequence[Hit], languages: Sequence[str | None] = ()) -> str:
    """The top entries, numbered; each in the subscriber's language where it has a version."""
    parts = []
    for n, hit in enumerate(hits[:MAX_GROUNDING_ENTRIES], start=1):
        e = hit.entry
        version = e.version(languages)
        question = (version.question or e.question) if version is not None else e.question
        answer = version.answer if version is not None else e.answer
        parts.append(f"[{n}] Q: {question}\nA: {answer}")
    return "Knowledge entries:\n\n" + ("\n\n".join(parts) if parts else "(none)")


def build_messages(req: AssistantRequest) -> tuple[str, list[tuple[str, str]]]:
    """(system text, [(role, text)...]) with roles "user" / "assistant"; the question is last."""
    system = (
        SYSTEM_INSTRUCTION.format(language=language_instruction(req.language))
        + "\n\n"
        + grounding_block(req.hits, req.preferred)
    )
    turns: list[tuple[str, str]] = []
    for t in req.history:
        # An operator's reply was said to the user by "us": for the model it is an assistant turn.
        turns.append(("user" if t.role == "user" else "assistant", t.text))
    turns.append(("user", req.question))
    return system, turns


_SOURCES = re.compile(r"^\s*\**\s*sources?\s*\**\s*:\s*(.*)$", re.IGNORECASE)


def parse_grounded_reply(text: str, req: AssistantRequest, *, provider: str) -> AssistantReply:
    """Split the model's text into the answer and the entry keys it cites.

    ``NOT_IN_KB`` is a handoff (``not_in_kb``); so is an answer that cites none of the entries
    it was given (``ungrounded``): nothing shows it came from the knowledge base.
    """
    lines = text.strip().splitlines()
    numbers: list[int] = []
    while lines and (m := _SOURCES.match(lines[-1])):
        numbers = [int(x) for x in re.findall(r"\d+", m.group(1))]
        lines.pop()
    answer = "\n".join(lines).strip()
    top = req.hits[0].confidence if req.hits else 0.0
    if not answer or NOT_IN_KB in answer:
        return AssistantReply("", [], top, handoff=True, reason="not_in_kb", provider=provider)
    shown = req.hits[:MAX_GROUNDING_ENTRIES]
    sources = [shown[n - 1].entry.key for n in dict.fromkeys(numbers) if 1 <= n <= len(shown)]
    if not sources:
        return AssistantReply("", [], top, handoff=True, reason="ungrounded", provider=provider)
    confidence = max(h.confidence for h in shown if h.entry.key in sources)
    return AssistantReply(
        answer, sources, confidence, handoff=False, provider=provider, language=req.language
    )
