"""Fault decisions: which request gets a 5xx, a reset, a stall or a 429, from a seeded RNG.

The injector only decides; the server carries the decision out. Storm times are measured
from the moment the faults were set, with an injected clock.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable

from .config import FaultConfig

NONE, ERROR_500, ERROR_502, RESET, STALL, STORM, RANDOM_429 = (
    "none", "500", "502", "reset", "stall", "storm", "429",
)  # fmt: skip


class FaultInjector:
    def __init__(
        self, config: FaultConfig, seed: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rng = random.Random(seed ^ 0x5EED)
        self.clock = clock
        self.set(config)

    def set(self, config: FaultConfig) -> None:
        self.config = config
        self.since = self.clock()
        self._flip = False

    def storm_left(self) -> float:
        elapsed = self.clock() - self.since
        left = 0.0
        for start, duration in self.config.storms:
            if start <= elapsed < start + duration:
                left = max(left, start + duration - elapsed)
        return left

    def decide(self) -> tuple[str, int]:
        """(kind, retry_after) for one request of a send method."""
        cfg = self.config
        if not cfg.active:
            return NONE, 0
        left = self.storm_left()
        if left > 0:
            return STORM, max(1, math.ceil(left))
        roll = self.rng.random()
        for kind, share in ((RESET, cfg.reset), ("5xx", cfg.error_5xx), (STALL, cfg.stall),
                            (RANDOM_429, cfg.rate_429)):  # fmt: skip
            if roll < share:
                if kind == "5xx":
                    self._flip = not self._flip
                    return (ERROR_502 if self._flip else ERROR_500), 0
                return kind, 1
            roll -= share
        return NONE, 0
