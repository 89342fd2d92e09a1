"""A menu choice pressed on a campaign's button, on SQLite and PostgreSQL: recorded as a click,
one choice of the message's picks (the other pick's tag goes), the time zone set, and a press
by someone the message was not sent to changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from tests.helpers import add_bot, add_campaign, add_delivery, add_subscriber

from botdesk import clicks
from botdesk.store.db import Database
from botdesk.store.models import Click, Subscriber, SubscriberTag

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
BUTTONS = [
    ["Berlin", "cb:pick=eu,tz=Europe/Berlin"],
    ["Tokyo", "cb:pick=asia,tz=Asia/Tokyo"],
    ["VIP", "cb:tag=vip"],
]


async def test_menu_choice_tags_one_of_the_picks_and_sets_the_zone(db: Database) -> None:
    async with db.write() as conn:
        bot_id = await add_bot(conn)
        sid = await add_subscriber(conn, bot_id, 100)
        await add_subscriber(conn, bot_id, 200)
        cid = await add_campaign(
            conn, bot_id, name="zone", text="Which time zone?", buttons=BUTTONS
        )
        await add_delivery(conn, cid, sid, 100, state="sent", message_id=7)

    async def press(chat: int, button: int, update_id: int) -> clicks.Action | None:
        async with db.write() as conn:
            return await clicks.record_callback(
                conn,
                bot_id=bot_id,
                chat_id=chat,
                data=clicks.callback_data(cid, button),
                message_id=7,
                update_id=update_id,
                now=NOW,
            )

    async def state() -> tuple[set[str], str | None, int]:
        async with db.read() as conn:
            tags = set(
                (
                    await conn.execute(
                        select(SubscriberTag.tag).where(SubscriberTag.subscriber_id == sid)
                    )
                ).scalars()
            )
            zone = (
                await conn.execute(select(Subscriber.timezone).where(Subscriber.id == sid))
            ).scalar()
            n = (await conn.execute(select(func.count()).select_from(Click))).scalar_one()
        return tags, zone, n

    tokyo = await press(100, 1, 1)
    assert tokyo is not None and tokyo.answer() == "Saved: Tokyo"
    await press(100, 2, 2)  # a plain cb:tag= button stays out of the menu's group
    assert await state() == ({"asia", "vip"}, "Asia/Tokyo", 2)
    await press(100, 0, 3)
    assert await state() == ({"eu", "vip"}, "Europe/Berlin", 3)
    assert await press(200, 1, 4) is None  # 200 was not sent this message
    assert await state() == ({"eu", "vip"}, "Europe/Berlin", 3)
