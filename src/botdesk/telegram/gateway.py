"""The Telegram gateway: building aiogram ``Bot``s, ``get_me`` and ``send`` as outcome values.

Only ``botdesk.telegram`` touches aiogram's ``Bot`` and session classes. The server is a value
(``api_base``), which is how the same code talks to Telegram or to the sandbox. ``send`` never
raises for a Telegram or network outcome; it returns a ``SendResult`` (see ``outcomes``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus, urlencode

from aiogram import Bot
from aiogram.client.telegram import PRODUCTION, TelegramAPIServer
from aiogram.exceptions import AiogramError
from aiogram.methods import (
    SendAnimation,
    SendAudio,
    SendDocument,
    SendMessage,
    SendPhoto,
    SendVideo,
    SendVoice,
)
from aiogram.methods.base import Response, TelegramMethod
from aiogram.types import (
    FSInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
)
from aiogram.utils.token import TokenValidationError
from aiohttp import ClientError
from aiohttp.payload import BytesPayload

from botdesk.errors import ConfigError, InvalidToken, TelegramUnreachable
from botdesk.telegram.outcomes import Outcome, SendResult, classify_exception, redact
from botdesk.telegram.session import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_READ_TIMEOUT,
    SplitTimeoutSession,
)

__all__ = [
    "BotIdentity",
    "Broadcast",
    "Outcome",
    "OutgoingMessage",
    "SendResult",
    "bot_session",
    "classify_exception",
    "get_chat",
    "get_me",
    "make_bot",
    "redact",
    "send",
]

# aiogram's default is 100 connections; paid broadcasts (1000/s) with 100+ ms round trips need
# more requests in flight than that.
DEFAULT_CONNECTION_LIMIT = 256

# Errors a Bot API call can raise for a Telegram/network reason; anything else is a bug.
_CALL_ERRORS = (AiogramError, ClientError, OSError, TimeoutError)

# aiogram builds ``Response[Message]`` for every answer it reads (``send`` reads a success
# itself, but not an error or an odd answer), and pydantic keeps parametrized models only
# weakly: each cyclic garbage collection drops the class and the next send
# rebuilds its schema (milliseconds; measured at ~45% of a send's CPU during a campaign).
# Holding a reference keeps pydantic's cache warm.
_KEEP_RESPONSE_TYPE = Response[Message]


def make_bot(
    token: str,
    *,
    api_base: str | None = None,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    proxy: str | None = None,
    connection_limit: int = DEFAULT_CONNECTION_LIMIT,
) -> Bot:
    """Build a ``Bot``; the caller closes it (``await bot.session.close()``) or uses
    ``bot_session``.

    Raises ``InvalidToken`` for a token aiogram rejects by shape (before any request) and
    ``ConfigError`` for a proxy that cannot be used.
    """
    api = TelegramAPIServer.from_base(api_base) if api_base else PRODUCTION
    try:
        session = SplitTimeoutSession(
            api=api,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            proxy=proxy,
            limit=connection_limit,
        )
    except RuntimeError as exc:  # aiogram's way of saying aiohttp-socks is missing
        raise ConfigError("a proxy needs the aiohttp-socks package", key="network.proxy") from exc
    except ValueError as exc:
        raise ConfigError(f"invalid proxy URL: {redact(str(exc))}", key="network.proxy") from exc
    try:
        return Bot(token, session=session)
    except TokenValidationError as exc:
        raise InvalidToken("the bot token is malformed (expected <digits>:<secret>)") from exc


@asynccontextmanager
async def bot_session(
    token: str,
    *,
    api_base: str | None = None,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    proxy: str | None = None,
    connection_limit: int = DEFAULT_CONNECTION_LIMIT,
) -> AsyncIterator[Bot]:
    """``make_bot`` whose session is closed on exit."""
    bot = make_bot(
        token,
        api_base=api_base,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        proxy=proxy,
        connection_limit=connection_limit,
    )
    try:
        yield bot
    finally:
        await bot.session.close()


@dataclass(frozen=True)
class BotIdentity:
    id: int
    username: str
    first_name: str


async def get_me(
    token: str,
    *,
    api_base: str | None = None,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
) -> BotIdentity:
    """Ask the server who the token belongs to.

    Raises ``InvalidToken`` (malformed or rejected token) or ``TelegramUnreachable``.
    """
    async with bot_session(
        token, api_base=api_base, connect_timeout=connect_timeout, read_timeout=read_timeout
    ) as bot:
        try:
            me = await bot.get_me()
        except _CALL_ERRORS as exc:
            result = classify_exception(exc)
            if result.outcome is Outcome.UNAUTHORIZED:
                raise InvalidToken(
                    f"the server rejected the bot token ({result.description or 'unauthorized'})"
                ) from exc
            where = api_base or "api.telegram.org"
            raise TelegramUnreachable(
                f"cannot reach the Bot API at {redact(where)}: "
                f"{result.description or result.outcome.value}"
            ) from exc
    return BotIdentity(id=me.id, username=me.username or "", first_name=me.first_name)


class _ChatProbe(TelegramMethod[dict[str, Any]]):
    """getChat whose answer is kept as JSON: botdesk only asks whether the chat exists, and
    aiogram's ``ChatFullInfo`` (dozens of nested models) is not built for that, nor under
    ``fast_import``, where its generic ``Response`` cannot resolve aiogram's unions."""

    __returning__ = dict
    __api_method__ = "getChat"

    chat_id: int | str


