"""The live delivery rate as series over time, without Qt (the chart only draws them).

Each series (a bot, or a campaign) keeps its samples as (time, msg/s), at most one per
``every`` seconds and none older than ``span`` seconds. The x values are seconds before the
newest sample, so a gap in sampling (a slow refresh) shows as a gap, not as an even spacing.
A series with fewer than two samples has nothing to draw: a line needs two points, and one
drawn from a single sample (or from index numbers) reads as a trend that was never measured.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

MIN_SAMPLES = 2


@dataclass
class RateSeries:
    span: float = 60.0
    every: float = 1.0
    samples: dict[str, deque[tuple[float, float]]] = field(default_factory=dict)

    def add(self, name: str, value: float, *, now: float) -> bool:
        """Record ``value`` at ``now`` (seconds, monotonic); False when sampled too soon."""
        got = self.samples.setdefault(name, deque())
        # 5% slack: a 1 s refresh timer that fires a few ms early is still one sample a second.
        if got and now - got[-1][0] < self.every * 0.95:
            return False
        got.append((now, float(value)))
        while got and now - got[0][0] > self.span:
            got.popleft()
        return True

    def drop(self, name: str) -> None:
        """Forget a series (its campaign stopped running)."""
        self.samples.pop(name, None)

    def ready(self, name: str) -> bool:
        return len(self.samples.get(name, ())) >= MIN_SAMPLES

    def points(self, name: str) -> tuple[list[float], list[float]]:
        """(seconds before the newest sample, msg/s); empty until ``ready``."""
        got = self.samples.get(name)
        if not got or len(got) < MIN_SAMPLES:
            return [], []
        last = got[-1][0]
        return [round(t - last, 3) for t, _v in got], [v for _t, v in got]

    def latest(self, name: str) -> float | None:
        got = self.samples.get(name)
        return got[-1][1] if got else None

    def names(self) -> list[str]:
        return list(self.samples)
