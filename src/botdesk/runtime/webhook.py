"""Webhook mode: one URL per bot under a base URL, each with its own random secret token.

Telegram (or the sandbox) posts each update to ``<base>/<bot name>`` with the header
``X-Telegram-Bot-Api-Secret-Token``; it is compared in constant time, and a request with a
missing or wrong secret gets 401 and is not processed. Unknown bot paths get 404. An update
is acknowledged (200) only after its transaction committed; a 500 makes Telegram retry,
which the processed-update ledger turns into a no-op if the first attempt did commit.
"""

from __future__ import annotations

import hmac
import json
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiogram.types import Update
from aiohttp import web

from botdesk.errors import ValidationError
from botdesk.log import get_logger
from botdesk.runtime.redirect import ROUTE_PREFIX, LinkRedirect
from botdesk.runtime.updates import ALLOWED_UPDATES, UpdateProcessor

log = get_logger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


@dataclass
class WebhookBot:
    processor: UpdateProcessor
    secret: str


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValidationError(f"--listen must be HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def base_path(webhook_base: str) -> str:
    parts = urlsplit(webhook_base)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationError(f"--webhook-base must be an http(s) URL, got {webhook_base!r}")
    return parts.path.rstrip("/")


class WebhookServer:
    def __init__(
        self, *, webhook_base: str, listen: str, redirect: LinkRedirect | None = None
    ) -> None:
        self.redirect = redirect
        self.base = webhook_base.rstrip("/")
        self.path = base_path(webhook_base)
        self.host, self.port = parse_listen(listen)
        self.bots: dict[str, WebhookBot] = {}
        self._runner: web.AppRunner | None = None

    def url_for(self, name: str) -> str:
        return f"{self.base}/{name}"

    async def register(self, processor: UpdateProcessor) -> None:
        """Give the bot a fresh secret and point its webhook here."""
        secret = secrets.token_urlsafe(32)
        ch = processor.channel
        await ch.bot.set_webhook(
            url=self.url_for(ch.name),
            secret_token=secret,
            allowed_updates=ALLOWED_UPDATES,
            drop_pending_updates=False,
        )
        self.bots[ch.name] = WebhookBot(processor=processor, secret=secret)

    async def unregister(self, name: str) -> None:
        wb = self.bots.pop(name, None)
        if wb is not None:
            try:
                await wb.processor.channel.bot.delete_webhook(drop_pending_updates=False)
            except Exception as exc:  # shutting down: the next start sets it again
                log.warning("deleteWebhook failed", bot=name, error=str(exc))

    async def _handle(self, request: web.Request) -> web.Response:
        name = request.match_info["bot"]
        wb = self.bots.get(name)
        if wb is None:
            return web.Response(status=404, text="not found")
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), wb.secret.encode()):
            wb.processor.channel.metrics.errors.labels(name, "webhook_auth").inc()
            return web.Response(status=401, text="unauthorized")
        try:
            data = json.loads(await request.read())
            upd = Update.model_validate(data, context={"bot": wb.processor.channel.bot})
        except (ValueError, TypeError) as exc:
            log.warning("malformed webhook body", bot=name, error=str(exc)[:200])
            return web.Response(status=400, text="bad update")
        try:
            await wb.processor.process([upd], advance_offset=False)
        except Exception as exc:
            log.error("webhook update failed; Telegram will retry", bot=name, error=str(exc))
            return web.Response(status=500, text="retry later")
        return web.Response(status=200, text="")

    async def start(self) -> None:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_post(f"{self.path}/{{bot}}", self._handle)
        if self.redirect is not None:  # tracked links (clicks), see runtime/redirect.py
            app.router.add_get(f"{self.path}{ROUTE_PREFIX}{{token}}", self.redirect.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()

    async def stop(self) -> None:
        for name in list(self.bots):
            await self.unregister(name)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
