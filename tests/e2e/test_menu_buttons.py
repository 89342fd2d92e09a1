"""Self-segmenting menus in a campaign and in a sequence step, through `serve` and the
sandbox: a user picks an interest on a campaign's buttons (one choice of several), the tag
starts a sequence whose step asks "Which time zone?", and the user's choice there tags and
sets the time zone. Every press is a click, answered with what it saved (the campaign's
choices "Saved: LABEL", the step menu with its own ``answer`` text). (SQLite here; the
same writes on PostgreSQL: tests/integration/test_menu_clicks.py.)"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from tests.e2e.campaign_support import copies, create, seed
from tests.e2e.support import app_on, eventually, register, running, write_config
from tests.e2e.test_campaign_clicks import data_of
from tests.e2e.test_sequences import TOML, _create, _enrolments

from botdesk.app import App
from botdesk.campaigns import Campaigns
from botdesk.store.models import Click, SequenceStep, Subscriber, SubscriberTag

BOT = "shop_bot"
ZONE = """name: zone
trigger: {tag: shoes}
stop: {on_reply: false}
steps:
  - text: "zone-1 Which time zone?"
    menu:
      exclusive: true
      answer: "Time zone set: {label}"
      buttons:
        - {label: Berlin, tag: eu, timezone: Europe/Berlin}
        - {label: Tokyo, tag: asia, timezone: Asia/Tokyo}
"""


async def _tags(app: App) -> dict[int, set[str]]:
    async with app.db.read() as conn:
        rows = await conn.execute(
            select(Subscriber.chat_id, SubscriberTag.tag).join(
                SubscriberTag, SubscriberTag.subscriber_id == Subscriber.id
            )
        )
        out: dict[int, set[str]] = {}
        for chat, tag in rows:
            out.setdefault(chat, set()).add(tag)
        return out


def _message(sb: Any, chat: int, needle: str) -> dict[str, Any]:
    return next(m for m in sb.messages(bot=BOT, chat_id=chat) if needle in (m.get("text") or ""))


async def test_menu_in_a_campaign_and_a_step_tags_sets_the_zone_and_starts_sequences(
    home: Path, sandbox: Any, tmp_path: Path
) -> None:
    write_config(home, TOML)
    async with app_on(home, "sqlite", None) as app:
        await register(app, sandbox, "shop", BOT)
        a, b = await seed(app, sandbox, "shop", BOT, 2)
        zone = await _create(app, tmp_path, ZONE, "zone")
        cid = await create(
            app,
            "shop",
            "What interests you?",
            buttons=[("Shoes", "cb:pick=shoes"), ("Bags", "cb:pick=bags")],
        )
        await Campaigns(app.db).start(cid, now=datetime.now(UTC))
        bot = sandbox.world.bot(BOT)
        async with running(app):

            async def delivered() -> bool:
                return len(copies(sandbox, BOT, "What interests")) == 2

            await eventually(delivered, within=30)
            menu = {u.id: _message(sandbox, u.id, "What interests") for u in (a, b)}
            presses = []
            for user, label in ((a, "Bags"), (a, "Shoes"), (b, "Bags")):  # handled in order
                m = menu[user.id]
                q = await sandbox.user_press(user.id, BOT, m["message_id"], data_of(m, label))
                presses.append((q["id"], f"Saved: {label}"))

            async def asked() -> bool:
                return bool(copies(sandbox, BOT, "zone-1"))

            await eventually(asked, within=30)
            step = _message(sandbox, a.id, "zone-1")
            q = await sandbox.user_press(a.id, BOT, step["message_id"], data_of(step, "Berlin"))

            presses.append((q["id"], "Time zone set: Berlin"))  # the step menu's own answer

            async def all_answered() -> bool:
                return all(qid in bot.answered for qid, _ in presses)

            await eventually(all_answered, within=10)
            assert [bot.answered[qid] for qid, _ in presses] == [t for _, t in presses]
        # Shoes replaced Bags for a (pick=); the step's choice tagged eu and set the zone.
        assert await _tags(app) == {a.id: {"shoes", "eu"}, b.id: {"bags"}}
        async with app.db.read() as conn:
            zones = dict(
                (await conn.execute(select(Subscriber.chat_id, Subscriber.timezone))).all()
            )
            step_cid = (
                await conn.execute(
                    select(SequenceStep.campaign_id).where(SequenceStep.sequence_id == zone)
                )
            ).scalar_one()
            by_campaign = dict(
                (
                    await conn.execute(
                        select(Click.campaign_id, func.count()).group_by(Click.campaign_id)
                    )
                ).all()
            )
        assert zones == {a.id: "Europe/Berlin", b.id: None}
        assert by_campaign == {cid: 3, step_cid: 1}  # every choice is a click of its message
        assert copies(sandbox, BOT, "zone-1") == Counter({a.id: 1})
        assert (await _enrolments(app, zone)).total() == 1  # a enrolled once; b never
