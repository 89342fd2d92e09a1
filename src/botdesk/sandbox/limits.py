"""Telegram's send limits: token buckets per bot, per chat and per group, paid broadcasts.

The clock is injected (a callable returning monotonic seconds) so property tests can
drive time. A decision is all-or-nothing: a message consumes from every bucket it passes
through or from none, and a refused message leaves no trace but (optionally) a penalty.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]

STAR_TENTHS_PER_PAID_MESSAGE = 1  # 0.1 Star per message above the free rate
MAX_PENALTY = 3600


class TokenBucket:
    """A bucket of ``burst`` tokens refilled at ``rate`` per second."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = now

    def refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now

    def wait(self, now: float) -> float:
        """Seconds until one token is available (0 if available now)."""
        self.refill(now)
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / self.rate

    def take(self, cost: float = 1.0) -> None:
        # A message worth several (an album's items) may leave the bucket in debt: it is
        # admitted with one token, and the refill pays the rest back before the next one.
        self.tokens -= cost


@dataclass(frozen=True)
class Decision:
    """``retry_after`` > 0 means refused (429); ``paid`` means it cost 0.1 Star."""

    retry_after: int = 0
    paid: bool = False
    no_stars: bool = False

    @property
    def admitted(self) -> bool:
        return self.retry_after == 0 and not self.no_stars


ADMIT = Decision()
ADMIT_PAID = Decision(paid=True)
NO_STARS = Decision(no_stars=True)


class Limiter:
    """Admission control for outgoing messages of every bot in one sandbox."""

    def __init__(
        self,
        *,
        bot_rate: float,
        bot_burst: float,
        chat_rate: float,
        chat_burst: float,
        group_per_minute: float,
        group_burst: float,
        paid_rate: float,
        flood_penalty: bool = False,
        enabled: bool = True,
        clock: Clock = time.monotonic,
    ) -> None:
        self.bot_rate, self.bot_burst = bot_rate, bot_burst
        self.chat_rate, self.chat_burst = chat_rate, chat_burst
        self.group_rate, self.group_burst = group_per_minute / 60.0, group_burst
        # A third of a second's worth, like the free bucket.
        self.paid_rate, self.paid_burst = paid_rate, max(bot_burst, paid_rate / 3.0)
        self.flood_penalty = flood_penalty
        self.enabled = enabled
        self.clock = clock
        self._buckets: dict[tuple[str, int, int], TokenBucket] = {}
        self._blocked_until: dict[tuple[str, int, int], tuple[float, int]] = {}

    def reset(self) -> None:
        self._buckets.clear()
        self._blocked_until.clear()

    def set_limits(
        self,
        *,
        bot_rate: float | None = None,
        chat_rate: float | None = None,
        group_per_minute: float | None = None,
        paid_rate: float | None = None,
    ) -> dict[str, float]:
        """Change the rates enforced from now on (bursts stay); what each bucket accrued so
        far at its old rate is kept. Returns the rates now in force."""
        changes = {
            "bot": bot_rate,
            "chat": chat_rate,
            "group": None if group_per_minute is None else group_per_minute / 60.0,
            "paid": paid_rate,
        }
        for kind, rate in changes.items():
            if rate is not None and not (rate > 0 and math.isfinite(rate)):
                raise ValueError(f"{kind} rate must be a positive number")
        now = self.clock()
        if bot_rate is not None:
            self.bot_rate = bot_rate
        if chat_rate is not None:
            self.chat_rate = chat_rate
        if changes["group"] is not None:
            self.group_rate = changes["group"]
        if paid_rate is not None:
            self.paid_rate = paid_rate
        for key, bucket in self._buckets.items():
            rate = changes.get(key[0])
            if rate is not None:
                bucket.refill(now)
                bucket.rate = rate
        return self.rates()

    def rates(self) -> dict[str, float]:
        return {
            "bot_rate": self.bot_rate,
            "chat_rate": self.chat_rate,
            "group_per_minute": self.group_rate * 60.0,
            "paid_rate": self.paid_rate,
        }

    def _bucket(
        self, key: tuple[str, int, int], rate: float, burst: float, now: float
    ) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(rate, burst, now)
        return bucket

    def check(
        self,
        bot_id: int,
        chat_id: int,
        *,
        group: bool,
        paid: bool,
        stars_tenths: int,
        cost: int = 1,
    ) -> Decision:
        """Decide one message from ``bot_id`` to ``chat_id`` and consume on admission.

        ``cost``: how many messages it is for the bot's limits (an album's items, each counted
        like Telegram does); the chat and group buckets count the album once."""
        if not self.enabled:
            return ADMIT
        now = self.clock()
        free = self._bucket(("bot", bot_id, 0), self.bot_rate, self.bot_burst, now)
        chat = self._bucket(("chat", bot_id, chat_id), self.chat_rate, self.chat_burst, now)
        gates: list[tuple[tuple[str, int, int], TokenBucket]] = [(("chat", bot_id, chat_id), chat)]
        if group:
            key = ("group", bot_id, chat_id)
            gates.append((key, self._bucket(key, self.group_rate, self.group_burst, now)))
        free_wait = free.wait(now)
        costs_star = False
        if paid:
            key = ("paid", bot_id, 0)
            gates.append((key, self._bucket(key, self.paid_rate, self.paid_burst, now)))
            costs_star = free_wait > 0
        else:
            gates.append((("bot", bot_id, 0), free))
        worst_key, worst = None, 0.0
        for key, bucket in gates:
            wait = max(bucket.wait(now), self._blocked_until.get(key, (0.0, 0))[0] - now)
            if wait > worst:
                worst_key, worst = key, wait
        if worst_key is not None:
            return Decision(retry_after=self._refuse(worst_key, worst, now))
        if costs_star and stars_tenths < STAR_TENTHS_PER_PAID_MESSAGE * cost:
            return NO_STARS
        for key, bucket in gates:
            bucket.take(cost if key[0] in ("bot", "paid") else 1.0)
        if paid and not costs_star:
            free.take(cost)
        return ADMIT_PAID if costs_star else ADMIT

    def check_call(self, bot_id: int) -> Decision:
        """Decide a request that is not a new message (an edit, a deletion, getChat): it
        counts against the bot's own limit only, as Telegram's flood control does."""
        if not self.enabled:
            return ADMIT
        now = self.clock()
        key = ("bot", bot_id, 0)
        free = self._bucket(key, self.bot_rate, self.bot_burst, now)
        wait = max(free.wait(now), self._blocked_until.get(key, (0.0, 0))[0] - now)
        if wait > 0:
            return Decision(retry_after=self._refuse(key, wait, now))
        free.take()
        return ADMIT

    def _refuse(self, key: tuple[str, int, int], wait: float, now: float) -> int:
        announced = max(1, math.ceil(wait))
        if self.flood_penalty:
            # Telegram lengthens the wait of a client that keeps hammering during its
            # retry_after window: each violation inside the window doubles the window.
            until, length = self._blocked_until.get(key, (0.0, 0))
            if until > now:
                announced = min(MAX_PENALTY, max(announced, 2 * length))
            self._blocked_until[key] = (now + announced, announced)
        return announced
