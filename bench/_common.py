"""Shared pieces of the delivery benchmarks: the sandbox as its own process, with arrival times.

``SandboxProcess`` starts ``python bench/_common.py '<json>'``: a sandbox (any
``SandboxConfig`` field) in a separate process, so its CPU is not charged to the client being
measured and the client's CPU does not slow the server. That process also records, for every
message the sandbox accepts, ``time.monotonic()`` at the moment it is recorded (CLOCK_MONOTONIC is
system-wide on Linux, so the figures are comparable with the client's), and serves them at
``GET /bench/arrivals?bot=USERNAME`` (``/bench/chat_arrivals``: with each one's chat); every
429 its limiter answers, new messages and other calls (edits, deletions, getChat) alike, at
``GET /bench/refusals``, and the calls it admitted at ``GET /bench/call_arrivals``: the rate
figures come from the server's own record, not from the sender's idea of when it sent.

``botdesk_app`` opens a throw-away botdesk home (SQLite in a temp dir, or a fresh PostgreSQL
schema), and ``seed_subscribers`` records chat ids as active subscribers straight into the
store, like the e2e tests do.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import resource
import shlex
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

PY = sys.executable
HERE = Path(__file__).resolve().parent
DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def token_for(n: int) -> str:
    """A fake token with Telegram's shape (aiogram validates the shape)."""
    return f"{7000000000 + n}:" + "B" * 35


def banner(argv: Sequence[str]) -> None:
    print("command:", shlex.join([".venv/bin/python", *argv]))
    print(f"machine: nproc={os.cpu_count()} python={platform.python_version()} "
          f"date={datetime.now(UTC):%Y-%m-%d %H:%M} UTC")  # fmt: skip


def cpu_self() -> float:
    """User + system CPU seconds of this process, every thread."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of another process, from /proc."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rate_of(times: Sequence[float]) -> float:
    """Delivered messages / seconds from the first accepted message to the last."""
    if len(times) < 2:
        return 0.0
    span = max(times) - min(times)
    return len(times) / span if span > 0 else float("inf")


# -- the sandbox process ------------------------------------------------------------------


class SandboxProcess:
    """``async with SandboxProcess(bots=[(username, token)], **config) as sb``."""

    def __init__(self, *, bots: Sequence[tuple[str, str]], **config: Any) -> None:
        self.spec = {"bots": [list(b) for b in bots], "config": config}
        self.proc: asyncio.subprocess.Process | None = None
        self.base = ""
        self._http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> SandboxProcess:
        self.proc = await asyncio.create_subprocess_exec(
            PY, str(HERE / "_common.py"), json.dumps(self.spec), stdout=asyncio.subprocess.PIPE
        )
        assert self.proc.stdout is not None
        line = (await asyncio.wait_for(self.proc.stdout.readline(), 30)).decode()
        if " on " not in line:
            raise SystemExit(f"sandbox did not start: {line!r}")
        self.base = line.split(" on ", 1)[1].strip()
        self._http = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._http is not None:
            await self._http.close()
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        assert self._http is not None
        async with self._http.request(method, self.base + path, json=body) as r:
            data = await r.json()
            if r.status != 200:
                raise SystemExit(f"sandbox {path}: {data}")
            return data

    async def add_users(self, count: int, bot: str) -> list[int]:
        """``count`` users who sent /start to ``bot`` (so it may write to them)."""
        ids: list[int] = []
        while len(ids) < count:
            n = min(5000, count - len(ids))
            made = await self._call(
                "POST", "/sandbox/users", {"count": n, "start": True, "bots": [bot]}
            )
            ids.extend(int(u["id"]) for u in made)
        return ids

    async def forget_updates(self, token: str) -> None:
        """Confirm every pending update of the bot with this token, as a bot that has already
        handled them would (getUpdates with offset -1, then past the last one). The benches'
        subscribers joined "long ago": without this, a serving runtime first welcomes each of
        them, and those replies (rightly) go before any campaign send."""
        assert self._http is not None
        url = f"{self.base}/bot{token}/getUpdates"
        async with self._http.post(url, json={"offset": -1, "timeout": 0}) as r:
            last = (await r.json())["result"]
        if last:
            next_id = last[-1]["update_id"] + 1
            async with self._http.post(url, json={"offset": next_id, "timeout": 0}) as r:
                await r.read()

    async def set_stars(self, bot: str, balance: float) -> None:
        await self._call("POST", "/sandbox/stars", {"bot": bot, "balance": balance})

    async def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", "/sandbox/stats")
        return result

    async def bot_stats(self, bot: str) -> dict[str, Any]:
        per_bot: dict[str, Any] = (await self.stats())["bots"].get(bot, {})
        return {
            "accepted": per_bot.get("accepted", 0),
            "rate_limited": per_bot.get("rate_limited", 0),
            "errors": per_bot.get("errors", 0),
            "paid": per_bot.get("paid", 0),
        }

    async def arrivals(self, bot: str) -> list[float]:
        times: list[float] = await self._call("GET", f"/bench/arrivals?bot={bot}")
        return times

    async def reset_arrivals(self) -> None:
        await self._call("POST", "/bench/arrivals/reset")

    async def refusals(self) -> list[float]:
        """Monotonic times of every 429 the sandbox's limiter answered (any bot)."""
        times: list[float] = await self._call("GET", "/bench/refusals")
        return times

    async def set_bot_rate(self, rate: float) -> None:
        """Change the per-bot limit the sandbox enforces, from now on."""
        await self._call("POST", "/bench/limit", {"bot_rate": rate})

    async def add_group(self, bot: str, title: str) -> int:
        """A group the bot is a member of (groups are held to the per-group limit)."""
        made = await self._call("POST", "/sandbox/groups", {"title": title, "bot": bot})
        return int(made["chat_id"])

    async def chat_arrivals(self) -> list[tuple[float, int]]:
        """(time, chat id) of every message the sandbox accepted (any bot)."""
        rows: list[list[float]] = await self._call("GET", "/bench/chat_arrivals")
        return [(float(t), int(c)) for t, c in rows]

    async def call_arrivals(self) -> list[float]:
        """Times of every edit, deletion and getChat the sandbox's limiter admitted."""
        times: list[float] = await self._call("GET", "/bench/call_arrivals")
        return times


