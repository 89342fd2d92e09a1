"""``python -m botdesk.sandbox``: the same options as ``botdesk sandbox``."""

from __future__ import annotations

import argparse
import sys

from .config import (
    DEFAULT_BOT_RATE,
    DEFAULT_CHAT_RATE,
    DEFAULT_GROUP_PER_MINUTE,
    DEFAULT_HOST,
    DEFAULT_PAID_RATE,
    DEFAULT_PORT,
)
from .errors import SandboxError
from .runner import run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m botdesk.sandbox",
                                 description="Local Telegram Bot API sandbox")  # fmt: skip
    ap.add_argument("--host", default=DEFAULT_HOST)
    ap.add_argument("--port", type=int, default=DEFAULT_PORT)
    ap.add_argument("--bot", action="append", default=[], metavar="USERNAME[:TOKEN]")
    ap.add_argument("--users", type=int, default=0)
    ap.add_argument("--auto-start", action="store_true")
    ap.add_argument("--rate", type=float, default=DEFAULT_BOT_RATE)
    ap.add_argument("--chat-rate", type=float, default=DEFAULT_CHAT_RATE)
    ap.add_argument("--group-per-minute", type=float, default=DEFAULT_GROUP_PER_MINUTE)
    ap.add_argument("--paid-rate", type=float, default=DEFAULT_PAID_RATE)
    ap.add_argument("--latency", default="30-120", metavar="MIN-MAX (ms)")
    ap.add_argument("--faults", default="", metavar="SPEC")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-limits", action="store_true", help="lift every rate limit")
    args = ap.parse_args(argv)
    try:
        run(host=args.host, port=args.port, bots=args.bot, users=args.users,
            auto_start=args.auto_start, rate=args.rate, latency=args.latency,
            faults=args.faults, seed=args.seed, no_limits=args.no_limits,
            chat_rate=args.chat_rate, group_per_minute=args.group_per_minute,
            paid_rate=args.paid_rate)  # fmt: skip
    except SandboxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
