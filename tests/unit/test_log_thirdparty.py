"""Third-party loggers (aiohttp, aiogram, httpx, asyncio) on real loopback traffic leak nothing.

A fake Bot API server on 127.0.0.1 echoes the request path (token included) in its
error descriptions, as some reverse proxies do; aiohttp's access log, aiogram's
dispatcher and event loggers, httpx and asyncio then log it the way they do in
production. The captured output is grepped for the raw token.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import aiohttp
import httpx
import pytest
import structlog
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import Message
from aiohttp import web

from botdesk.log import configure_logging, get_logger

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1"
SECRET_PART = TOKEN.split(":")[1]

Capture = Callable[[str], io.StringIO]


@pytest.fixture
def capture() -> Iterator[Capture]:
    def make(fmt: str) -> io.StringIO:
        stream = io.StringIO()
        configure_logging(level="INFO", fmt=fmt, stream=stream)  # type: ignore[arg-type]
        return stream

    yield make
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_botdesk_handler", False)]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(logging.WARNING)
    structlog.reset_defaults()


class FakeBotAPI:
    """Just enough of the Bot API for aiogram's polling: getMe, then one update, then 500s."""

    def __init__(self) -> None:
        self.update_calls = 0

    async def handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if method == "getMe":
            user = {"id": 123456789, "is_bot": True, "first_name": "Shop", "username": "shop_bot"}
            return web.json_response({"ok": True, "result": user})
        if method == "getUpdates":
            self.update_calls += 1
            if self.update_calls == 1:
                chat = {"id": 42, "type": "private"}
                sender = {"id": 42, "is_bot": False, "first_name": "Ann"}
                message = {"message_id": 1, "date": 0, "chat": chat, "from": sender, "text": "hi"}
                return web.json_response(
                    {"ok": True, "result": [{"update_id": 1, "message": message}]}
                )
        body = {"ok": False, "error_code": 500, "description": f"upstream failed at {request.path}"}
        return web.json_response(body, status=500)


@pytest.fixture
async def fake_api() -> AsyncIterator[tuple[str, FakeBotAPI]]:
    api = FakeBotAPI()
    app = web.Application()
    app.router.add_route("*", "/bot{token}/{method}", api.handle)
    runner = web.AppRunner(app)  # default access log: the "aiohttp.access" logger
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", api
    finally:
        await runner.cleanup()


def assert_clean(output: str, *, masks: int) -> None:
    assert TOKEN not in output, output
    assert SECRET_PART not in output, output
    assert output.count("***") >= masks, output


async def wait_for(stream: io.StringIO, *needles: str) -> None:
    """Poll the captured text (logging has no event to await), for at most 15 s."""
    for _ in range(750):
        if all(n in stream.getvalue() for n in needles):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never logged {needles}:\n{stream.getvalue()}")


@pytest.mark.parametrize("fmt", ["console", "json"])
async def test_aiogram_polling_errors_and_handler_crash(
    capture: Capture, fake_api: tuple[str, FakeBotAPI], fmt: str
) -> None:
    stream = capture(fmt)
    base, _api = fake_api
    session = AiohttpSession(api=TelegramAPIServer.from_base(base))
    bot = Bot(TOKEN, session=session)
    dp = Dispatcher()

    @dp.message()
    async def crash(message: Message) -> None:
        raise RuntimeError(f"handler could not call https://api.telegram.org/bot{TOKEN}/getMe")

    polling = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=0))
    try:
        await wait_for(stream, "Cause exception while process update", "Failed to fetch updates")
    finally:
        await dp.stop_polling()
        await polling

    out = stream.getvalue()
    assert "aiohttp.access" in out and "aiogram.event" in out and "aiogram.dispatcher" in out
    assert "/bot***/getUpdates" in out  # access log line and the echoed description
    assert "Traceback" in out and "handler could not call" in out
    assert_clean(out, masks=4)
    if fmt == "json":
        events = [json.loads(line) for line in out.splitlines()]
        crashed = [e for e in events if "Cause exception" in e["event"]]
        assert crashed and "exception" in crashed[0]


@pytest.mark.parametrize("fmt", ["console", "json"])
async def test_aiohttp_client_error_with_token_url(
    capture: Capture, fake_api: tuple[str, FakeBotAPI], fmt: str
) -> None:
    stream = capture(fmt)
    base, _api = fake_api
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/bot{TOKEN}/sendMessage") as resp:
            with pytest.raises(aiohttp.ClientResponseError) as info:
                resp.raise_for_status()
    assert TOKEN in str(info.value)  # the library really does put the URL in the message
    try:
        raise info.value
    except aiohttp.ClientResponseError as exc:
        logging.getLogger("aiohttp.client").exception("request failed: %s", exc)
        get_logger("botdesk.telegram").error("send failed", error=exc, exc_info=True)
    out = stream.getvalue()
    assert "500" in out
    assert_clean(out, masks=4)


async def test_httpx_request_log_and_asyncio_handler(
    capture: Capture, fake_api: tuple[str, FakeBotAPI]
) -> None:
    stream = capture("console")
    base, _api = fake_api
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{base}/bot{TOKEN}/getMe")
    assert response.status_code == 200
    loop = asyncio.get_running_loop()
    try:
        raise ConnectionResetError(f"peer reset on {base}/bot{TOKEN}/getUpdates")
    except ConnectionResetError as exc:
        context: dict[str, Any] = {"message": "Unhandled error in transport", "exception": exc}
        loop.default_exception_handler(context)
    await wait_for(stream, "HTTP Request", "Unhandled error in transport")
    out = stream.getvalue()
    assert "[httpx]" in out and "[asyncio]" in out
    assert_clean(out, masks=3)
