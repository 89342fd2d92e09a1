"""`botdesk serve`: run registered bots (polling or webhook), their workers and metrics."""

from __future__ import annotations

import typer

from botdesk.cli.common import home_path, run


def serve(
    bot: list[str] = typer.Option([], "--bot", help="Serve only this bot (repeatable)."),
    webhook_base: str | None = typer.Option(
        None, "--webhook-base", help="Public base URL; each bot gets <base>/<name>."
    ),
    listen: str | None = typer.Option(
        None, "--listen", help="HOST:PORT the webhook server listens on."
    ),
    metrics: str | None = typer.Option(
        None, "--metrics", help="HOST:PORT for Prometheus metrics at /metrics."
    ),
    no_delivery: bool = typer.Option(
        False, "--no-delivery", help="Do not run campaign delivery workers in this process."
    ),
) -> None:
    """Serve all registered bots (or those named) until SIGINT/SIGTERM."""
    from botdesk.runtime.serve import serve_forever

    run(
        serve_forever(
            home_path(),
            bot_names=bot,
            webhook_base=webhook_base,
            listen=listen,
            metrics_listen=metrics,
            delivery=not no_delivery,
        )
    )
