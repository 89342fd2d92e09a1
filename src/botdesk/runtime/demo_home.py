"""A demo home for the desktop console: the sandbox Telegram with the demo bot, subscribers
who came from several sources, conversations (one waiting for a human), a finished campaign
and one still running when the window opens, and the onboarding sequence they went through.

The sandbox runs in-process for as long as the context is open, so the console's own
runtime serves the demo bot against it. The data is made the way real data is: simulated
users start the bot, ask, stop and block through the Bot API, and campaigns go out through
the engine. The running campaign is slowed by a per-bot rate of 3 msg/s (written to
botdesk.toml after the set-up) so that it is still running while the operator looks.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from botdesk import inbox, knowledge_base
from botdesk.app import open_app
from botdesk.bots import BotRegistry
from botdesk.campaigns import Campaigns, CampaignSpec
from botdesk.runtime.assembly import build_runtime
from botdesk.runtime.demo import (
    BOT,
    CAMPAIGN_TEXT,
    HUMAN,
    OPERATOR_REPLY,
    OUT_OF_SCOPE,
    QUESTIONS,
    SOURCES,
    USERNAME,
    Feed,
    _ask,
    _counts,
    _until,
)
from botdesk.sequences import Sequences

RUNNING_RATE = 3.0
FIRST_TEXT = (
    "Hello <b>{first_name}</b>! Thanks for joining: here is <i>10% off</i> your first order."
)


async def prepare(home: Path, sb: Any, *, users: int = 120, seed: int = 7) -> dict[str, int]:
    """Fill ``home`` against the running sandbox ``sb``; returns the campaign ids."""
    rng = random.Random(seed)
    home.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - set-up, before any service
    (home / "botdesk.toml").write_text(
        '[log]\nlevel = "WARNING"\n'
        f'[bots.{BOT}]\nwelcome_text = "Welcome, {{first_name}}! Ask me anything about '
        'your order. /stop unsubscribes."\n',
        encoding="utf-8",
    )
    async with open_app(home) as app:
        info = sb.add_bot(USERNAME)
        await BotRegistry(app.db, app.secrets).add(
            BOT,
            info.token,
            api_base=sb.base_url,
            connect_timeout=2,
            read_timeout=10,
        )
        kb = resources.files("botdesk.demo").joinpath("kb.md")
        with resources.as_file(kb) as kb_path:
            await knowledge_base.import_file(app.db, kb_path, bot=BOT, now=datetime.now(UTC))
        # The onboarding sequence (as `botdesk demo`): the users below enrol as they /start.
        seq_file = resources.files("botdesk.demo").joinpath("sequence.yaml")
        with resources.as_file(seq_file) as seq_path:
            rec = await BotRegistry(app.db, app.secrets).get(BOT)
            await Sequences(app.db).create(seq_path, rec, now=datetime.now(UTC))
        runtime = await build_runtime(app, poll_timeout=1)
        await runtime.start()
        try:
            people = sb.add_users(users)
            for i, u in enumerate(people):
                payload = None if i % 3 == 0 else rng.choice(SOURCES)
                await sb.user_start(u.id, USERNAME, payload=payload)

            async def all_in() -> bool:
                return sum((await _counts(app)).values()) >= users

            await _until(all_in, 60)
            feed = Feed()
            askers = rng.sample(people, 5)
            await asyncio.gather(
                *(_ask(app, sb, feed, u, q) for u, q in zip(askers, QUESTIONS[:3], strict=False))
            )
            await _ask(app, sb, feed, askers[3], OUT_OF_SCOPE)
            await _ask(app, sb, feed, askers[4], HUMAN)
            await inbox.enqueue_reply(app.db, bot=BOT, chat_id=askers[4].id, text=OPERATOR_REPLY)
            await _ask(app, sb, feed, askers[4], "thanks! and can I change the address?")
            leavers = rng.sample([u for u in people if u not in askers], users // 10)
            for u in leavers[: len(leavers) // 2]:
                await sb.user_send(u.id, USERNAME, "/stop")
            for u in leavers[len(leavers) // 2 :]:
                await sb.user_block(u.id, USERNAME)

            async def left() -> bool:
                c = await _counts(app)
                return c.get("unsubscribed", 0) + c.get("blocked", 0) >= len(leavers)

            await _until(left, 30)
            camps = Campaigns(app.db)
            rec = await BotRegistry(app.db, app.secrets).get(BOT)
            now = datetime.now(UTC)
            first = await camps.create(
                CampaignSpec(
                    bot=BOT,
                    text=FIRST_TEXT,
                    parse_mode="html",
                    name="welcome offer",
                    buttons=[("Shop now", "https://example.com/shop")],
                ),
                rec,
                now=now,
            )
            await camps.start(first.id, now=now)

            async def finished() -> bool:
                return (await camps.get(first.id)).state == "completed"

            await _until(finished, 60)
        finally:
            await runtime.stop()
        running = await camps.create(
            CampaignSpec(bot=BOT, text=CAMPAIGN_TEXT, parse_mode="html", name="winter sale"),
            rec,
            now=datetime.now(UTC),
        )
        await camps.start(running.id, now=datetime.now(UTC))
    with (home / "botdesk.toml").open("a", encoding="utf-8") as fh:
        fh.write(f"rate = {RUNNING_RATE}\n")  # under [bots.demo]: the last table in the file
    return {"finished": first.id, "running": running.id}


@contextlib.asynccontextmanager
async def demo_home(home: Path | None = None, *, users: int = 120) -> AsyncIterator[Path]:
    """The sandbox, running, and a home prepared against it (a temporary one by default)."""
    from botdesk.sandbox import Sandbox, SandboxConfig

    tmp = Path(tempfile.mkdtemp(prefix="botdesk-gui-demo-")) if home is None else home
    try:
        cfg = SandboxConfig(host="127.0.0.1", port=0, seed=7, latency=(0.01, 0.05))
        async with Sandbox(cfg) as sb:
            await prepare(tmp, sb, users=users)
            yield tmp
    finally:
        if home is None:
            shutil.rmtree(tmp, ignore_errors=True)
