"""The assistant port: what the runtime asks when a subscriber writes to a bot.

The runtime owns idempotency (an update is handled once), silence while a human has the
conversation, "typing", rate limiting and sending; an ``AssistantPort`` only decides what to
say. ``AutoReply`` answers with the bot's configured text; the AI assistant plugs in here
without touching the handlers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from botdesk.config import BotOptions, Settings
from botdesk.inbox import MessageView


@dataclass(frozen=True)
class Inbound:
    bot_id: int
    bot: str
    chat_id: int
    text: str
    language: str | None
    first_name: str | None
    update_id: int | None
    message_id: int | None


@dataclass(frozen=True)
class Reply:
    text: str
    author: str = "bot"  # bot | assistant
    # Set when the conversation must go to a human; the AI stays silent until released.
    handoff_reason: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ReplyContext:
    """What a port may ask of the runtime, only if it needs it: the conversation so far
    (oldest first, without the question itself) and a "typing…" indicator while it works.
    A port that answers at once (``AutoReply``) costs no query and no extra request."""

    history: Callable[[], Awaitable[Sequence[MessageView]]]
    typing: Callable[[], None]


class AssistantPort(Protocol):
    async def reply(self, msg: Inbound, ctx: ReplyContext) -> Reply | None: ...

    async def aclose(self) -> None: ...


class AutoReply:
    """Answers every message with the bot's configured auto-reply text."""

    def __init__(self, texts: Mapping[str, str], default: str) -> None:
        self._texts = dict(texts)
        self._default = default

    @classmethod
    def from_settings(cls, settings: Settings) -> AutoReply:
        """Each bot's configured ``auto_reply``, the default text for the others."""
        return cls(
            {name: opts.auto_reply for name, opts in settings.bots.items()},
            default=BotOptions().auto_reply,
        )

    def answers(self, bot: str) -> bool:
        """Whether messages to ``bot`` get an answer (an empty auto-reply answers none). A
        port that has this method is asked before each question is written ahead (a row per
        question): a bot nobody answers does not pay for it. Without it, every one is."""
        return bool(self._texts.get(bot, self._default))

    async def reply(self, msg: Inbound, ctx: ReplyContext) -> Reply | None:
        text = self._texts.get(msg.bot, self._default)
        return Reply(text=text, author="bot", meta={"kind": "auto_reply"}) if text else None

    async def aclose(self) -> None:
        return None
