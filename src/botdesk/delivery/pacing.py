"""What every request of a bot's engines does around the bot's rate limiter, in one place.

Campaign sends (``worker``), edits and recalls (``action_worker``), ``subscribers import
--verify`` and a copy campaign's check of its source chat (getChat) all go the same way
through ``Gate``:

1. ``admit``: wait for the limiter (``cost`` messages: an album of N items is N);
2. the caller commits its intent (``sending`` / ``acting``), which may take a while;
3. ``depart``: wait for the slot the limiter chose on the wire (``WirePacer``), and learn
   whether a 429 came back meanwhile: the bucket is empty then, so the request would only
   draw another one; it goes back to its queue instead (``Held``: for how long);
4. ``answered``: an accepted request feeds the controller's measurement, a 429 pauses the bot
   (or only the chat whose own limit explains it), lowers the learned rate and stores it
   (``remember``: the bot's row, so a restart starts from it).

A request that commits no intent (getChat) takes all four steps in one: ``Gate.call``, which
also asks again after a 429 (``attempts`` times at most).

Nothing here decides what a row becomes: that stays with ``policy.decide`` and
``action_policy.decide``; their ``Retry(pause_bot=True)`` needs no more work from the caller.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from botdesk.clock import Clock
from botdesk.delivery import policy
from botdesk.delivery.ratelimit import BotRateLimiter, Priority
from botdesk.telegram.outcomes import Outcome, SendResult


class WirePacer:
    """Restores, after the group commit, the spacing the rate limiter chose.

    Senders are admitted by the limiter one by one, but leave only once their ``sending`` mark
    is committed, and one commit releases every sender waiting for it at the same instant: the
    evenly spaced admissions would hit the wire as bursts (the sandbox answers 429 to bursts
    over its bucket). Each sender reserves its departure here, GCRA-style, at the limiter's
    current rate and burst; a sender whose commit was quick leaves at once. A sender that must
    wait leaves on the limiter's tick grid (see ``ratelimit``), with the others of its tick in
    one wake-up; the reservation still spaces them by the rate, so the burst never grows.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._tat: dict[bool, float] = {}

    def departure(
        self, *, paid: bool, rate: float, burst: float, tick: float = 0.0, cost: int = 1
    ) -> float:
        """Monotonic time at which this send (``cost`` messages) may leave; reserves it."""
        now = self._clock.monotonic()
        t = 1.0 / rate
        tat = max(self._tat.get(paid, now), now)
        at = tat - (burst - 1.0) * t
        if at <= now:
            at = now
        elif tick:
            # Later than the bucket's own time, by less than a tick: the limiter only grids
            # where the burst covers a tick, so ``tat`` stays ahead and nothing is lost.
            at = math.ceil(at / tick) * tick
        self._tat[paid] = max(tat, at) + t * cost
        return at


@dataclass(frozen=True)
class Held:
    """Not sent: a 429 came back while the request waited; back to its queue for ``seconds``."""

    seconds: float


DEFAULT_CALL_ATTEMPTS = 5


class Gate:
    """One bot's limiter, pacer and learned-rate bookkeeping, shared by its engines."""

    def __init__(
        self,
        limiter: BotRateLimiter,
        clock: Clock,
        *,
        remember: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.limiter = limiter
        self.clock = clock
        self.pacer = WirePacer(clock)
        self._remember = remember

    async def admit(
        self,
        chat_id: int,
        *,
        is_group: bool = False,
        paid: bool = False,
        cost: int = 1,
        priority: Priority = Priority.CAMPAIGN,
    ) -> float:
        """Wait until every limit allows the request; the monotonic time it was admitted."""
        await self.limiter.acquire(
            chat_id, is_group=is_group, priority=priority, paid=paid, cost=cost
        )
        return self.clock.monotonic()

    async def depart(self, admitted_at: float, *, paid: bool = False, cost: int = 1) -> Held | None:
        """Wait for the request's slot on the wire; ``Held`` if it must not go now."""
        limiter = self.limiter
        leave = self.pacer.departure(
            paid=paid,
            rate=limiter.effective_rate(paid=paid),
            burst=limiter.burst_for(paid=paid),
            tick=limiter.tick(paid=paid),
            cost=cost,
        )
        wait = leave - self.clock.monotonic()
        if wait > 0:
            await self.clock.sleep(wait)
        paused = limiter.rate_limited_since(admitted_at)
        return None if paused is None else Held(paused)

    async def answered(
        self,
        result: SendResult,
        *,
        sent_at: float,
        chat_id: int,
        is_group: bool = False,
        paid: bool = False,
        cost: int = 1,
    ) -> None:
        """Feed Telegram's answer to the limiter (see the module docstring)."""
        if result.outcome is Outcome.SENT:
            self.limiter.on_accepted(paid=paid, sent_at=sent_at, cost=cost)
        elif result.outcome is Outcome.RETRY_AFTER:
            self.limiter.on_rate_limited(
                policy.retry_delay(result), paid=paid, chat_id=chat_id, is_group=is_group
            )
            if self._remember is not None:
                await self._remember()

    async def call(
        self,
        request: Callable[[], Awaitable[SendResult]],
        *,
        chat_id: int,
        is_group: bool = False,
        attempts: int = DEFAULT_CALL_ATTEMPTS,
        priority: Priority = Priority.CAMPAIGN,
    ) -> SendResult:
        """Send ``request`` (a call with no ledger row: getChat) through the limiter: wait
        for a slot, send, feed the answer; after a 429 (Telegram's, or one that came back
        while it waited for the wire) wait the pause out and ask again, ``attempts`` times at
        most. The last answer; a ``RETRY_AFTER`` one if no attempt got another."""
        if not attempts >= 1:
            raise ValueError("attempts must be at least 1")
        result = SendResult(Outcome.RETRY_AFTER)
        for _ in range(attempts):
            admitted_at = await self.admit(chat_id, is_group=is_group, priority=priority)
            held = await self.depart(admitted_at)
            if held is not None:
                result = SendResult(Outcome.RETRY_AFTER, retry_after=held.seconds)
                continue  # the limiter is paused: the next admission waits it out
            sent_at = self.clock.monotonic()
            result = await request()
            await self.answered(result, sent_at=sent_at, chat_id=chat_id, is_group=is_group)
            if result.outcome is not Outcome.RETRY_AFTER:
                return result
        return result
