"""Retry decisions: a pure function from a send's outcome (and attempt number) to what to do.

The worker only executes decisions; every rule of "what happens after this answer" lives here.

- SENT                        -> MarkSent(message_id)
- RETRY_AFTER (429)           -> Retry(retry_after, pause_bot=True): the whole bot pauses, then
                                 the same recipient is retried. Not counted against any budget:
                                 Telegram told us exactly when to come back.
- CONNECT_FAILED              -> Retry with exponential backoff and full jitter, at most
                                 ``max_attempts_connect`` attempts, then MarkFailed
- SERVER_ERROR (5xx)          -> Retry (backoff) up to ``max_attempts_server`` attempts, then
                                 MarkFailed("server error ...")
- UNKNOWN_AFTER_SEND          -> MarkUncertain: never retried automatically (at-most-once)
- BLOCKED / DEACTIVATED       -> Suppress, subscriber status "blocked" / "deactivated"
- CHAT_GONE / NOT_STARTED     -> Suppress, subscriber status "gone". A chat that never started
                                 the bot (or that we may no longer write to) cannot receive
                                 anything until the user writes to the bot again, which re-opts
                                 them in; until then it must not be counted as an active subscriber.
- BAD_REQUEST                 -> MarkFailed(description)
- UNAUTHORIZED                -> StopBot: the token is revoked; every send of this bot would fail.

``attempt`` is 1 for the first send of a recipient, 2 for the first retry, and so on.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal, assert_never

from botdesk.telegram.outcomes import Outcome, SendResult

DEFAULT_MAX_ATTEMPTS_SERVER = 4
DEFAULT_MAX_ATTEMPTS_CONNECT = 6
DEFAULT_BASE_BACKOFF = 0.5
DEFAULT_MAX_BACKOFF = 30.0
# A 429 without a usable retry_after (should not happen) still pauses the bot.
FALLBACK_RETRY_AFTER = 1.0
# Telegram never asks for more than a few minutes; a bigger value is treated as this cap.
MAX_RETRY_AFTER = 3600.0

SubscriberStatus = Literal["blocked", "deactivated", "gone"]


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts_server: int = DEFAULT_MAX_ATTEMPTS_SERVER
    max_attempts_connect: int = DEFAULT_MAX_ATTEMPTS_CONNECT
    base_backoff: float = DEFAULT_BASE_BACKOFF
    max_backoff: float = DEFAULT_MAX_BACKOFF

    def __post_init__(self) -> None:
        if self.max_attempts_server < 1 or self.max_attempts_connect < 1:
            raise ValueError("max attempts must be at least 1")
        if not 0 <= self.base_backoff <= self.max_backoff:
            raise ValueError("need 0 <= base_backoff <= max_backoff")


@dataclass(frozen=True)
class MarkSent:
    message_id: int | None
    file_id: str | None = None
    message_ids: tuple[int, ...] = ()  # an album's, in order


@dataclass(frozen=True)
class Retry:
    delay_s: float
    pause_bot: bool


@dataclass(frozen=True)
class Suppress:
    reason: str
    subscriber_status: SubscriberStatus


@dataclass(frozen=True)
class MarkUncertain:
    reason: str


@dataclass(frozen=True)
class MarkFailed:
    reason: str


@dataclass(frozen=True)
class StopBot:
    reason: str


Decision = MarkSent | Retry | Suppress | MarkUncertain | MarkFailed | StopBot


def backoff(attempt: int, *, policy: RetryPolicy, rng: random.Random) -> float:
    """Full jitter: uniform in [0, min(max_backoff, base * 2**(attempt-1))]."""
    exponent = min(max(attempt - 1, 0), 62)
    ceiling = min(policy.max_backoff, policy.base_backoff * (2.0**exponent))
    return rng.uniform(0.0, ceiling)


def _reason(result: SendResult, fallback: str) -> str:
    return result.description or fallback


def decide(
    result: SendResult, *, attempt: int, policy: RetryPolicy, rng: random.Random
) -> Decision:
    """What to do after ``attempt`` (1-based) ended with ``result``."""
    outcome = result.outcome
    match outcome:
        case Outcome.SENT:
            return MarkSent(result.message_id, result.file_id, result.message_ids)
        case Outcome.RETRY_AFTER:
            return Retry(retry_delay(result), pause_bot=True)
        case Outcome.CONNECT_FAILED:
            if attempt >= policy.max_attempts_connect:
                return MarkFailed(
                    f"connection failed after {attempt} attempts: "
                    f"{_reason(result, 'cannot connect')}"
                )
            return Retry(backoff(attempt, policy=policy, rng=rng), pause_bot=False)
        case Outcome.SERVER_ERROR:
            if attempt >= policy.max_attempts_server:
                code = result.error_code or 500
                return MarkFailed(
                    f"server error {code} after {attempt} attempts: "
                    f"{_reason(result, 'internal error')}"
                )
            return Retry(backoff(attempt, policy=policy, rng=rng), pause_bot=False)
        case Outcome.UNKNOWN_AFTER_SEND:
            return MarkUncertain(_reason(result, "no answer after the request was sent"))
        case Outcome.BLOCKED:
            return Suppress(_reason(result, "bot was blocked by the user"), "blocked")
        case Outcome.DEACTIVATED:
            return Suppress(_reason(result, "user is deactivated"), "deactivated")
        case Outcome.CHAT_GONE:
            return Suppress(_reason(result, "chat not found"), "gone")
        case Outcome.NOT_STARTED:
            return Suppress(_reason(result, "bot can't initiate conversation"), "gone")
        case Outcome.BAD_REQUEST:
            return MarkFailed(_reason(result, "bad request"))
        case Outcome.UNAUTHORIZED:
            return StopBot(_reason(result, "unauthorized: the bot token was rejected"))
        case _:
            assert_never(outcome)


def retry_delay(result: SendResult) -> float:
    """How long a 429 asks to wait: its retry_after, capped, or a fallback when unusable."""
    wait = result.retry_after
    if wait is None or not wait >= 0:  # also rejects NaN
        wait = FALLBACK_RETRY_AFTER
    return min(wait, MAX_RETRY_AFTER)
