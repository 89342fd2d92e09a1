"""Helpers for end-to-end tests: register bots against the sandbox, run the runtime, wait."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiogram import Dispatcher
from aiogram.types import Update
from sqlalchemy import func, select

from botdesk.app import App, open_app
from botdesk.bots import BotRecord, BotRegistry
from botdesk.clock import SystemClock
from botdesk.runtime.assembly import build_runtime
from botdesk.runtime.channel import open_channel
from botdesk.runtime.handlers import build_router
from botdesk.runtime.menus import build_menu_router
from botdesk.runtime.metrics import Metrics
from botdesk.runtime.ports import AutoReply
from botdesk.runtime.service import Runtime
from botdesk.runtime.updates import UpdateProcessor
from botdesk.store.models import ProcessedUpdate


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def register(app: App, sb: Any, name: str, username: str) -> Any:
    info = sb.add_bot(username)
    await BotRegistry(app.db, app.secrets).add(
        name, info.token, api_base=sb.base_url, connect_timeout=2, read_timeout=5
    )
    return info


@asynccontextmanager
async def running(app: App, **kw: Any) -> AsyncIterator[Runtime]:
    kw.setdefault("poll_timeout", 1)
    rt = await build_runtime(app, **kw)
    await rt.start()
    try:
        yield rt
    finally:
        await rt.stop()


async def eventually(
    check: Callable[[], Awaitable[bool]], *, within: float = 15.0, every: float = 0.05
) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        if await check():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(every)


# No embedding model: these tests are about updates, and loading it costs seconds per start.
QUICK_TOML = """
[assistant]
embeddings = false
"""
FAST_TOML = (
    QUICK_TOML
    + """
[delivery]
rate = 1000.0
"""
)


def write_config(home: Path, text: str = FAST_TOML) -> None:
    """botdesk.toml for tests that send many replies: the sandbox's limits are lifted too."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "botdesk.toml").write_text(text, encoding="utf-8")


@asynccontextmanager
async def app_on(home: Path, backend: str, schema: str | None = None) -> AsyncIterator[App]:
    """An App on SQLite (the home's file) or on PostgreSQL in ``schema``.

    ``open_app`` has no schema parameter, so the PostgreSQL app is assembled here from the
    same parts: the home's settings and a Database opened with ``schema``.
    """
    if backend == "sqlite":
        async with open_app(home, configure_logs=False) as a:
            yield a
        return
    from tests.conftest import PG_URL

    from botdesk.app import load
    from botdesk.store.db import Database

    h, settings = load(home)
    h.ensure()
    db = Database.open(PG_URL, schema=schema)
    try:
        await db.upgrade()
        yield App(home=h, settings=settings, db=db)
    finally:
        await db.close()


@asynccontextmanager
async def update_processor(app: App, rec: BotRecord) -> AsyncIterator[UpdateProcessor]:
    """The runtime's real update processor and aiogram dispatcher for one bot, without
    polling: a test hands it updates (``process``) at the moment it wants them handled."""
    channel = open_channel(app, rec, clock=SystemClock(), metrics=Metrics())
    dp = Dispatcher()
    dp.include_router(build_menu_router())
    dp.include_router(build_router())
    proc = UpdateProcessor(channel=channel, dispatcher=dp, port=AutoReply({}, default=""))
    try:
        yield proc
    finally:
        await proc.drain(grace=2)
        await channel.aclose()


def message_update(uid: int, update_id: int, text: str) -> Update:
    """A private text message from ``uid`` (a Bot API update as Telegram sends it)."""
    return Update.model_validate(
        {
            "update_id": update_id,
            "message": {
                "message_id": update_id,
                "date": 0,
                "chat": {"id": uid, "type": "private"},
                "from": {"id": uid, "is_bot": False, "first_name": "U"},
                "text": text,
            },
        }
    )


def blocked_update(uid: int, update_id: int) -> Update:
    """``uid`` blocked the bot: the my_chat_member update Telegram sends."""
    me = {"id": 1, "is_bot": True, "first_name": "shop"}
    return Update.model_validate(
        {
            "update_id": update_id,
            "my_chat_member": {
                "chat": {"id": uid, "type": "private"},
                "from": {"id": uid, "is_bot": False, "first_name": "U"},
                "date": 0,
                "old_chat_member": {"status": "member", "user": me},
                "new_chat_member": {"status": "kicked", "user": me, "until_date": 0},
            },
        }
    )


async def scalar(app: App, stmt: Any) -> Any:
    async with app.db.read() as conn:
        return (await conn.execute(stmt)).scalar()


async def processed(app: App, bot_id: int | None = None) -> int:
    q = select(func.count()).select_from(ProcessedUpdate)
    if bot_id is not None:
        q = q.where(ProcessedUpdate.bot_id == bot_id)
    return int(await scalar(app, q))


class ServeProcess:
    """`botdesk serve` as a child process, its output in a file; ``stop``/``kill`` end it.

    The pytest event loop keeps running while it waits (asyncio subprocesses), so an
    in-process sandbox keeps answering the child.
    """

    def __init__(self, home: Path, *args: str) -> None:
        self.home = home
        self.args = args
        self.log = home / f"serve-{id(self)}.log"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> ServeProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BOTDESK_")}
        env.update(BOTDESK_KEYRING="off", BOTDESK_HOME=str(self.home), PYTHONUNBUFFERED="1")
        with self.log.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "botdesk.cli.main",
                "--home",
                str(self.home),
                "serve",
                *self.args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                env=env,
            )
        return self

    @property
    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    async def signal(self, sig: int, *, within: float = 20.0) -> int:
        """Send ``sig`` and wait for the exit code (kill -9 after ``within`` seconds)."""
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        try:
            return await asyncio.wait_for(self.proc.wait(), within)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            raise AssertionError(f"serve did not exit within {within}s of signal {sig}") from None

    async def kill(self) -> None:
        await self.signal(signal.SIGKILL, within=10)

    async def close(self) -> None:
        """Whatever happened, the child is gone afterwards."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