async def get_chat(bot: Bot, chat_id: int | str) -> SendResult:
    """Ask whether Telegram knows ``chat_id`` for this bot (getChat), as an outcome value:
    ``SENT`` when it answered with the chat, ``CHAT_GONE`` for "chat not found", and the
    usual outcomes (``RETRY_AFTER``, ``CONNECT_FAILED``, ...) otherwise. Never raises for a
    Telegram or network reason."""
    try:
        await bot(_ChatProbe(chat_id=chat_id))
    except _CALL_ERRORS as exc:
        return classify_exception(exc)
    return SendResult(Outcome.SENT)


@dataclass(frozen=True)
class OutgoingMessage:
    """One message to one chat. ``photo``/``document``/``video``/``animation``/``audio``/
    ``voice`` (at most one): a ``Path`` uploads, a ``str`` is a file_id (or URL). With a file
    the text becomes the caption. ``buttons`` are
    (label, url) pairs, one inline button per row (a url of ``CALLBACK_TARGET + data`` is a
    campaign's callback button); ``callbacks`` are (label, callback_data) pairs, below them,
    ``CALLBACKS_PER_ROW`` to a row."""

    chat_id: int
    text: str
    parse_mode: str | None
    photo: str | Path | None = None
    document: str | Path | None = None
    buttons: tuple[tuple[str, str], ...] = ()
    video: str | Path | None = None
    animation: str | Path | None = None
    audio: str | Path | None = None
    voice: str | Path | None = None
    callbacks: tuple[tuple[str, str], ...] = ()
    disable_notification: bool = False
    protect_content: bool = False
    allow_paid_broadcast: bool = False
    link_preview_disabled: bool = False


# A button target with this prefix is sent as callback data (the rest), not as a URL.
CALLBACK_TARGET = "callback:"


def _button(label: str, target: str) -> InlineKeyboardButton:
    if target.startswith(CALLBACK_TARGET):
        return InlineKeyboardButton(text=label, callback_data=target[len(CALLBACK_TARGET) :])
    return InlineKeyboardButton(text=label, url=target)


CALLBACKS_PER_ROW = 3


