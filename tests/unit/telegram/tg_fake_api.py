"""A scripted Bot API server on loopback: each chat_id selects one answer the gateway must map."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import BodyPartReader, web

TOKEN = "123456:AAbbCCddEEffGGhhIIjjKKllMMnnOOppQQr"

Handler = Callable[[web.Request, dict[str, Any]], Awaitable[web.StreamResponse]]


def _err(status: int, description: str, **parameters: Any) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=status)


def _message(chat_id: int, message_id: int, extra: dict[str, Any]) -> web.Response:
    result = {
        "message_id": message_id,
        "date": 1_700_000_000,
        "chat": {"id": chat_id, "type": "private"},
        **extra,
    }
    return web.json_response({"ok": True, "result": result})


@dataclass
class FakeBotApi:
    base: str = ""
    requests: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    next_id: int = 100


# chat ids with a scripted answer
OK, RETRY, BLOCKED, DEACT, NOT_STARTED, NOT_FOUND, BAD, UNAUTH = 1, 2, 3, 4, 5, 6, 7, 8
E500, E502_HTML, HANG, RESET, KICKED, MIGRATED = 9, 10, 11, 12, 13, 14
# success answers in shapes Telegram does not send
NO_ID, STR_ID, NOT_JSON, ODD_PHOTO, NO_RESULT = 15, 16, 17, 18, 19


async def _start(api: FakeBotApi) -> tuple[web.AppRunner, int]:
    async def handle(request: web.Request) -> web.StreamResponse:
        token_part, _, method = request.path.removeprefix("/").partition("/")
        form: dict[str, Any] = {}
        if request.content_type == "multipart/form-data":
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                assert isinstance(part, BodyPartReader)
                data = await part.read()
                form[part.name or ""] = (
                    data.decode() if part.filename is None else (part.filename, data)
                )
        else:
            form = dict(await request.post())
        api.requests.append((token_part, method, form))
        if token_part != f"bot{TOKEN}":
            return _err(401, "Unauthorized")
        if method == "getMe":
            return web.json_response(
                {
                    "ok": True,
                    "result": {
                        "id": 123456,
                        "is_bot": True,
                        "first_name": "Desk",
                        "username": "desk_bot",
                    },
                }
            )
        chat = int(form.get("chat_id", 0))
        if chat == OK:
            api.next_id += 1
            extra: dict[str, Any] = {}
            if method == "sendPhoto":
                extra["photo"] = [
                    {"file_id": "small", "file_unique_id": "s", "width": 90, "height": 90},
                    {"file_id": "big", "file_unique_id": "b", "width": 800, "height": 800},
                ]
            elif method == "sendDocument":
                extra["document"] = {"file_id": "doc-id", "file_unique_id": "d"}
            else:
                extra["text"] = form.get("text", "")
            return _message(chat, api.next_id, extra)
        if chat == NO_ID:
            return web.json_response({"ok": True, "result": {"date": 1, "chat": {"id": chat}}})
        if chat == STR_ID:  # aiogram's model reads a numeric string as the integer
            result = {"message_id": "777", "date": 1, "chat": {"id": chat, "type": "private"}}
            return web.json_response({"ok": True, "result": result})
        if chat == NO_RESULT:
            return web.json_response({"ok": True})
        if chat == NOT_JSON:
            return web.Response(status=200, text="<html>ok</html>", content_type="text/html")
        if chat == ODD_PHOTO:
            return _message(chat, 55, {"photo": "not a list of sizes"})
        if chat == RETRY:
            return _err(429, "Too Many Requests: retry after 3", retry_after=3)
        if chat == BLOCKED:
            return _err(403, "Forbidden: bot was blocked by the user")
        if chat == DEACT:
            return _err(403, "Forbidden: user is deactivated")
        if chat == NOT_STARTED:
            return _err(403, "Forbidden: bot can't initiate conversation with a user")
        if chat == KICKED:
            return _err(403, "Forbidden: bot was kicked from the group chat")
        if chat == NOT_FOUND:
            return _err(400, "Bad Request: chat not found")
        if chat == BAD:
            return _err(400, "Bad Request: can't parse entities: unexpected end tag")
        if chat == MIGRATED:
            return _err(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                migrate_to_chat_id=-100777,
            )
        if chat == UNAUTH:
            return _err(401, "Unauthorized")
        if chat == E500:
            return _err(500, "Internal Server Error")
        if chat == E502_HTML:
            return web.Response(
                status=502, text="<html>502 Bad Gateway</html>", content_type="text/html"
            )
        if chat == HANG:
            await api.release.wait()
            return _err(500, "released")
        if chat == RESET:
            # The request was fully read: Telegram may have acted on it; then the line dies.
            assert request.transport is not None
            request.transport.abort()
            await api.release.wait()
            return _err(500, "unreachable")
        return _err(400, "Bad Request: unexpected chat")

    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", handle)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, port


@pytest.fixture
async def fake_api() -> AsyncIterator[FakeBotApi]:
    api = FakeBotApi()
    runner, port = await _start(api)
    api.base = f"http://127.0.0.1:{port}"
    try:
        yield api
    finally:
        api.release.set()
        await runner.cleanup()


@pytest.fixture
def closed_port() -> int:
    """A loopback port nobody listens on (bound then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port
