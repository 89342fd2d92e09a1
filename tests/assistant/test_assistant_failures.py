"""The retry table, the circuit breaker and the subscriber texts."""

from __future__ import annotations

import pytest

from botdesk.assistant.failures import (
    OPERATOR_SEVERITY,
    BreakerState,
    CircuitBreaker,
    FailureKind,
    ProviderFailure,
    classify_status,
    retry_delay,
)
from botdesk.assistant.texts import TEXTS, language_of, text_for


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("kind", ["timeout", "server", "unknown"])
def test_transient_kinds_retry_three_attempts_with_exponential_backoff(kind: FailureKind) -> None:
    f = ProviderFailure(kind, "x")
    assert [retry_delay(f, a) for a in (1, 2, 3)] == [0.5, 1.0, None]


@pytest.mark.parametrize("kind", ["auth", "safety", "not_found"])
def test_permanent_kinds_never_retry(kind: FailureKind) -> None:
    assert retry_delay(ProviderFailure(kind, "x"), 1) is None


def test_rate_limit_retries_only_after_a_short_server_delay() -> None:
    assert retry_delay(ProviderFailure("rate_limited", "q", retry_after=2.0), 1) == 2.0
    assert retry_delay(ProviderFailure("rate_limited", "q", retry_after=40.0), 1) is None
    assert retry_delay(ProviderFailure("rate_limited", "q"), 1) is None


@pytest.mark.parametrize(
    ("status", "kind"),
    [(429, "rate_limited"), (401, "auth"), (403, "auth"), (404, "not_found"), (500, "server"),
     (503, "server"), (504, "timeout"), (418, "unknown")],
)  # fmt: skip
def test_http_status_classification(status: int, kind: str) -> None:
    assert classify_status(status) == kind


def test_operator_severity_matches_the_table() -> None:
    assert OPERATOR_SEVERITY["auth"] == OPERATOR_SEVERITY["not_found"] == "alert"
    assert OPERATOR_SEVERITY["rate_limited"] == "warning"


def test_breaker_opens_after_consecutive_failures_and_recovers_half_open() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(clock=clock, failure_threshold=3, reset_after=30.0)
    for _ in range(2):
        breaker.record_failure("server")
    breaker.record_failure("safety")  # a refused prompt says nothing about the provider
    assert breaker.allow()
    breaker.record_failure("timeout")
    assert breaker.state is BreakerState.OPEN and not breaker.allow()
    clock.now += 30.0
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()  # one trial call
    assert not breaker.allow()  # and only one
    breaker.record_failure("server")
    assert breaker.state is BreakerState.OPEN
    clock.now += 30.0
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED and breaker.allow()


def test_success_resets_the_consecutive_count() -> None:
    breaker = CircuitBreaker(clock=FakeClock(), failure_threshold=2)
    breaker.record_failure("server")
    breaker.record_success()
    breaker.record_failure("server")
    assert breaker.state is BreakerState.CLOSED


def test_texts_exist_for_every_key_in_every_language_and_fall_back_to_english() -> None:
    keys = set(TEXTS["en"])
    for lang, texts in TEXTS.items():
        assert set(texts) == keys, lang
    assert (
        language_of("de-AT") == "de" and language_of("pt-br") == "en" and language_of(None) == "en"
    )
    assert text_for("safety", "uk") != text_for("safety", "en")
    assert text_for("safety", "fr") == text_for("safety", "en")