def _serve(spec: dict[str, Any]) -> None:
    """Entry point of the sandbox process (imports the sandbox only here)."""
    import signal

    from aiohttp import web

    from botdesk.sandbox import Sandbox, SandboxConfig

    cfg = dict(spec["config"])
    if "latency" in cfg:
        cfg["latency"] = tuple(cfg["latency"])
    config = SandboxConfig(port=0, **cfg)
    arrivals: dict[str, list[float]] = {}
    chat_arrivals: list[tuple[float, int]] = []
    call_arrivals: list[float] = []
    refusals: list[float] = []

    class BenchSandbox(Sandbox):
        def app(self) -> web.Application:
            app = super().app()
            app.router.add_get("/bench/arrivals", self._arrivals)
            app.router.add_post("/bench/arrivals/reset", self._reset_arrivals)
            app.router.add_get("/bench/refusals", self._refusals)
            app.router.add_post("/bench/limit", self._limit)
            app.router.add_get("/bench/chat_arrivals", self._chat_arrivals)
            app.router.add_get("/bench/call_arrivals", self._call_arrivals)
            return app

        async def _chat_arrivals(self, request: web.Request) -> web.Response:
            return web.json_response(chat_arrivals)

        async def _call_arrivals(self, request: web.Request) -> web.Response:
            return web.json_response(call_arrivals)

        async def _refusals(self, request: web.Request) -> web.Response:
            return web.json_response(refusals)

        async def _limit(self, request: web.Request) -> web.Response:
            rate = float((await request.json())["bot_rate"])
            now = self.limiter.clock()
            self.limiter.bot_rate = rate
            for key, bucket in self.limiter._buckets.items():
                if key[0] == "bot":
                    bucket.refill(now)  # what accrued so far at the old rate
                    bucket.rate = rate
            return web.json_response({"ok": True})

        async def _arrivals(self, request: web.Request) -> web.Response:
            return web.json_response(arrivals.get(request.query.get("bot", ""), []))

        async def _reset_arrivals(self, request: web.Request) -> web.Response:
            arrivals.clear()
            return web.json_response({"ok": True})

    sb = BenchSandbox(config)
    record = sb.api.record

    def timed_record(bot: Any, *args: Any, **kwargs: Any) -> Any:
        out = record(bot, *args, **kwargs)
        now = time.monotonic()
        arrivals.setdefault(bot.info.username, []).append(now)
        chat_arrivals.append((now, int(args[0])))
        return out

    sb.api.record = timed_record  # type: ignore[method-assign]
    check = sb.limiter.check

    def timed_check(*args: Any, **kwargs: Any) -> Any:
        decision = check(*args, **kwargs)
        if decision.retry_after:
            refusals.append(time.monotonic())
        return decision

    sb.limiter.check = timed_check  # type: ignore[method-assign]
    check_call = sb.limiter.check_call

    def timed_check_call(*args: Any, **kwargs: Any) -> Any:
        # Edits, deletions and getChat: the bot's limit only, their 429s count the same.
        decision = check_call(*args, **kwargs)
        (refusals if decision.retry_after else call_arrivals).append(time.monotonic())
        return decision

    sb.limiter.check_call = timed_check_call  # type: ignore[method-assign]
    for username, token in spec["bots"]:
        sb.add_bot(username, token)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with sb:
            print(f"sandbox listening on {sb.base_url}", flush=True)
            await stop.wait()

    asyncio.run(main())


