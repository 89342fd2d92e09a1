"""Prometheus metrics of a running service, and the optional /metrics HTTP endpoint."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

if TYPE_CHECKING:  # aiohttp's server side is imported by `serve` only, not by `campaign run`
    from aiohttp import web


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.updates = Counter(
            "botdesk_updates_total", "Updates handled", ["bot", "type"], registry=r
        )
        self.duplicates = Counter(
            "botdesk_updates_duplicate_total", "Updates seen again and skipped", ["bot"], registry=r
        )
        self.handler_seconds = Histogram(
            "botdesk_handler_seconds",
            "Time to handle a batch of updates, per update",
            ["bot"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=r,
        )
        self.errors = Counter("botdesk_errors_total", "Errors", ["bot", "kind"], registry=r)
        self.replies = Counter(
            "botdesk_replies_total", "Replies sent to subscribers", ["bot", "outcome"], registry=r
        )
        self.deliveries = Counter(
            "botdesk_deliveries_total",
            "Campaign sends by final state",
            ["bot", "state"],
            registry=r,
        )
        self.bot_up = Gauge("botdesk_bot_up", "1 while the bot is served", ["bot"], registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)


async def serve_metrics(metrics: Metrics, host: str, port: int) -> web.AppRunner:
    from aiohttp import web
    from prometheus_client.exposition import CONTENT_TYPE_LATEST

    async def handle(_request: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