def _keyboard(msg: OutgoingMessage) -> InlineKeyboardMarkup | None:
    if not msg.buttons and not msg.callbacks:
        return None
    rows = [[_button(label, target)] for label, target in msg.buttons]
    cb = [InlineKeyboardButton(text=label, callback_data=data) for label, data in msg.callbacks]
    rows += [cb[i : i + CALLBACKS_PER_ROW] for i in range(0, len(cb), CALLBACKS_PER_ROW)]
    return InlineKeyboardMarkup(inline_keyboard=rows)


def _media(value: str | Path) -> FSInputFile | str:
    return FSInputFile(value) if isinstance(value, Path) else value


# A file's kind -> the method that sends it (each takes the file in the field of its name).
FILE_METHODS: dict[str, Any] = {
    "photo": SendPhoto,
    "document": SendDocument,
    "video": SendVideo,
    "animation": SendAnimation,
    "audio": SendAudio,
    "voice": SendVoice,
}


def _file_of(msg: OutgoingMessage) -> tuple[str, str | Path] | None:
    for kind in FILE_METHODS:
        value = getattr(msg, kind)
        if value is not None:
            return kind, value
    return None


def _missing_file(msg: OutgoingMessage) -> Path | None:
    found = _file_of(msg)
    if found is not None and isinstance(found[1], Path) and not found[1].is_file():
        return found[1]
    return None


def file_id_of(message: dict[str, Any]) -> str | None:
    """The file_id of a sent message's file (a photo's largest size), if it has one."""
    file_id: Any = None
    photo = message.get("photo")
    if isinstance(photo, list) and photo and isinstance(photo[-1], dict):
        file_id = photo[-1].get("file_id")
    else:
        for kind in FILE_METHODS:
            value = message.get(kind)
            if kind != "photo" and isinstance(value, dict):
                file_id = value.get("file_id")
                break
    return file_id if isinstance(file_id, str) else None


def _sent(message: dict[str, Any]) -> SendResult:
    """The outcome of a successful send, from the answer's message as JSON (see
    ``SplitTimeoutSession.message_result``). A file_id in an unexpected shape is left out: the
    message was delivered, and the next send uploads the file again."""
    return SendResult(Outcome.SENT, message_id=message["message_id"], file_id=file_id_of(message))


def _method(msg: OutgoingMessage) -> Any:
    """The Bot API call for ``msg``, with the arguments ``bot.send_message`` (``send_photo``,
    ``send_document``) would give it: the request is the same bytes."""
    # The parse mode is always explicit (None = plain) so a Bot's defaults cannot change the text.
    common: dict[str, Any] = {
        "chat_id": msg.chat_id,
        "parse_mode": msg.parse_mode,
        "disable_notification": msg.disable_notification or None,
        "protect_content": msg.protect_content or None,
        "allow_paid_broadcast": msg.allow_paid_broadcast or None,
        "reply_markup": _keyboard(msg),
    }
    found = _file_of(msg)
    if found is not None:
        kind, value = found
        return FILE_METHODS[kind](**{kind: _media(value)}, caption=msg.text, **common)
    preview = LinkPreviewOptions(is_disabled=True) if msg.link_preview_disabled else None
    return SendMessage(text=msg.text, link_preview_options=preview, **common)


async def send(bot: Bot, msg: OutgoingMessage) -> SendResult:
    """Send one message; every Telegram or network outcome is returned, never raised.

    ``bot`` comes from ``make_bot``: its session reads the answer without building aiogram's
    ``Message`` model, which botdesk does not use (see ``message_result``).
    """
    missing = _missing_file(msg)
    if missing is not None:
        # Checked before the request: a body that fails mid-upload would look like a send.
        return SendResult(Outcome.BAD_REQUEST, description=f"file not found: {missing.name}")
    session = _session(bot)
    try:
        message = await session.message_result(bot, _method(msg))
    except _CALL_ERRORS as exc:
        return classify_exception(exc)
    return _sent(message)


