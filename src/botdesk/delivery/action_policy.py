"""What to do after an edit or a deletion answered: a pure function, like ``policy.decide``.

Transport and chat outcomes follow the send rules (``policy.decide``): 429 pauses the bot and
retries, network and server errors retry with backoff, an answer that never came is
uncertain (never repeated automatically), a blocked or gone chat is suppressed. Telegram's
own refusals become failures with a reason an operator can act on, except "message is not
modified" on an edit: the message already shows the new content, which is what was asked.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from botdesk.delivery import policy
from botdesk.telegram.actions import ActionResult, Refusal

ActionKind = Literal["edit", "recall"]

UNCHANGED = "unchanged: the message already had this content"
REASONS: dict[tuple[ActionKind, Refusal], str] = {
    ("edit", Refusal.MESSAGE_GONE): (
        "message to edit not found: the recipient deleted it, or it was recalled"
    ),
    ("recall", Refusal.MESSAGE_GONE): (
        "message to delete not found: already deleted by the recipient or an earlier recall"
    ),
    ("recall", Refusal.TOO_OLD): (
        "too old to delete: Telegram lets a bot delete a message only within 48 hours of sending it"
    ),
    ("recall", Refusal.CANT_DELETE): "Telegram refused: message can't be deleted",
    ("edit", Refusal.CANT_EDIT): "Telegram refused: message can't be edited",
    ("edit", Refusal.WRONG_KIND): "Telegram refused: the message has no text or caption to edit",
}


@dataclass(frozen=True)
class Done:
    """Edited or deleted; ``note`` says how when it is worth saying (unchanged)."""

    note: str | None = None


ActionDecision = (
    Done
    | policy.Retry
    | policy.Suppress
    | policy.MarkUncertain
    | policy.MarkFailed
    | policy.StopBot
)


def decide(
    kind: ActionKind,
    answer: ActionResult,
    *,
    attempt: int,
    retry: policy.RetryPolicy,
    rng: random.Random,
) -> ActionDecision:
    """What to do after ``attempt`` (1-based) of an ``kind`` ended with ``answer``."""
    refusal = answer.refusal
    if refusal is Refusal.NOT_MODIFIED and kind == "edit":
        return Done(UNCHANGED)
    if refusal is not None:
        reason = REASONS.get((kind, refusal))
        detail = answer.result.description or refusal.value
        return policy.MarkFailed(reason or f"Telegram refused: {detail}")
    d = policy.decide(answer.result, attempt=attempt, policy=retry, rng=rng)
    if isinstance(d, policy.MarkSent):
        return Done()
    return d
