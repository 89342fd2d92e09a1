"""Learning the send rate Telegram actually enforces, from its 429 answers.

Telegram's "about 30 messages per second" is an upper bound: heavier messages, newer bots and
media see lower limits, and the only signal is a 429 with ``retry_after``. A fixed cut per 429
(say x0.9 down to half the configured rate) cannot reach a limit of 5/s and keeps provoking
flood errors, which Telegram punishes with longer waits. So the controller measures instead:

- Between two 429 episodes the server accepted ``n`` messages in ``interval`` seconds (the
  pause in between included). Its bucket was empty (under one token) at both 429s, so the
  bucket's refill over the interval is ``n`` give or take one token: ``(n - 1) / interval`` is
  a lower bound of the real limit, and the new rate is just under it (``margin``). After a
  probe, never below the rate held before it (it drew no 429 for a quiet period). Bounded by
  ``max_cut`` (a 429 means we were above the limit: lower at least that much) and ``min_cut``
  (an interval with idle stretches under-estimates; never drop more than this in one step).
- The first episode has no interval to measure yet: the rate is halved (the server's burst
  makes a rate measured from a full bucket meaningless).
- After ``quiet`` seconds without a 429 the rate grows by ``growth`` per second (exponential,
  so 5/s gets back to 30/s in about 100 s when the limit rises again), up to the configured
  rate. The next 429 measures again. Each probe that ends in a 429 doubles the quiet period
  (up to ``MAX_QUIET``; ``CHAT_MAX_QUIET`` for chats and groups): a steady limit is probed
  less and less often.
- The rate never drops below ``floor_share`` of the configured rate.
- ``ramp_from`` (paid broadcasts): before its first 429 the controller starts at that rate
  and doubles it every ``ramp_doubling`` seconds of accepted sending up to the configured
  rate ("slow start"). At 1,000/s every request in flight when the server's bucket runs dry
  draws a 429 (a round trip's worth: dozens); ramping up, the first 429 comes at under
  twice the real limit, and the configured 1,000/s is reached within about 5 s anyway.

Pure logic on explicit ``now`` values (monotonic seconds), so tests drive it with a fake clock.
"""

from __future__ import annotations

import math
from typing import Any

DEFAULT_FLOOR_SHARE = 0.05
DEFAULT_QUIET = 10.0
DEFAULT_GROWTH = 0.02  # per second, once quiet
DEFAULT_FIRST_CUT = 0.5
DEFAULT_MARGIN = 0.97
DEFAULT_MAX_CUT = 0.95
DEFAULT_MIN_CUT = 0.2
PROBE_CUT = 0.75
DEFAULT_RAMP_DOUBLING = 1.0
MAX_QUIET = 60.0
# A chat's or group's limit is the same for every chat of its kind and hardly moves: probing it
# once a minute costs a 429 a minute for as long as the bot sends to chats at their limit.
CHAT_MAX_QUIET = 600.0
# A chat refused at a rate learned before (not probing): the next rate is this share of it.
CHAT_RELEARN_CUT = 0.9
# A chat probe refused within this share above the rate held found the limit unchanged.
CHAT_STEADY = 1.05
# Two episodes further apart than this are not one measurement (traffic may have stopped).
DEFAULT_HORIZON = 120.0
# Fewer accepted sends than this between two episodes carry no measurement (sparse replies).
MIN_SAMPLES = 3


