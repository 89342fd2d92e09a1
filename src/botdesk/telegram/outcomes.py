"""Outcomes: every Telegram answer or exception of a send, as a value (``SendResult``).

``classify_exception`` is the one place that knows aiogram's and aiohttp's exception types.
The line that matters most for the delivery promise is CONNECT_FAILED (the request cannot have
reached Telegram: safe to retry) versus UNKNOWN_AFTER_SEND (it may have: never retried
automatically). Only connector errors and connect timeouts count as CONNECT_FAILED; anything
ambiguous (reset, disconnect, read timeout, a garbled 2xx) is UNKNOWN_AFTER_SEND.

Descriptions never contain a bot token: aiohttp messages can carry the request URL, which has
the token in its path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramConflictError,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.utils.token import TokenValidationError
from aiohttp import ClientConnectorError, ConnectionTimeoutError

from botdesk.telegram.session import HTTP_STATUS_ATTR


class Outcome(StrEnum):
    SENT = "sent"
    RETRY_AFTER = "retry_after"
    BLOCKED = "blocked"
    DEACTIVATED = "deactivated"
    NOT_STARTED = "not_started"
    CHAT_GONE = "chat_gone"
    BAD_REQUEST = "bad_request"
    UNAUTHORIZED = "unauthorized"
    SERVER_ERROR = "server_error"
    CONNECT_FAILED = "connect_failed"
    UNKNOWN_AFTER_SEND = "unknown_after_send"


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    message_id: int | None = None
    retry_after: float | None = None
    error_code: int | None = None
    description: str = ""
    file_id: str | None = None
    # An album's messages and files, in order (message_id is the first); empty otherwise.
    message_ids: tuple[int, ...] = ()
    file_ids: tuple[str | None, ...] = ()


_TOKEN_IN_URL = re.compile(r"bot\d+:[A-Za-z0-9_-]+")
_BARE_TOKEN = re.compile(r"\b\d{5,}:[A-Za-z0-9_-]{30,}")


def redact(text: str) -> str:
    """Remove anything shaped like a bot token (in a Bot API URL or bare)."""
    return _BARE_TOKEN.sub("<token>", _TOKEN_IN_URL.sub("bot<token>", text))


# Telegram's 403 descriptions; matched on lowercase substrings because the prefix
# ("Forbidden: ") is not part of the contract.
_FORBIDDEN_RULES: tuple[tuple[str, Outcome], ...] = (
    ("blocked by the user", Outcome.BLOCKED),
    ("user is deactivated", Outcome.DEACTIVATED),
    ("can't initiate conversation", Outcome.NOT_STARTED),
    # The bot left or was removed from a group/channel: the chat is gone for this bot.
    ("kicked", Outcome.CHAT_GONE),
    ("not a member", Outcome.CHAT_GONE),
    ("can't send messages to bots", Outcome.CHAT_GONE),
)
_GONE_400 = ("chat not found", "user not found", "peer_id_invalid")


def _network_outcome(exc: BaseException) -> Outcome:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, ClientConnectorError | ConnectionTimeoutError | ConnectionRefusedError):
            return Outcome.CONNECT_FAILED
        cur = cur.__cause__ or cur.__context__
    return Outcome.UNKNOWN_AFTER_SEND


def _status(exc: BaseException, default: int | None) -> int | None:
    value = getattr(exc, HTTP_STATUS_ATTR, None)
    return value if isinstance(value, int) else default


def _api_error(exc: TelegramAPIError) -> SendResult:
    desc = redact(exc.message)
    if isinstance(exc, TelegramRetryAfter):
        return SendResult(
            Outcome.RETRY_AFTER,
            retry_after=float(exc.retry_after),
            error_code=429,
            description=desc,
        )
    if isinstance(exc, TelegramMigrateToChat):
        return SendResult(
            Outcome.BAD_REQUEST,
            error_code=_status(exc, 400),
            description=f"{desc} (migrated to chat {exc.migrate_to_chat_id})",
        )
    if isinstance(exc, TelegramForbiddenError):
        low = desc.lower()
        for needle, outcome in _FORBIDDEN_RULES:
            if needle in low:
                return SendResult(outcome, error_code=403, description=desc)
        return SendResult(Outcome.BAD_REQUEST, error_code=403, description=desc)
    if isinstance(exc, TelegramUnauthorizedError):
        return SendResult(Outcome.UNAUTHORIZED, error_code=401, description=desc)
    if isinstance(exc, TelegramNotFound):
        # Telegram answers 404 when the token in the URL does not exist: the bot cannot send.
        return SendResult(Outcome.UNAUTHORIZED, error_code=404, description=desc)
    if isinstance(exc, TelegramServerError):
        return SendResult(Outcome.SERVER_ERROR, error_code=_status(exc, 500), description=desc)
    if isinstance(exc, TelegramBadRequest):
        low = desc.lower()
        if any(n in low for n in _GONE_400):
            return SendResult(Outcome.CHAT_GONE, error_code=400, description=desc)
        return SendResult(Outcome.BAD_REQUEST, error_code=400, description=desc)
    if isinstance(exc, TelegramEntityTooLarge | TelegramConflictError):
        return SendResult(Outcome.BAD_REQUEST, error_code=_status(exc, None), description=desc)
    status = _status(exc, None)
    if status is not None and status >= 500:
        return SendResult(Outcome.SERVER_ERROR, error_code=status, description=desc)
    if status is not None and 400 <= status < 500:
        return SendResult(Outcome.BAD_REQUEST, error_code=status, description=desc)
    # A 2xx that says ok=false, or an unexpected status: the message may exist.
    return SendResult(Outcome.UNKNOWN_AFTER_SEND, error_code=status, description=desc)


def classify_exception(exc: BaseException) -> SendResult:
    """Map an exception raised by a Bot API call to a ``SendResult`` (never raises)."""
    if isinstance(exc, TelegramNetworkError):
        return SendResult(_network_outcome(exc), description=redact(exc.message))
    if isinstance(exc, TelegramAPIError):
        return _api_error(exc)
    if isinstance(exc, TokenValidationError):
        return SendResult(Outcome.UNAUTHORIZED, description="malformed bot token")
    if isinstance(exc, ClientDecodeError):
        status = _status(exc, None)
        # The server answered something unreadable after receiving the request.
        if status is not None and 400 <= status < 500:
            outcome = Outcome.BAD_REQUEST
        else:
            outcome = Outcome.UNKNOWN_AFTER_SEND
        return SendResult(
            outcome, error_code=status, description=f"unreadable response (HTTP {status})"
        )
    if isinstance(exc, OSError | TimeoutError):
        # Raw transport errors (an aiohttp error not wrapped by aiogram) follow the same rule.
        return SendResult(_network_outcome(exc), description=redact(f"{type(exc).__name__}: {exc}"))
    return SendResult(
        Outcome.UNKNOWN_AFTER_SEND, description=redact(f"{type(exc).__name__}: {exc}")
    )
