"""Provider failures as values, the retry rule table, and the circuit breaker.

Owns ``ProviderFailure`` (every provider turns its library's errors into one of seven kinds),
``retry_delay`` (a pure function from failure and attempt to "retry after N seconds" or "give
up"), how loudly the operator hears about each kind, and ``CircuitBreaker``. User-facing texts
live in ``texts``; this module never decides what a subscriber reads.

    kind          retry                                   operator
    timeout       yes, 3 attempts, exponential backoff    log
    rate_limited  only if server's retry delay is short   warning (quota details)
    auth          no                                      alert: configuration error
    safety        no                                      log
    not_found     no                                      alert
    server        yes, 3 attempts, exponential backoff    log
    unknown       yes, 3 attempts, exponential backoff    log with details
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from botdesk.errors import BotdeskError

FailureKind = Literal["timeout", "rate_limited", "auth", "safety", "not_found", "server", "unknown"]
Clock = Callable[[], float]

MAX_ATTEMPTS = 3
BACKOFF_BASE = 0.5  # seconds before the 2nd attempt; doubles after
MAX_SHORT_RETRY_AFTER = 5.0  # a 429 asking for longer than this is not worth holding a chat


class ProviderFailure(BotdeskError):
    """A provider call failed; ``detail`` is for the operator's log, never for subscribers."""

    def __init__(self, kind: FailureKind, detail: str, *, retry_after: float | None = None) -> None:
        self.kind: FailureKind = kind
        self.detail = detail
        self.retry_after = retry_after
        super().__init__(f"{kind}: {detail}")


def classify_status(status: int) -> FailureKind:
    """Map an HTTP status to a failure kind (shared by every HTTP-based provider)."""
    if status == 429:
        return "rate_limited"
    if status in (401, 403):
        return "auth"
    if status == 404:
        return "not_found"
    if status in (408, 504):
        return "timeout"
    if status >= 500:
        return "server"
    return "unknown"


def retry_delay(
    failure: ProviderFailure,
    attempt: int,
    *,
    max_attempts: int = MAX_ATTEMPTS,
    backoff_base: float = BACKOFF_BASE,
    max_short_retry_after: float = MAX_SHORT_RETRY_AFTER,
) -> float | None:
    """Seconds to wait before the next attempt, or None to give up. ``attempt`` starts at 1."""
    if attempt >= max_attempts:
        return None
    backoff = backoff_base * float(2 ** (attempt - 1))
    if failure.kind in ("timeout", "server", "unknown"):
        return backoff
    if failure.kind == "rate_limited":
        if failure.retry_after is not None and failure.retry_after <= max_short_retry_after:
            return max(failure.retry_after, backoff)
        return None
    return None


Severity = Literal["log", "warning", "alert"]

OPERATOR_SEVERITY: dict[FailureKind, Severity] = {
    "timeout": "log",
    "rate_limited": "warning",
    "auth": "alert",
    "safety": "log",
    "not_found": "alert",
    "server": "log",
    "unknown": "log",
}

# Failures that say nothing about the provider's health (the prompt was refused) must not trip
# the breaker; everything else means "this provider is not answering".
COUNTS_FOR_BREAKER: frozenset[FailureKind] = frozenset(
    {"timeout", "rate_limited", "auth", "not_found", "server", "unknown"}
)


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass
class CircuitBreaker:
    """Stops calling a provider after ``failure_threshold`` consecutive failures.

    While open, ``allow()`` is False (conversations go to a human); after ``reset_after``
    seconds one trial call is let through (half-open): success closes the breaker, failure opens
    it again for another ``reset_after``.
    """

    clock: Clock
    failure_threshold: int = 5
    reset_after: float = 60.0
    _failures: int = 0
    _opened_at: float | None = None
    _trial_in_flight: bool = False

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self.clock() - self._opened_at >= self.reset_after:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def allow(self) -> bool:
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._trial_in_flight:
            self._trial_in_flight = True
            return True
        return False

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._trial_in_flight = False

    def record_failure(self, kind: FailureKind) -> None:
        if kind not in COUNTS_FOR_BREAKER:
            self._trial_in_flight = False
            return
        self._failures += 1
        if self._trial_in_flight or self._failures >= self.failure_threshold:
            self._opened_at = self.clock()
        self._trial_in_flight = False