class RateController:
    def __init__(
        self,
        configured: float,
        *,
        floor_share: float = DEFAULT_FLOOR_SHARE,
        quiet: float = DEFAULT_QUIET,
        growth: float = DEFAULT_GROWTH,
        first_cut: float = DEFAULT_FIRST_CUT,
        margin: float = DEFAULT_MARGIN,
        max_cut: float = DEFAULT_MAX_CUT,
        min_cut: float = DEFAULT_MIN_CUT,
        horizon: float = DEFAULT_HORIZON,
        ramp_from: float | None = None,
        ramp_doubling: float = DEFAULT_RAMP_DOUBLING,
        max_quiet: float = MAX_QUIET,
    ) -> None:
        if not configured > 0:
            raise ValueError("configured rate must be positive")
        for name, value in (
            ("floor_share", floor_share),
            ("first_cut", first_cut),
            ("margin", margin),
            ("max_cut", max_cut),
            ("min_cut", min_cut),
        ):
            if not 0 < value <= 1:
                raise ValueError(f"{name} must be in (0, 1]")
        if quiet < 0 or growth < 0 or horizon <= 0:
            raise ValueError("quiet and growth must not be negative, horizon must be positive")
        self.configured = configured
        self.floor = configured * floor_share
        self._quiet_base = quiet
        self._quiet = quiet  # doubles each time a probe ends in a 429 (steady limit)
        self._max_quiet = max(quiet, max_quiet)
        self._growth = growth
        self._first_cut = first_cut
        self._margin = margin
        self._max_cut = max_cut
        self._min_cut = min_cut
        self._horizon = horizon
        self._base = configured  # the rate set at the last cut (or restore)
        self._cut_at = -math.inf
        self._episode_at = -math.inf
        self._episode_count = 0
        self._accepted = 0
        self.episodes = 0
        # Slow start: on until the ramp reaches the configured rate, a 429 or a restore.
        self._ramp_from = ramp_from if ramp_from is not None and 0 < ramp_from else None
        self._ramping = self._ramp_from is not None and self._ramp_from < configured
        self._ramp_doubling = ramp_doubling
        self._ramp_at: float | None = None  # the first accepted send's time
        self._seen = -math.inf  # the latest ``now`` asked about

    def _ramp(self, now: float) -> float | None:
        """The slow start's rate now, None once it is over."""
        if not self._ramping:
            return None
        assert self._ramp_from is not None
        self._seen = max(self._seen, now)
        if self._ramp_at is None:
            return self._ramp_from
        r = float(self._ramp_from * 2.0 ** (max(0.0, now - self._ramp_at) / self._ramp_doubling))
        if r >= self.configured:
            self._ramping = False
            return None
        return r

    def rate(self, now: float) -> float:
        """The rate to send at now: the learned one, probing upward once quiet."""
        ramp = self._ramp(now)
        if ramp is not None:
            return ramp
        if self._base >= self.configured:
            return self.configured
        quiet_for = now - self._cut_at - self._quiet
        if quiet_for <= 0:
            return self._base
        return min(self.configured, self._base * math.exp(self._growth * quiet_for))

    def learned(self, now: float) -> float | None:
        """The rate worth remembering across a restart (None: the configured one holds).

        The rate the last 429 left, not the probe's: a probe may be above the limit already,
        and a restart would start by drawing that 429 again."""
        if self._ramping:
            return None
        return None if self.rate(now) >= self.configured else self._base

    def on_accepted(self, sent_at: float | None = None) -> None:
        """Telegram accepted a send that left at ``sent_at``. A send that left before the
        current episode began was drawn from the bucket before it ran empty: counting its late
        answer in the next interval would over-estimate the refill."""
        if sent_at is None or sent_at >= self._episode_at:
            self._accepted += 1
        if self._ramping and self._ramp_at is None:
            self._ramp_at = sent_at if sent_at is not None else self._seen

    def on_rate_limited(self, now: float, *, new_episode: bool) -> float:
        """A 429: lower the rate (once per episode); every 429 restarts the quiet period."""
        current = self.rate(now)
        self._ramping = False
        if not new_episode:
            self._base, self._cut_at = current, now
            return current
        self.episodes += 1
        n = self._accepted - self._episode_count
        interval = now - self._episode_at
        if interval <= self._horizon and n >= MIN_SAMPLES:
            measured = (n - 1) / interval * self._margin
            # Probing since the last cut: the rate held before it drew no 429 for a quiet
            # period, while the interval's average also counts the slow climb (and a full
            # bucket's lost refill), so it under-estimates.
            # The probe overshot the limit by what drained the server's burst: a quarter of
            # the rate at most for bursts of a few seconds' worth.
            probed = now - self._cut_at > self._quiet
            held = max(self._base, current * PROBE_CUT) if probed else 0.0
            if probed:
                # The limit did not move: probe less often, each probe costs a 429.
                self._quiet = min(self._max_quiet, 2 * self._quiet)
            new = min(current * self._max_cut, max(current * self._min_cut, measured, held))
        else:
            new = current * self._first_cut
        if current >= self.configured:
            self._quiet = self._quiet_base  # back at full rate before: a new limit
        self._base = max(self.floor, new)
        self._cut_at = now
        self._episode_at = now
        self._episode_count = self._accepted
        return self._base

    def restore(self, rate: float, now: float) -> None:
        """Start from a rate learned before (a restart): quiet period first, then probe."""
        if rate > 0:
            self._ramping = False
            self._base = min(self.configured, max(self.floor, rate))
            self._cut_at = now


