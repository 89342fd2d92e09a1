"""``botdesk sandbox``: run the local Bot API sandbox in the foreground.

The sandbox is imported inside the command so ``botdesk --help`` stays fast.
"""

from __future__ import annotations

import typer

from botdesk.errors import ValidationError


def command(
    host: str = typer.Option("127.0.0.1", help="Address to bind (loopback by default)."),
    port: int = typer.Option(8081, help="Port to listen on (0 = any free port)."),
    bot: list[str] = typer.Option([], "--bot", help="USERNAME[:TOKEN]; repeatable."),
    users: int = typer.Option(0, help="Simulated users to create."),
    auto_start: bool = typer.Option(False, "--auto-start", help="Users send /start to every bot."),
    rate: float = typer.Option(30.0, help="Per-bot messages per second."),
    chat_rate: float = typer.Option(1.0, help="Per-chat messages per second."),
    group_per_minute: float = typer.Option(20.0, help="Per-group messages per minute."),
    paid_rate: float = typer.Option(1000.0, help="Paid broadcast messages per second."),
    latency: str = typer.Option("30-120", help="Per-request latency MIN-MAX in ms."),
    faults: str = typer.Option("", help="Fault spec, e.g. 5xx=0.02,reset=0.05,storm=5@20."),
    seed: int = typer.Option(1, help="Seed for tokens, users and faults."),
    no_limits: bool = typer.Option(False, "--no-limits", help="Lift every rate limit."),
) -> None:
    """Run a local Telegram Bot API sandbox until SIGINT/SIGTERM."""
    from botdesk.sandbox import SandboxError
    from botdesk.sandbox.runner import run

    try:
        run(host=host, port=port, bots=bot, users=users, auto_start=auto_start, rate=rate,
            latency=latency, faults=faults, seed=seed, no_limits=no_limits, chat_rate=chat_rate,
            group_per_minute=group_per_minute, paid_rate=paid_rate)  # fmt: skip
    except SandboxError as exc:
        raise ValidationError(str(exc)) from exc
