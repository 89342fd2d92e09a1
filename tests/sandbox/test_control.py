"""The control API over HTTP, and the sandbox as a process (CLI and python -m)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

import aiohttp
import pytest

from botdesk.sandbox import Sandbox

PY = sys.executable


async def call(http: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> tuple[int, Any]:
    async with http.request(method, url, **kw) as resp:
        return resp.status, await resp.json()


async def test_control_api_scripts_the_world(sandbox: Sandbox, shop: Any) -> None:
    base = sandbox.base_url
    api = f"{base}/bot{shop.token}"
    async with aiohttp.ClientSession() as http:
        status, bots = await call(http, "GET", f"{base}/sandbox/bots")
        assert status == 200 and bots == [
            {"id": shop.id, "username": "shop_bot", "token": shop.token}
        ]
        _, users = await call(
            http,
            "POST",
            f"{base}/sandbox/users",
            json={"count": 2, "start": True, "payload": "promo"},
        )
        a, b = users[0]["id"], users[1]["id"]
        _, updates = await call(http, "POST", f"{api}/getUpdates", json={})
        assert [u["message"]["text"] for u in updates["result"]] == ["/start promo"] * 2
        _, sent = await call(
            http, "POST", f"{base}/sandbox/users/{a}/send", json={"bot": "shop_bot", "text": "hi"}
        )
        assert sent["text"] == "hi"
        await call(http, "POST", f"{base}/sandbox/users/{a}/block", json={"bot": "shop_bot"})
        status, body = await call(
            http, "POST", f"{api}/sendMessage", json={"chat_id": a, "text": "x"}
        )
        assert (status, body["description"]) == (403, "Forbidden: bot was blocked by the user")
        await call(http, "POST", f"{base}/sandbox/users/{a}/unblock", json={"bot": "shop_bot"})
        status, body = await call(
            http, "POST", f"{api}/sendMessage", json={"chat_id": a, "text": "x"}
        )
        assert status == 200
        await call(http, "POST", f"{base}/sandbox/users/{b}/deactivate", json={})
        status, body = await call(
            http, "POST", f"{api}/sendMessage", json={"chat_id": b, "text": "x"}
        )
        assert body["description"] == "Forbidden: user is deactivated"
        await call(http, "POST", f"{base}/sandbox/users/{b}/delete", json={})
        status, body = await call(
            http, "POST", f"{api}/sendMessage", json={"chat_id": b, "text": "x"}
        )
        assert body["description"] == "Bad Request: chat not found"
        _, msgs = await call(
            http, "GET", f"{base}/sandbox/messages", params={"bot": "shop_bot", "chat_id": str(a)}
        )
        assert [(m["chat_id"], m["text"], m["method"]) for m in msgs] == [(a, "x", "sendMessage")]
        assert set(msgs[0]) >= {"bot", "chat_id", "message_id", "date", "method", "text", "caption"}
        _, stats = await call(http, "GET", f"{base}/sandbox/stats")
        assert stats["accepted"] == 1 and stats["errors"] == {"403": 2, "400": 1}
        _, faults = await call(http, "POST", f"{base}/sandbox/faults", json={"spec": "5xx=1"})
        assert faults["error_5xx"] == 1.0
        status, body = await call(
            http, "POST", f"{api}/sendMessage", json={"chat_id": a, "text": "y"}
        )
        assert status in (500, 502)
        _, faults = await call(http, "POST", f"{base}/sandbox/faults", json={"storms": [[0, 2]]})
        assert faults["spec"] == "storm=2@0"
        _, stars = await call(
            http, "POST", f"{base}/sandbox/stars", json={"bot": "shop_bot", "balance": 2.5}
        )
        assert stars["balance"] == 2.5
        status, err = await call(
            http, "POST", f"{base}/sandbox/users/{a}/send", json={"bot": "nobot", "text": "x"}
        )
        assert status == 400 and "no bot @nobot" in err["error"]
        await call(http, "POST", f"{base}/sandbox/reset")
        _, msgs = await call(http, "GET", f"{base}/sandbox/messages")
        _, users = await call(http, "GET", f"{base}/sandbox/users")
        assert msgs == [] and users == []
        await call(http, "POST", f"{base}/sandbox/bots/shop_bot/revoke")
        status, body = await call(http, "POST", f"{api}/getMe")
        assert (status, body["description"]) == (401, "Unauthorized")


async def _spawn(*args: str) -> tuple[asyncio.subprocess.Process, list[str]]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )
    assert proc.stdout is not None
    lines = []
    for _ in range(3):
        line = await asyncio.wait_for(proc.stdout.readline(), 20)
        lines.append(line.decode().strip())
    return proc, lines


@pytest.mark.parametrize(
    ("entry", "sig"),
    [
        ([PY, "-m", "botdesk.sandbox"], signal.SIGTERM),
        (
            [PY, "-c", "import typer; from botdesk.cli.sandbox import command; typer.run(command)"],
            signal.SIGINT,
        ),
    ],
)
async def test_process_prints_address_and_bots_then_stops_cleanly(
    entry: list[str], sig: int
) -> None:
    proc, lines = await _spawn(
        *entry, "--port", "0", "--latency", "0-0", "--users", "3", "--auto-start",
        "--bot", "a_bot", "--bot", "b_bot:123:" + "A" * 35,
    )  # fmt: skip
    try:
        assert lines[0].startswith("sandbox listening on http://127.0.0.1:")
        assert (
            lines[1].startswith("bot @a_bot token=")
            and lines[2] == "bot @b_bot token=123:" + "A" * 35
        )
        base = lines[0].split(" on ")[1]
        async with aiohttp.ClientSession() as http:
            _, users = await call(http, "GET", f"{base}/sandbox/users")
        assert len(users) == 3 and all(u["started"] == ["a_bot", "b_bot"] for u in users)
    finally:
        proc.send_signal(sig)
        rc = await asyncio.wait_for(proc.wait(), 20)
    assert rc == 0


async def test_bad_options_exit_2() -> None:
    proc = await asyncio.create_subprocess_exec(
        PY, "-m", "botdesk.sandbox", "--latency", "fast", stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 2 and b"bad latency" in err
