"""Running the sandbox as a process: option parsing shared by ``botdesk sandbox`` and
``python -m botdesk.sandbox``, and the serve loop that stops cleanly on SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable

from .config import (
    DEFAULT_CHAT_RATE,
    DEFAULT_GROUP_PER_MINUTE,
    DEFAULT_PAID_RATE,
    SandboxConfig,
    parse_faults,
    parse_latency,
)
from .errors import SandboxError
from .server import Sandbox

DEFAULT_BOT = "sandbox_bot"
PAYLOAD_SHARE = 0.3  # share of auto-started users who arrive through a deep link


def parse_bot(spec: str) -> tuple[str, str | None]:
    """``USERNAME[:TOKEN]`` (the token itself contains a colon)."""
    name, sep, token = spec.lstrip("@").partition(":")
    if not name:
        raise SandboxError(f"bad --bot '{spec}': expected USERNAME[:TOKEN]")
    return name, (token if sep else None)


def build_config(
    *,
    host: str,
    port: int,
    rate: float,
    latency: str,
    faults: str,
    seed: int,
    no_limits: bool = False,
    chat_rate: float = DEFAULT_CHAT_RATE,
    group_per_minute: float = DEFAULT_GROUP_PER_MINUTE,
    paid_rate: float = DEFAULT_PAID_RATE,
) -> SandboxConfig:
    return SandboxConfig(
        host=host,
        port=port,
        seed=seed,
        bot_rate=rate,
        chat_rate=chat_rate,
        group_per_minute=group_per_minute,
        paid_rate=paid_rate,
        latency=parse_latency(latency),
        faults=parse_faults(faults),
        limits=not no_limits,
    )


def populate(sb: Sandbox, bots: list[str], users: int, auto_start: bool) -> None:
    for spec in bots or [DEFAULT_BOT]:
        sb.add_bot(*parse_bot(spec))
    made = sb.add_users(users)
    if auto_start:
        rng = sb.world.rng
        for user in made:
            for bot in sb.bots():
                payload = "sandbox" if rng.random() < PAYLOAD_SHARE else None
                sb.actors.start(user.id, bot.username, payload)


async def serve(
    config: SandboxConfig,
    bots: list[str],
    users: int,
    auto_start: bool,
    out: Callable[[str], None] = print,
) -> None:
    sb = Sandbox(config)
    populate(sb, bots, users, auto_start)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with sb:
        out(f"sandbox listening on {sb.base_url}")
        for bot in sb.bots():
            out(f"bot @{bot.username} token={bot.token}")
        sys.stdout.flush()
        await stop.wait()


def run(
    *,
    host: str,
    port: int,
    bots: list[str],
    users: int,
    auto_start: bool,
    rate: float,
    latency: str,
    faults: str,
    seed: int,
    no_limits: bool = False,
    chat_rate: float = DEFAULT_CHAT_RATE,
    group_per_minute: float = DEFAULT_GROUP_PER_MINUTE,
    paid_rate: float = DEFAULT_PAID_RATE,
) -> None:
    """Build the config and serve until a signal. Raises SandboxError on bad options."""
    config = build_config(host=host, port=port, rate=rate, latency=latency, faults=faults,
                          seed=seed, no_limits=no_limits, chat_rate=chat_rate,
                          group_per_minute=group_per_minute, paid_rate=paid_rate)  # fmt: skip
    asyncio.run(serve(config, bots, users, auto_start, lambda line: print(line, flush=True)))
