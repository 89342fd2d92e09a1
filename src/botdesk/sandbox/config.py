"""Sandbox configuration values and the parsers for their command-line spellings.

Owns ``SandboxConfig`` and ``FaultConfig`` (plain frozen dataclasses, validated on
construction) plus ``parse_faults`` / ``parse_latency``, which the CLI, ``python -m
botdesk.sandbox`` and the control API share.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace

from .errors import SandboxError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8081
DEFAULT_BOT_RATE = 30.0
# A third of a second's worth: absorbs the ~90 ms arrival jitter of a client that sends
# evenly, yet a burst far over the rate is refused within the first few hundred ms.
DEFAULT_BOT_BURST = 10.0
DEFAULT_CHAT_RATE = 1.0
DEFAULT_CHAT_BURST = 3.0
DEFAULT_GROUP_PER_MINUTE = 20.0
DEFAULT_GROUP_BURST = 5.0
DEFAULT_PAID_RATE = 1000.0
DEFAULT_LATENCY = (0.03, 0.12)
DEFAULT_STALL_SECONDS = 600.0
DEFAULT_STAR_BALANCE = 0.0


@dataclass(frozen=True)
class FaultConfig:
    """Fault injection. Fractions are per request of a send method (0..1).

    ``storms`` are ``(start, duration)`` pairs in seconds, counted from the moment the
    faults were set (server start for the config given at start): during a storm every
    send answers 429 with ``retry_after`` = seconds left in the storm.
    """

    error_5xx: float = 0.0
    reset: float = 0.0
    stall: float = 0.0
    rate_429: float = 0.0
    storms: tuple[tuple[float, float], ...] = ()
    include_get_updates: bool = False
    stall_seconds: float = DEFAULT_STALL_SECONDS

    def __post_init__(self) -> None:
        for name in ("error_5xx", "reset", "stall", "rate_429"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise SandboxError(f"fault fraction {name}={value} must be within 0..1")
        if self.error_5xx + self.reset + self.stall + self.rate_429 > 1.0:
            raise SandboxError("fault fractions add up to more than 1")
        for start, duration in self.storms:
            if start < 0 or duration <= 0:
                raise SandboxError(f"bad storm {duration}@{start}: need duration > 0, start >= 0")
        if self.stall_seconds <= 0:
            raise SandboxError("stall_seconds must be > 0")

    @property
    def active(self) -> bool:
        return bool(self.error_5xx or self.reset or self.stall or self.rate_429 or self.storms)

    def to_spec(self) -> str:
        parts = []
        for key, name in _SPEC_FRACTIONS.items():
            value = getattr(self, name)
            if value:
                parts.append(f"{key}={value:g}")
        parts.extend(f"storm={d:g}@{s:g}" for s, d in self.storms)
        if self.include_get_updates:
            parts.append("updates=1")
        if self.stall_seconds != DEFAULT_STALL_SECONDS:
            parts.append(f"hold={self.stall_seconds:g}")
        return ",".join(parts)


_SPEC_FRACTIONS = {"5xx": "error_5xx", "reset": "reset", "stall": "stall", "429": "rate_429"}


def parse_faults(spec: str) -> FaultConfig:
    """Parse ``5xx=0.02,reset=0.05,stall=0.01,429=0.1,storm=5@20,updates=1,hold=30``.

    ``storm=D@S`` may repeat; ``updates=1`` also injects faults into getUpdates;
    ``hold`` is how long a stalled answer is held before the connection is dropped.
    """
    values: dict[str, object] = {}
    storms: list[tuple[float, float]] = []
    for raw in spec.replace(";", ",").split(","):
        item = raw.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        value = value.strip()
        if not sep:
            raise SandboxError(f"bad fault '{item}': expected key=value")
        try:
            if key in _SPEC_FRACTIONS:
                values[_SPEC_FRACTIONS[key]] = float(value)
            elif key == "storm":
                duration, at, start = value.partition("@")
                storms.append((float(start) if at else 0.0, float(duration)))
            elif key == "updates":
                values["include_get_updates"] = value.lower() in ("1", "true", "yes", "on")
            elif key == "hold":
                values["stall_seconds"] = float(value)
            else:
                raise SandboxError(
                    f"unknown fault '{key}' (known: 5xx, reset, stall, 429, storm, updates, hold)"
                )
        except ValueError:
            raise SandboxError(f"bad fault value in '{item}'") from None
    return FaultConfig(storms=tuple(storms), **values)  # type: ignore[arg-type]


def parse_latency(spec: str) -> tuple[float, float]:
    """Parse ``MIN-MAX`` (or a single ``N``) in milliseconds into seconds."""
    low, sep, high = spec.strip().partition("-")
    try:
        lo = float(low)
        hi = float(high) if sep else lo
    except ValueError:
        raise SandboxError(f"bad latency '{spec}': expected MIN-MAX in milliseconds") from None
    if lo < 0 or hi < lo or not math.isfinite(hi):
        raise SandboxError(f"bad latency '{spec}': need 0 <= MIN <= MAX")
    return (lo / 1000.0, hi / 1000.0)


@dataclass(frozen=True)
class SandboxConfig:
    """Everything a sandbox needs at start. Rates are per second unless named otherwise.

    ``limits=False`` lifts every rate limit (benchmarks). Webhook retries back off from
    ``webhook_retry_base`` doubling up to ``webhook_retry_max`` seconds.
    """

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    seed: int = 1
    bot_rate: float = DEFAULT_BOT_RATE
    bot_burst: float = DEFAULT_BOT_BURST
    chat_rate: float = DEFAULT_CHAT_RATE
    chat_burst: float = DEFAULT_CHAT_BURST
    group_per_minute: float = DEFAULT_GROUP_PER_MINUTE
    group_burst: float = DEFAULT_GROUP_BURST
    paid_rate: float = DEFAULT_PAID_RATE
    latency: tuple[float, float] = DEFAULT_LATENCY
    flood_penalty: bool = False
    faults: FaultConfig = field(default_factory=FaultConfig)
    limits: bool = True
    star_balance: float = DEFAULT_STAR_BALANCE
    webhook_retry_base: float = 0.5
    webhook_retry_max: float = 30.0
    webhook_timeout: float = 10.0

    def __post_init__(self) -> None:
        for name in ("bot_rate", "chat_rate", "group_per_minute", "paid_rate"):
            if getattr(self, name) <= 0:
                raise SandboxError(f"{name} must be > 0")
        for name in ("bot_burst", "chat_burst", "group_burst"):
            if getattr(self, name) < 1:
                raise SandboxError(f"{name} must be >= 1")
        lo, hi = self.latency
        if lo < 0 or hi < lo:
            raise SandboxError("latency must be (min, max) with 0 <= min <= max")
        if not 0 <= self.port <= 65535:
            raise SandboxError(f"port {self.port} out of range")

    def with_(self, **changes: object) -> SandboxConfig:
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise SandboxError(f"unknown sandbox option(s): {', '.join(sorted(unknown))}")
        return replace(self, **changes)  # type: ignore[arg-type]
