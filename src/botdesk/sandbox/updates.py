"""How updates leave the sandbox: getUpdates long polling and webhook delivery.

Long polling holds the request until an update arrives or ``timeout`` passes; a newer
getUpdates for the same bot ends the older one with 409, as Telegram does. A webhook is
delivered one update at a time, in order, to loopback URLs only, with the secret header,
retrying with exponential backoff and recording the last error for getWebhookInfo.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from .config import SandboxConfig
from .errors import ApiError, bad_request
from .params import Params
from .world import DEFAULT_ALLOWED, Bot, World, now

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
WEBHOOK_CONFLICT = ApiError(
    409,
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first",
)
POLL_CONFLICT = ApiError(
    409,
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running",
)
MAX_POLL_TIMEOUT = 50  # Telegram caps the long-poll timeout at 50 s
_SECRET_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def _allowed(p: Params) -> list[str] | None:
    value = p.json("allowed_updates", "allowed updates")
    if value is None:
        return None
    if not isinstance(value, list):
        raise bad_request("can't parse allowed updates JSON object")
    return [v for v in value if isinstance(v, str)]


class Delivery:
    def __init__(self, world: World, config: SandboxConfig) -> None:
        self.world = world
        self.config = config
        self.session: aiohttp.ClientSession | None = None
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.closing = False

    async def close(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        for task in list(self.tasks.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tasks.clear()
        if self.session is not None:
            await self.session.close()
            self.session = None

    # -- long polling -------------------------------------------------------------------

    async def get_updates(self, bot: Bot, p: Params) -> Any:
        if bot.webhook.url:
            raise WEBHOOK_CONFLICT
        offset = p.integer("offset") or 0
        limit = min(100, max(1, p.integer("limit") or 100))
        timeout = min(MAX_POLL_TIMEOUT, max(0, p.integer("timeout") or 0))
        allowed = _allowed(p)
        if allowed is not None:
            # Telegram remembers the list; an empty list means "the default set".
            bot.allowed_updates = frozenset(allowed) or DEFAULT_ALLOWED
            bot.pending = [u for u in bot.pending if _kind(u) in bot.allowed_updates]
        self._confirm(bot, offset)
        me = object()
        bot.poll_owner = me
        bot.notify()  # wakes an older poll, which then sees it lost ownership
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not bot.pending and not self.closing:
            left = deadline - loop.time()
            if left <= 0:
                break
            changed = bot.changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), left)
            if bot.poll_owner is not me:
                raise POLL_CONFLICT
            if bot.webhook.url:
                raise WEBHOOK_CONFLICT
        if bot.poll_owner is me:
            bot.poll_owner = None
        return bot.pending[:limit]

    @staticmethod
    def _confirm(bot: Bot, offset: int) -> None:
        if offset > 0:
            bot.pending = [u for u in bot.pending if u["update_id"] >= offset]
        elif offset < 0:
            bot.pending = bot.pending[offset:]

    # -- webhooks -----------------------------------------------------------------------

    def set_webhook(self, bot: Bot, p: Params) -> Any:
        url = p.text("url") or ""
        if not url:
            return self.delete_webhook(bot, p, set_call=True)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise bad_request("bad webhook: Failed to resolve host: Name or service not known")
        if parts.hostname not in LOOPBACK_HOSTS:
            raise bad_request(
                "bad webhook: the sandbox delivers webhooks to loopback addresses only"
            )
        secret = p.text("secret_token") or ""
        if len(secret) > 256 or not set(secret) <= _SECRET_CHARS:
            raise bad_request("secret token contains unallowed characters")
        max_connections = p.integer("max_connections") or 40
        if not 1 <= max_connections <= 100:
            raise bad_request("bad webhook: max_connections must be between 1 and 100")
        allowed = _allowed(p)
        if p.flag("drop_pending_updates"):
            bot.pending.clear()
        bot.webhook.url = url
        bot.webhook.secret_token = secret
        bot.webhook.max_connections = max_connections
        if allowed is not None:
            bot.webhook.allowed_updates = allowed
            bot.allowed_updates = frozenset(allowed) or DEFAULT_ALLOWED
        bot.notify()
        self._ensure_sender(bot)
        return True

    def delete_webhook(self, bot: Bot, p: Params, *, set_call: bool = False) -> Any:
        if p.flag("drop_pending_updates"):
            bot.pending.clear()
        bot.webhook.url = ""
        bot.webhook.secret_token = ""
        bot.webhook.last_error_date = 0
        bot.webhook.last_error_message = ""
        bot.notify()
        return True

    def webhook_info(self, bot: Bot, p: Params) -> Any:
        hook = bot.webhook
        info: dict[str, Any] = {
            "url": hook.url,
            "has_custom_certificate": False,
            "pending_update_count": len(bot.pending),
        }
        if hook.url:
            info["ip_address"] = "127.0.0.1"
            info["max_connections"] = hook.max_connections
            if hook.allowed_updates is not None:
                info["allowed_updates"] = hook.allowed_updates
        if hook.last_error_date:
            info["last_error_date"] = hook.last_error_date
            info["last_error_message"] = hook.last_error_message
        return info

    def _ensure_sender(self, bot: Bot) -> None:
        task = self.tasks.get(bot.info.id)
        if task is None or task.done():
            self.tasks[bot.info.id] = asyncio.get_running_loop().create_task(self._send_loop(bot))

    async def _send_loop(self, bot: Bot) -> None:
        if self.session is None:
            self.session = aiohttp.ClientSession()
        delay = self.config.webhook_retry_base
        while bot.webhook.url:
            if not bot.pending:
                await bot.changed.wait()
                continue
            update = bot.pending[0]
            error = await self._post(bot, update)
            if error is None:
                if bot.pending and bot.pending[0] is update:
                    bot.pending.pop(0)
                delay = self.config.webhook_retry_base
                continue
            bot.webhook.last_error_date = now()
            bot.webhook.last_error_message = error
            changed = bot.changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), delay)  # a new setWebhook retries now
            delay = min(self.config.webhook_retry_max, delay * 2)

    async def _post(self, bot: Bot, update: dict[str, Any]) -> str | None:
        assert self.session is not None
        headers = {"Content-Type": "application/json"}
        if bot.webhook.secret_token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = bot.webhook.secret_token
        try:
            async with self.session.post(
                bot.webhook.url,
                data=json.dumps(update),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.config.webhook_timeout),
            ) as resp:
                await resp.read()
                if 200 <= resp.status < 300:
                    return None
                return f"Wrong response from the webhook: {resp.status} {resp.reason}"
        except TimeoutError:
            return "Read timeout expired"
        except aiohttp.ClientConnectorError:
            return "Connection refused"
        except aiohttp.ClientError as exc:
            return f"Connection error: {type(exc).__name__}"


def _kind(update: dict[str, Any]) -> str:
    return next(k for k in update if k != "update_id")