# -- botdesk side --------------------------------------------------------------------------


@dataclass
class Backend:
    name: str  # sqlite | postgresql
    url: str | None = None  # PostgreSQL server URL
    schema: str | None = None


async def _pg(url: str, sql: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def botdesk_app(toml: str, *, backend: Backend | None = None) -> AsyncIterator[Any]:
    """A fresh botdesk home (and PostgreSQL schema), deleted/dropped on exit."""
    import shutil

    from botdesk.app import open_app

    os.environ["BOTDESK_KEYRING"] = "off"
    backend = backend or Backend("sqlite")
    home = Path(tempfile.mkdtemp(prefix="bench-delivery-", dir="/tmp"))
    schema = None
    if backend.name == "postgresql":
        assert backend.url
        schema = backend.schema or f"bench_{uuid.uuid4().hex[:10]}"
        await _pg(backend.url, f'CREATE SCHEMA "{schema}"')
        toml = f'[database]\nurl = "{backend.url}"\n' + toml
    (home / "botdesk.toml").write_text(toml)
    try:
        async with open_app(home, configure_logs=False, schema=schema) as app:
            yield app
    finally:
        if schema is not None and backend.url:
            await _pg(backend.url, f'DROP SCHEMA "{schema}" CASCADE')
        shutil.rmtree(home, ignore_errors=True)


async def register_bot(app: Any, name: str, token: str, base: str) -> Any:
    from botdesk.bots import BotRegistry

    return await BotRegistry(app.db, app.secrets).add(
        name, token, api_base=base, connect_timeout=5, read_timeout=10
    )


async def insert_bot(app: Any, **values: Any) -> int:
    """A bot row written straight into the store (``shop``, @shop_bot unless ``values`` say
    otherwise), for benches that never call Telegram with it: no token check, no secret."""
    from sqlalchemy import insert

    from botdesk.store.models import Bot

    row = {"name": "shop", "telegram_id": 1, "username": "shop_bot", "token_secret": "x"}
    row.update(values)
    async with app.db.write() as conn:
        return int((await conn.execute(insert(Bot).values(**row).returning(Bot.id))).scalar_one())


async def seed_subscribers(app: Any, bot_id: int, chat_ids: Sequence[int]) -> None:
    from sqlalchemy import insert

    from botdesk.store.models import Subscriber

    now = datetime.now(UTC)
    rows = [
        {
            "bot_id": bot_id,
            "chat_id": c,
            "status": "active",
            "first_name": f"User{i}",
            "username": f"user{i}",
            "language": "en",
            "joined_at": now,
            "updated_at": now,
            "is_group": False,
        }
        for i, c in enumerate(chat_ids)
    ]
    for i in range(0, len(rows), 5000):
        async with app.db.write() as conn:
            await conn.execute(insert(Subscriber), rows[i : i + 5000])


async def create_campaign(app: Any, bot: Any, text: str, *, paid: bool = False) -> int:
    from botdesk.campaigns import Campaigns, CampaignSpec

    info = await Campaigns(app.db).create(
        CampaignSpec(bot=bot.name, text=text, paid=paid), bot, now=datetime.now(UTC)
    )
    return int(info.id)


if __name__ == "__main__":
    _serve(json.loads(sys.argv[1]))