class ChatRateController(RateController):
    """The per-chat (or per-group) limit Telegram enforces, learned from the 429s one chat's
    own limit explains (``ratelimit.CHAT_BLAME_WINDOW``).

    Every chat of a kind is held to the same limit, so one rate serves them all (memory stays
    constant whatever the number of chats); it is not stored across restarts (a restart costs
    a 429 or two per kind). A chat's sends are far too sparse to count accepted ones between
    episodes like ``RateController``: the measurement is the spacing the refused send had
    after the chat's previous one. The server's bucket refused that spacing, so its rate is
    under ``1 / gap``: the new rate is ``first_cut`` of that (a half; ``CHAT_RELEARN_CUT``
    once a rate was learned: a send refused at it was bunched by the network or the limit
    fell a little, and a half again if the step is refused too), or, after a probe
    upward, the rate its previous send was accepted at (the probe's growth over one gap
    below the refused one; never under the rate held before the probe, which drew no 429
    for a quiet period), at most ``margin`` of the refused rate and at least ``PROBE_CUT``
    of it: it settles a few percent under the limit. Probing upward once
    quiet and the floor are ``RateController``'s; the quiet period doubles with each probe
    that ends in a 429 up to ``CHAT_MAX_QUIET`` (ten minutes), and goes there at once when a
    probe found nothing above the rate held (``CHAT_STEADY``): once learned, a steady chat
    limit costs one 429 per ten minutes, and a risen one is found within about that long."""

    def __init__(self, configured: float, **kwargs: Any) -> None:
        kwargs.setdefault("max_quiet", CHAT_MAX_QUIET)
        super().__init__(configured, **kwargs)
        self._stepped = False  # the last cut was a ``CHAT_RELEARN_CUT`` step

    def on_refused(self, now: float, gap: float, *, admitted_at: float) -> float:
        """A 429 on a chat whose send, admitted at ``admitted_at``, came ``gap`` seconds after
        the chat's previous one. A send admitted before the last cut was paced at the old
        rate: it tells nothing new (other chats' sends of the same burst), no second cut."""
        current = self.rate(now)
        if admitted_at < self._cut_at:
            return current
        refused = min(current, 1.0 / gap) if gap > 0 else current
        learned = self._base < self.configured
        probed = learned and now - self._cut_at > self._quiet
        # Nothing learned yet: halve. Refused at a rate learned before (the limit fell a
        # little, or the network bunched two sends): a small step, not another half; refused
        # again right after that step, the limit is well below: halve.
        step = learned and not probed and not self._stepped
        self._stepped = step
        new = refused * (CHAT_RELEARN_CUT if step else self._first_cut)
        if probed:
            # The refused spacing was the rate at the chat's previous admission; the send
            # before it was accepted at the rate one gap earlier, which the probe's growth
            # puts at ``exp(-growth * gap)`` of it (never under the rate held before).
            accepted = max(self._base, refused * math.exp(-self._growth * gap))
            new = max(new, min(accepted, refused * self._margin), refused * PROBE_CUT)
            # Nothing found above the rate held: the limit is where it was learned, so the
            # next probe waits the longest quiet period at once.
            steady = accepted <= self._base * CHAT_STEADY
            self._quiet = self._max_quiet if steady else min(self._max_quiet, 2 * self._quiet)
        elif current >= self.configured:
            self._quiet = self._quiet_base
        self.episodes += 1
        self._base = max(self.floor, new)
        self._cut_at = now
        return self._base
