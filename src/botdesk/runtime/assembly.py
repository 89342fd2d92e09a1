"""Builds a ``Runtime`` with the pieces configured for this home: assistant and workers.

Kept apart from ``service.py`` so the runtime itself does not depend on which assistant or
delivery engine is plugged in; `serve`, `demo` and tests assemble the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

from botdesk.app import App
from botdesk.runtime.ports import AssistantPort
from botdesk.runtime.service import BotWorker, Runtime, worker_id


async def build_port(app: App) -> AssistantPort | None:
    """The assistant configured for this home (the offline answerer by default)."""
    from botdesk.runtime.assistant_port import build_assistant_port

    return await build_assistant_port(app)


def build_workers(app: App, *, owner: str, delivery: bool = True) -> list[BotWorker]:
    """Jobs run per bot by the process that owns it: operator replies, and campaigns."""
    from botdesk.delivery.worker import make_bot_worker
    from botdesk.runtime.outbox import outbox_worker
    from botdesk.runtime.rules import commands_worker

    workers: list[BotWorker] = [outbox_worker, commands_worker]
    if delivery:
        workers.append(make_bot_worker(db=app.db, settings=app.settings.delivery, owner=owner))
    return workers


async def build_runtime(
    app: App,
    *,
    bot_names: Sequence[str] = (),
    webhook_base: str | None = None,
    listen: str | None = None,
    metrics_listen: str | None = None,
    delivery: bool = True,
    poll_timeout: int = 20,
    owner: str | None = None,
) -> Runtime:
    owner = owner or worker_id()
    return Runtime(
        app,
        bot_names=bot_names,
        webhook_base=webhook_base,
        listen=listen,
        metrics_listen=metrics_listen,
        port=await build_port(app),
        bot_workers=build_workers(app, owner=owner, delivery=delivery),
        poll_timeout=poll_timeout,
        owner=owner,
    )
