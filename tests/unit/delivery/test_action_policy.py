"""The pure parts of campaign actions: Telegram's answers read as refusals, and decisions."""

from __future__ import annotations

import random

import pytest

from botdesk.delivery import action_policy, policy
from botdesk.telegram.actions import ActionResult, Refusal, refusal_of
from botdesk.telegram.outcomes import Outcome, SendResult

RETRY = policy.RetryPolicy()


def bad(description: str) -> SendResult:
    return SendResult(Outcome.BAD_REQUEST, error_code=400, description=description)


@pytest.mark.parametrize(
    ("description", "refusal"),
    [
        (
            "Bad Request: message is not modified: specified new message content and reply "
            "markup are exactly the same as a current content and reply markup of the message",
            Refusal.NOT_MODIFIED,
        ),
        ("Bad Request: message to edit not found", Refusal.MESSAGE_GONE),
        ("Bad Request: message to delete not found", Refusal.MESSAGE_GONE),
        ("Bad Request: message can't be deleted for everyone", Refusal.TOO_OLD),
        ("Bad Request: message can't be deleted", Refusal.CANT_DELETE),
        ("Bad Request: message can't be edited", Refusal.CANT_EDIT),
        ("Bad Request: there is no caption in the message to edit", Refusal.WRONG_KIND),
        ("Bad Request: can't parse entities", None),
    ],
)
def test_refusals_read_from_descriptions(description: str, refusal: Refusal | None) -> None:
    assert refusal_of(bad(description)) is refusal


def test_only_bad_requests_are_refusals() -> None:
    blocked = SendResult(Outcome.BLOCKED, description="message to delete not found")
    assert refusal_of(blocked) is None


def decide(kind: action_policy.ActionKind, result: SendResult) -> action_policy.ActionDecision:
    answer = ActionResult(result, refusal_of(result))
    return action_policy.decide(kind, answer, attempt=1, retry=RETRY, rng=random.Random(1))


def test_done_and_not_modified() -> None:
    assert decide("edit", SendResult(Outcome.SENT, message_id=3)) == action_policy.Done()
    not_modified = bad("Bad Request: message is not modified: ...")
    assert decide("edit", not_modified) == action_policy.Done(action_policy.UNCHANGED)


def test_refusals_fail_with_reasons_an_operator_understands() -> None:
    old = decide("recall", bad("Bad Request: message can't be deleted for everyone"))
    assert isinstance(old, policy.MarkFailed) and "within 48 hours" in old.reason
    gone = decide("recall", bad("Bad Request: message to delete not found"))
    assert isinstance(gone, policy.MarkFailed) and "already deleted" in gone.reason
    other = decide("edit", bad("Bad Request: message can't be deleted"))
    assert isinstance(other, policy.MarkFailed) and "message can't be deleted" in other.reason


def test_transport_outcomes_follow_the_send_rules() -> None:
    wait = decide("recall", SendResult(Outcome.RETRY_AFTER, retry_after=3.0))
    assert wait == policy.Retry(3.0, pause_bot=True)
    lost = decide("edit", SendResult(Outcome.UNKNOWN_AFTER_SEND, description="reset"))
    assert lost == policy.MarkUncertain("reset")
    blocked = decide("edit", SendResult(Outcome.BLOCKED, description="blocked"))
    assert blocked == policy.Suppress("blocked", "blocked")
    assert isinstance(decide("edit", SendResult(Outcome.UNAUTHORIZED)), policy.StopBot)
    plain = decide("edit", bad("Bad Request: can't parse entities"))
    assert plain == policy.MarkFailed("Bad Request: can't parse entities")
