"""Counters of what the sandbox answered, for the control API and benchmarks."""

from __future__ import annotations

from collections import Counter
from typing import Any


class Stats:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.accepted = 0
        self.rate_limited = 0
        self.stars_tenths = 0
        self.errors: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.per_bot: dict[str, Counter[str]] = {}

    def bot(self, username: str) -> Counter[str]:
        counter = self.per_bot.get(username)
        if counter is None:
            counter = self.per_bot[username] = Counter()
        return counter

    def snapshot(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "rate_limited": self.rate_limited,
            "errors": dict(self.errors),
            "stars_spent": self.stars_tenths / 10,
            "faults": dict(self.faults),
            "bots": {
                name: {
                    "accepted": c["accepted"],
                    "rate_limited": c["rate_limited"],
                    "paid": c["paid"],
                    "stars_spent": c["stars_tenths"] / 10,
                    "errors": c["errors"],
                }
                for name, c in self.per_bot.items()
            },
        }