# Stand for the chat and the text in a broadcast's prepared body: each holds a character the
# form encoding escapes ("@" is "%40"), so neither can appear elsewhere in a body by chance.
_CHAT_SLOT = "@botdesk_chat_slot"
_TEXT_SLOT = "@botdesk_text_slot@"
_CHAT_FIELD = urlencode({"chat_id": _CHAT_SLOT}).encode()
_TEXT_VALUE = quote_plus(_TEXT_SLOT).encode()


class Broadcast:
    """One message to many chats: its request body is built once, and each send writes the
    chat id (and, for a personalized text, the recipient's text) into it.

    Building the call and its form (aiogram's method model, each field's preparation, the url
    encoding) per recipient cost about a sixth of a campaign message's CPU, and only the chat
    and the text differ between recipients. The body built here is byte for byte what
    ``send`` posts for the same message (the tests compare them). A message that uploads a
    file has no ``Broadcast``: its body is multipart, and the upload happens once anyway,
    after which the campaign sends by file_id.
    """

    def __init__(self, msg: OutgoingMessage) -> None:
        """``msg``'s chat is ignored; its text is the one ``send`` uses by default."""
        found = _file_of(msg)
        if found is not None and isinstance(found[1], Path):
            raise ValueError("a broadcast sends a file by file_id, not by upload")
        self._msg = msg
        self._text = quote_plus(msg.text).encode()
        # Names the call and types an error answer; its slots are never sent.
        self._method = _method(replace(msg, chat_id=0, text=_TEXT_SLOT)).model_copy(
            update={"chat_id": _CHAT_SLOT}
        )
        self._bot: Bot | None = None
        self._pieces: tuple[bytes, bytes, bytes] | None = None
        self._chat_first = True

    def _prepare(self, bot: Bot, session: SplitTimeoutSession) -> None:
        self._bot = bot
        self._pieces = None
        form = session.build_form_data(bot, self._method)
        body = form._value if isinstance(form, BytesPayload) else b""
        if body.count(_CHAT_FIELD) != 1 or body.count(_TEXT_VALUE) != 1:
            return  # a slot's text in a button, say: each send builds its own body
        chat_at, text_at = body.index(_CHAT_FIELD), body.index(_TEXT_VALUE)
        self._chat_first = chat_at < text_at
        (first, n1), (second, n2) = sorted(
            ((chat_at, len(_CHAT_FIELD)), (text_at, len(_TEXT_VALUE)))
        )
        self._pieces = (body[:first], body[first + n1 : second], body[second + n2 :])

    def body(self, bot: Bot, chat_id: int, text: str | None = None) -> bytes | None:
        """The request's body for ``chat_id`` (and ``text``, if not the broadcast's own); None
        where the message could not be prepared (``send`` then builds the request itself)."""
        if self._bot is not bot:  # a bot's defaults are part of the body
            self._prepare(bot, _session(bot))
        if self._pieces is None:
            return None
        chat = b"chat_id=" + str(int(chat_id)).encode()
        encoded = self._text if text is None else quote_plus(text).encode()
        head, middle, tail = self._pieces
        if self._chat_first:
            return head + chat + middle + encoded + tail
        return head + encoded + middle + chat + tail

    async def send(self, bot: Bot, chat_id: int, text: str | None = None) -> SendResult:
        """``send`` of this message to ``chat_id`` (with ``text`` instead of its own, if
        given): the same request, the same outcomes."""
        full = self._msg.text if text is None else text
        # An empty text (a file without a caption) is left out of the form: ``send`` does that.
        body = self.body(bot, chat_id, text) if full else None
        if body is None:
            return await send(bot, replace(self._msg, chat_id=chat_id, text=full))
        form = BytesPayload(body, content_type="application/x-www-form-urlencoded")
        try:
            message = await _session(bot).message_result(bot, self._method, form=form)
        except _CALL_ERRORS as exc:
            return classify_exception(exc)
        return _sent(message)


def _session(bot: Bot) -> SplitTimeoutSession:
    session = bot.session
    if not isinstance(session, SplitTimeoutSession):
        raise TypeError("gateway.send needs a Bot made by make_bot")
    return session
