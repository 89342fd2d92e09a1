"""Builds a ``Runtime`` with the pieces configured for this home: assistant and workers.

Kept apart from ``service.py`` so the runtime itself does not depend on which assistant or
delivery engine is plugged in; `serve`, `demo` and tests assemble the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

from botdesk.app import App
from botdesk.clock import Clock
from botdesk.links import LinkSigner
from botdesk.runtime.foreground import worker_id
from botdesk.runtime.ports import AssistantPort
from botdesk.runtime.service import BotWorker, Runtime


async def build_port(app: App) -> AssistantPort | None:
    """The assistant configured for this home (the offline answerer by default)."""
    from botdesk.runtime.assistant_port import build_assistant_port

    return await build_assistant_port(app, warm_up=True)  # serve: load the model at start


def build_links(app: App, webhook_base: str | None) -> LinkSigner | None:
    """Tracked links need a public base URL (the webhook's); without one URLs go out plain."""
    if not webhook_base:
        return None
    from botdesk.links import load_key
    from botdesk.runtime.redirect import ROUTE_PREFIX

    return LinkSigner(key=load_key(app.secrets), base_url=webhook_base.rstrip("/") + ROUTE_PREFIX)


def build_workers(
    app: App, *, owner: str, delivery: bool = True, links: LinkSigner | None = None
) -> list[BotWorker]:
    """Jobs run per bot by the process that owns it: operator replies, campaigns, and their
    edits and recalls."""
    from botdesk.delivery.action_worker import make_action_worker
    from botdesk.delivery.worker import make_bot_worker
    from botdesk.runtime.outbox import outbox_worker
    from botdesk.runtime.rules import commands_worker

    workers: list[BotWorker] = [outbox_worker, commands_worker]
    if delivery:
        workers.append(
            make_bot_worker(db=app.db, settings=app.settings.delivery, owner=owner, links=links)
        )
        workers.append(make_action_worker(db=app.db, settings=app.settings.delivery))
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
    clock: Clock | None = None,
) -> Runtime:
    owner = owner or worker_id()
    links = build_links(app, webhook_base)
    return Runtime(
        app,
        bot_names=bot_names,
        webhook_base=webhook_base,
        listen=listen,
        metrics_listen=metrics_listen,
        port=await build_port(app),
        bot_workers=build_workers(app, owner=owner, delivery=delivery, links=links),
        poll_timeout=poll_timeout,
        owner=owner,
        clock=clock,
        links=links,
    )
