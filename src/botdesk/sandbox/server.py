"""The ``Sandbox``: an aiohttp server speaking the Bot API, plus its Python control surface.

Owns the request pipeline (token -> method -> parameters -> latency -> faults -> method ->
answer) and the lifecycle (start, stop, reset). Methods live in ``methods`` and
``updates``, simulated users in ``actors``, the HTTP control API in ``control``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import random
import socket
import struct
from typing import Any

from aiohttp import BodyPartReader, web

from . import faults as fk
from .actors import Actors
from .config import FaultConfig, SandboxConfig, parse_faults
from .errors import NOT_FOUND, UNAUTHORIZED, ApiError, SandboxError, bad_request, too_many_requests
from .limits import Limiter
from .methods import SEND_METHODS, BotApi
from .params import Params, Upload
from .stats import Stats
from .updates import Delivery
from .world import BotInfo, UserInfo, World, now

MAX_BODY = 64 * 1024 * 1024  # uploads up to Telegram's 50 MB document limit fit
_JSON = "application/json"


class Sandbox:
    """A local Telegram Bot API server with a simulated world.

    Use as ``async with Sandbox(cfg) as sb``. Population and inspection methods are
    synchronous; ``user_start/send/press/edit/block/unblock`` are coroutines (they may
    wake pollers and webhook senders); ``user_deactivate/delete`` are synchronous.
    """

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.world = World(self.config.seed)
        self.stats_ = Stats()
        self.limiter = Limiter(
            bot_rate=self.config.bot_rate,
            bot_burst=self.config.bot_burst,
            chat_rate=self.config.chat_rate,
            chat_burst=self.config.chat_burst,
            group_per_minute=self.config.group_per_minute,
            group_burst=self.config.group_burst,
            paid_rate=self.config.paid_rate,
            flood_penalty=self.config.flood_penalty,
            enabled=self.config.limits,
        )
        self.api = BotApi(self.world, self.limiter, self.stats_)
        self.actors = Actors(self.world)
        self.delivery = Delivery(self.world, self.config)
        self.faults = fk.FaultInjector(self.config.faults, self.config.seed)
        self._latency_rng = random.Random(self.config.seed ^ 0x1A7E)
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port = 0
        self.methods: dict[str, Any] = dict(self.api.table)
        self.methods.update(
            getupdates=self.delivery.get_updates,
            setwebhook=self.delivery.set_webhook,
            deletewebhook=self.delivery.delete_webhook,
            getwebhookinfo=self.delivery.webhook_info,
        )

    # -- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def app(self) -> web.Application:
        from .control import add_routes

        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        add_routes(app, self)
        return app

    async def start(self) -> None:
        if self._runner is not None:
            raise SandboxError("sandbox already started")
        self._stopping = asyncio.Event()
        self.faults.set(self.config.faults)  # storms count from server start
        runner = web.AppRunner(self.app(), access_log=None, handle_signals=False,
                               shutdown_timeout=2.0)  # fmt: skip
        await runner.setup()
        site = web.TCPSite(runner, self.config.host, self.config.port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise SandboxError(
                f"cannot listen on {self.config.host}:{self.config.port}: {exc.strerror}"
            ) from None
        self._runner = runner
        server = site._server
        assert server is not None
        self._port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def stop(self) -> None:
        if self._runner is None:
            return
        self._stopping.set()
        self.delivery.closing = True
        for bot in self.world.bots.values():
            bot.notify()
        await self.delivery.close()
        await self._runner.cleanup()
        self._runner = None

    @property
    def base_url(self) -> str:
        if self._runner is None:
            raise SandboxError("sandbox is not running")
        host = self.config.host
        return f"http://[{host}]:{self._port}" if ":" in host else f"http://{host}:{self._port}"

    @property
    def port(self) -> int:
        return self._port

    # -- request pipeline ---------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        bot = self.world.by_token.get(request.match_info["token"])
        if bot is None or bot.revoked:
            return self._error(UNAUTHORIZED, None)
        name = request.match_info["method"].lower()
        method = self.methods.get(name)
        if method is None:
            return self._error(NOT_FOUND, bot.info.username)
        try:
            params = await _read_params(request)
        except ApiError as exc:
            return self._error(exc, bot.info.username)
        lo, hi = self.config.latency
        if hi > 0:
            await asyncio.sleep(self._latency_rng.uniform(lo, hi))
        fault, retry_after = fk.NONE, 0
        if name in SEND_METHODS or (
            name == "getupdates" and self.faults.config.include_get_updates
        ):
            fault, retry_after = self.faults.decide()
            if fault != fk.NONE:
                self.stats_.faults[fault] += 1
        if fault == fk.RESET:
            _reset(request)
            return web.Response(status=500)  # never reaches the client
        if fault in (fk.ERROR_500, fk.ERROR_502):
            text = "Internal Server Error" if fault == fk.ERROR_500 else "Bad Gateway"
            return self._error(ApiError(int(fault), text), bot.info.username)
        if fault in (fk.STORM, fk.RANDOM_429):
            return self._error(too_many_requests(retry_after), bot.info.username)
        try:
            result = method(bot, params)
            if inspect.isawaitable(result):
                result = await result
        except ApiError as exc:
            return self._error(exc, bot.info.username)
        if fault == fk.STALL:
            # The work is done and recorded; the answer is lost. Hold it until the client
            # gives up (or the sandbox stops), then drop the connection.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.faults.config.stall_seconds)
            _reset(request)
            return web.Response(status=500)
        return web.Response(
            text=json.dumps({"ok": True, "result": result}, ensure_ascii=False),
            content_type=_JSON,
        )

    def _error(self, exc: ApiError, bot: str | None) -> web.Response:
        key = str(exc.code)
        self.stats_.errors[key] += 1
        if bot is not None:
            self.stats_.bot(bot)["errors"] += 1
        return web.Response(
            status=exc.code,
            text=json.dumps(exc.payload(), ensure_ascii=False),
            content_type=_JSON,
        )

    # -- world: population --------------------------------------------------------------

    def add_bot(self, username: str, token: str | None = None) -> BotInfo:
        info = self.world.add_bot(username, token)
        self.world.bot(username).star_tenths = round(self.config.star_balance * 10)
        return info

    def bots(self) -> list[BotInfo]:
        return [bot.info for bot in self.world.bots.values()]

    def add_users(
        self, count: int, start_bots: list[str] | None = None, payload: str | None = None
    ) -> list[UserInfo]:
        for name in start_bots or []:
            self.world.bot(name)
        users = self.world.add_users(count)
        for user in users:
            for name in start_bots or []:
                self.actors.start(user.id, name, payload)
        return users

    def users(self) -> list[dict[str, Any]]:
        out = []
        for user in self.world.users.values():
            uid = user.info.id
            out.append({
                **user.json(),
                "state": user.state,
                "started": sorted(b.info.username for b in self.world.bots.values()
                                  if uid in b.started),
                "blocked": sorted(b.info.username for b in self.world.bots.values()
                                  if uid in b.blocked),
            })  # fmt: skip
        return out

    def add_group(self, title: str, member_ids: list[int], bot: str) -> int:
        target = self.world.bot(bot)
        gid = self.world.add_group(title, list(member_ids), target)
        if member_ids:
            adder = self.world.user(member_ids[0])
            self.world.push_update(
                target,
                "my_chat_member",
                {
                    "chat": self.world.groups[gid].chat_json(),
                    "from": adder.json(),
                    "date": now(),
                    "old_chat_member": {"status": "left", "user": target.user_json()},
                    "new_chat_member": {"status": "member", "user": target.user_json()},
                },
            )
        return gid

    # -- world: what users do -----------------------------------------------------------

    async def user_start(self, user_id: int, bot: str, payload: str | None = None) -> dict:
        return self.actors.start(user_id, bot, payload)

    async def user_send(self, user_id: int, bot: str, text: str) -> dict:
        return self.actors.send(user_id, bot, text)

    async def user_press(self, user_id: int, bot: str, message_id: int, data: str) -> dict:
        return self.actors.press(user_id, bot, message_id, data)

    async def user_edit(self, user_id: int, bot: str, message_id: int, text: str) -> dict:
        return self.actors.edit(user_id, bot, message_id, text)

    async def user_block(self, user_id: int, bot: str) -> None:
        self.actors.block(user_id, bot)

    async def user_unblock(self, user_id: int, bot: str) -> None:
        self.actors.unblock(user_id, bot)

    def user_deactivate(self, user_id: int) -> None:
        self.actors.deactivate(user_id)

    def user_delete(self, user_id: int) -> None:
        self.actors.delete(user_id)

    # -- inspection and control ---------------------------------------------------------

    def messages(self, bot: str | None = None, chat_id: int | None = None) -> list[dict]:
        """Every outgoing message the server accepted, oldest first (copies)."""
        name = self.world.bot(bot).info.username if bot else None
        return [
            dict(m)
            for m in self.world.outgoing
            if (name is None or m["bot"] == name) and (chat_id is None or m["chat_id"] == chat_id)
        ]

    def uploads(self) -> list[dict[str, Any]]:
        """Every file uploaded to the sandbox (a send by file_id uploads nothing), in order."""
        return [dict(u) for u in self.world.uploads]

    def stats(self) -> dict[str, Any]:
        return self.stats_.snapshot()

    def set_faults(self, faults: FaultConfig | str) -> FaultConfig:
        config = parse_faults(faults) if isinstance(faults, str) else faults
        self.faults.set(config)
        return config

    def set_star_balance(self, bot: str, stars: float) -> None:
        if stars < 0:
            raise SandboxError("star balance must be >= 0")
        self.world.bot(bot).star_tenths = round(stars * 10)

    def set_limits(self, **rates: float | None) -> dict[str, float]:
        """Change the rates the limiter enforces from now on (``bot_rate``, ``chat_rate``,
        ``group_per_minute``, ``paid_rate``; None keeps one): a lower real limit, or a rise,
        in the middle of a run. Returns the rates in force."""
        try:
            return self.limiter.set_limits(**rates)
        except ValueError as exc:
            raise SandboxError(str(exc)) from None

    def limits(self) -> dict[str, float]:
        return self.limiter.rates()

    def star_balance(self, bot: str) -> float:
        return self.world.bot(bot).star_tenths / 10

    def advance_clock(self, seconds: float) -> float:
        """Move the Bot API's clock forward (message dates, the 48-hour deletion window);
        returns the total offset. Only the world's dates move, never the rate limiter's."""
        if seconds < 0:
            raise SandboxError("the clock only moves forward")
        self.world.clock_offset += seconds
        return self.world.clock_offset

    def revoke_token(self, bot: str) -> None:
        self.world.bot(bot).revoked = True

    def reset(self) -> None:
        """Forget users, groups, messages, updates, files and counters; keep the bots."""
        bots = [(b.info, b.revoked) for b in self.world.bots.values()]
        for bot in self.world.bots.values():
            bot.webhook.url = ""
            bot.notify()
        self.world = World(self.config.seed)
        for info, revoked in bots:
            self.add_bot(info.username, info.token)
            self.world.bot(info.username).revoked = revoked
        self.api.world = self.actors.world = self.delivery.world = self.world
        self.limiter.reset()
        c = self.config
        self.limiter.set_limits(
            bot_rate=c.bot_rate,
            chat_rate=c.chat_rate,
            group_per_minute=c.group_per_minute,
            paid_rate=c.paid_rate,
        )
        self.stats_.reset()
        self.faults.set(self.config.faults)


async def _read_params(request: web.Request) -> Params:
    values: dict[str, Any] = dict(request.query)
    files: dict[str, Upload] = {}
    if request.body_exists:
        ctype = request.content_type
        if ctype == _JSON:
            try:
                body = json.loads(await request.read() or b"{}")
            except ValueError:
                raise bad_request("can't parse JSON object") from None
            if not isinstance(body, dict):
                raise bad_request("can't parse JSON object")
            values.update(body)
        elif ctype.startswith("multipart/"):
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, BodyPartReader) or part.name is None:
                    continue
                if part.filename:
                    files[part.name] = Upload(
                        part.filename,
                        part.headers.get("Content-Type", ""),
                        bytes(await part.read()),
                    )
                else:
                    values[part.name] = await part.text()
        else:
            form = await request.post()
            values.update({k: v for k, v in form.items() if isinstance(v, str)})
    return Params(values, files)


def _reset(request: web.Request) -> None:
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            # Linger 0 makes close() send RST: the client sees "connection reset".
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
