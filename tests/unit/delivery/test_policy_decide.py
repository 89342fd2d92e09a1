"""delivery.policy.decide: table of outcomes, bounded retries, properties of the delays."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from botdesk.delivery.policy import (
    Decision,
    MarkFailed,
    MarkSent,
    MarkUncertain,
    Retry,
    RetryPolicy,
    StopBot,
    Suppress,
    backoff,
    decide,
)
from botdesk.telegram.outcomes import Outcome, SendResult

POLICY = RetryPolicy()


def _decide(result: SendResult, attempt: int = 1, policy: RetryPolicy = POLICY) -> Decision:
    return decide(result, attempt=attempt, policy=policy, rng=random.Random(7))


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (SendResult(Outcome.SENT, message_id=42), MarkSent(42)),
        (SendResult(Outcome.SENT, message_id=5, file_id="F"), MarkSent(5, "F")),
        (SendResult(Outcome.RETRY_AFTER, retry_after=12.0), Retry(12.0, pause_bot=True)),
        (SendResult(Outcome.RETRY_AFTER), Retry(1.0, pause_bot=True)),
        (
            SendResult(Outcome.BLOCKED, description="Forbidden: bot was blocked by the user"),
            Suppress("Forbidden: bot was blocked by the user", "blocked"),
        ),
        (
            SendResult(Outcome.DEACTIVATED, description="Forbidden: user is deactivated"),
            Suppress("Forbidden: user is deactivated", "deactivated"),
        ),
        (SendResult(Outcome.CHAT_GONE), Suppress("chat not found", "gone")),
        (SendResult(Outcome.NOT_STARTED), Suppress("bot can't initiate conversation", "gone")),
        (
            SendResult(Outcome.UNKNOWN_AFTER_SEND, description="read timeout"),
            MarkUncertain("read timeout"),
        ),
        (
            SendResult(Outcome.BAD_REQUEST, description="Bad Request: message is too long"),
            MarkFailed("Bad Request: message is too long"),
        ),
        (SendResult(Outcome.UNAUTHORIZED, description="Unauthorized"), StopBot("Unauthorized")),
    ],
)
def test_table(result: SendResult, expected: Decision) -> None:
    assert _decide(result) == expected


def test_every_outcome_has_a_decision() -> None:
    for outcome in Outcome:
        assert _decide(SendResult(outcome)) is not None


def test_server_errors_are_retried_a_bounded_number_of_times() -> None:
    result = SendResult(Outcome.SERVER_ERROR, error_code=502, description="Bad Gateway")
    for attempt in range(1, POLICY.max_attempts_server):
        decision = _decide(result, attempt)
        assert isinstance(decision, Retry) and not decision.pause_bot
    final = _decide(result, POLICY.max_attempts_server)
    assert isinstance(final, MarkFailed)
    assert final.reason.startswith("server error 502")


def test_connect_failures_back_off_then_fail() -> None:
    result = SendResult(Outcome.CONNECT_FAILED, description="refused")
    for attempt in range(1, POLICY.max_attempts_connect):
        assert isinstance(_decide(result, attempt), Retry)
    assert isinstance(_decide(result, POLICY.max_attempts_connect), MarkFailed)


def test_backoff_ceiling_grows_exponentially_then_caps() -> None:
    class Top(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    policy = RetryPolicy(base_backoff=0.5, max_backoff=3.0)
    ceilings = [backoff(n, policy=policy, rng=Top()) for n in range(1, 6)]
    assert ceilings == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_jitter_spreads_delays() -> None:
    rng = random.Random(1)
    delays = {backoff(4, policy=POLICY, rng=rng) for _ in range(50)}
    assert len(delays) > 40
    assert all(0 <= d <= 4.0 for d in delays)


def test_429_is_never_counted_against_a_budget() -> None:
    assert _decide(SendResult(Outcome.RETRY_AFTER, retry_after=2), attempt=10_000) == Retry(
        2, pause_bot=True
    )


def test_invalid_policy_is_rejected() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts_server=0)
    with pytest.raises(ValueError):
        RetryPolicy(base_backoff=5, max_backoff=1)


policies = st.builds(
    RetryPolicy,
    max_attempts_server=st.integers(1, 10),
    max_attempts_connect=st.integers(1, 10),
    base_backoff=st.floats(0, 5),
    max_backoff=st.floats(5, 120),
)
results = st.builds(
    SendResult,
    outcome=st.sampled_from(Outcome),
    message_id=st.none() | st.integers(1, 10**9),
    retry_after=st.none() | st.floats(allow_nan=True, allow_infinity=True),
    error_code=st.none() | st.integers(100, 599),
    description=st.text(max_size=30),
)


@given(result=results, attempt=st.integers(1, 10**6), policy=policies, seed=st.integers())
def test_properties(result: SendResult, attempt: int, policy: RetryPolicy, seed: int) -> None:
    decision = decide(result, attempt=attempt, policy=policy, rng=random.Random(seed))
    if isinstance(decision, Retry):
        assert math.isfinite(decision.delay_s) and decision.delay_s >= 0
        assert decision.delay_s <= max(policy.max_backoff, 3600.0)
        assert decision.pause_bot == (result.outcome is Outcome.RETRY_AFTER)
    # At-most-once: an answer that may mean "delivered" is never retried.
    if result.outcome in (Outcome.UNKNOWN_AFTER_SEND, Outcome.SENT):
        assert not isinstance(decision, Retry)
    if result.outcome is Outcome.UNKNOWN_AFTER_SEND:
        assert isinstance(decision, MarkUncertain)
    # Permanent answers are never retried either.
    if result.outcome in (
        Outcome.BLOCKED,
        Outcome.DEACTIVATED,
        Outcome.CHAT_GONE,
        Outcome.NOT_STARTED,
        Outcome.BAD_REQUEST,
        Outcome.UNAUTHORIZED,
    ):
        assert not isinstance(decision, Retry)
    if result.outcome in (Outcome.SERVER_ERROR, Outcome.CONNECT_FAILED):
        budget = (
            policy.max_attempts_server
            if result.outcome is Outcome.SERVER_ERROR
            else policy.max_attempts_connect
        )
        assert isinstance(decision, Retry) == (attempt < budget)
