"""`botdesk serve` as a coroutine: open the app, start the runtime, stop on a signal."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Sequence
from pathlib import Path

from botdesk.app import open_app
from botdesk.log import get_logger

log = get_logger(__name__)


async def serve_forever(
    home: Path,
    *,
    bot_names: Sequence[str] = (),
    webhook_base: str | None = None,
    listen: str | None = None,
    metrics_listen: str | None = None,
    delivery: bool = True,
) -> None:
    from botdesk.runtime.assembly import build_runtime

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with open_app(home) as app:
            runtime = await build_runtime(
                app,
                bot_names=bot_names,
                webhook_base=webhook_base,
                listen=listen,
                metrics_listen=metrics_listen,
                delivery=delivery,
            )
            await runtime.start()
            try:
                await stop.wait()
                log.info("shutting down")
            finally:
                await runtime.stop()
            log.info("stopped cleanly")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
