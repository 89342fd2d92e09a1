"""The sequence runner on a real SQLite file with a controlled clock: quiet hours in each
subscriber's zone, a step that expired while no worker ran (recorded, the sequence goes on),
delays counted from the previous step's settlement. The engine's part (sending) is played by
marking the issued rows sent, as the engine's ledger does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update
from tests.helpers import add_bot, add_subscriber

from botdesk import audience, sequence_runner
from botdesk.app import App, open_app
from botdesk.bots import BotRegistry
from botdesk.sequences import Sequences
from botdesk.store.models import Delivery, SequenceEnrolment

FILE = """name: night
trigger: {tag: go}
quiet_hours: {from: "22:00", to: "08:00", timezone: UTC}
steps:
  - text: one
  - text: two
    delay: 1h
    expires: 30m
  - text: three
    delay: 1h
"""
T0 = datetime(2026, 12, 7, 21, 30, tzinfo=UTC)


async def _enrolment(app: App, chat: int) -> tuple[str, int, datetime | None, int | None]:
    async with app.db.read() as conn:
        row = (
            await conn.execute(
                select(
                    SequenceEnrolment.state,
                    SequenceEnrolment.step,
                    SequenceEnrolment.due_at,
                    SequenceEnrolment.waiting,
                ).where(SequenceEnrolment.chat_id == chat)
            )
        ).one()
    return row[0], row[1], row[2], row[3]


async def _row_state(app: App, rid: int | None) -> str:
    async with app.db.read() as conn:
        return str((await conn.execute(select(Delivery.state).where(Delivery.id == rid))).scalar())


async def _engine_sent(app: App, rid: int | None, at: datetime) -> None:
    async with app.db.write() as conn:
        await conn.execute(
            update(Delivery).where(Delivery.id == rid).values(state="sent", updated_at=at)
        )


async def test_quiet_hours_expiry_and_delays(home: Path, tmp_path: Path) -> None:
    async with open_app(home, configure_logs=False) as app:
        async with app.db.write() as conn:
            bot_id = await add_bot(conn)
            for chat, tz in ((100, None), (200, "Asia/Tokyo")):
                await add_subscriber(conn, bot_id, chat, timezone=tz)
        await audience.tag(app.db, bot_id, 100, "go")  # tagged before the sequence: excluded
        f = tmp_path / "night.yaml"
        f.write_text(FILE)
        rec = await BotRegistry(app.db, app.secrets).get("shop")
        await Sequences(app.db).create(f, rec, now=T0)
        await audience.tag(app.db, bot_id, 200, "go")
        async with app.db.write() as conn:
            await add_subscriber(conn, bot_id, 300)
        await audience.tag(app.db, bot_id, 300, "go")

        await sequence_runner.tick(app.db, bot_id, now=T0)
        assert (await _enrolment(app, 100))[0] == "excluded"
        # 21:30 UTC: outside the quiet hours for the UTC default; issued at once.
        state, step, due, rid = await _enrolment(app, 300)
        assert (state, step, due) == ("active", 1, T0) and await _row_state(app, rid) == "pending"
        # 21:30 UTC is 06:30 in Tokyo: quiet until 08:00 Tokyo, 23:00 UTC; nothing issued.
        assert await _enrolment(app, 200) == (
            "active",
            1,
            datetime(2026, 12, 7, 23, 0, tzinfo=UTC),
            None,
        )

        await _engine_sent(app, rid, T0 + timedelta(seconds=5))
        await sequence_runner.tick(app.db, bot_id, now=T0 + timedelta(minutes=1))
        # Step 2 is due an hour after step 1 was sent, 22:30:05, in the night: 08:00 UTC.
        morning = datetime(2026, 12, 8, 8, 0, tzinfo=UTC)
        assert await _enrolment(app, 300) == ("active", 2, morning, None)

        # Nobody ran until 10:00: step 2 (expires 30 min) is recorded expired, not sent;
        # 200's first step (no expiry) goes out now (19:00 in Tokyo, not quiet).
        late = datetime(2026, 12, 8, 10, 0, tzinfo=UTC)
        await sequence_runner.tick(app.db, bot_id, now=late)
        _s, step, _d, rid300 = await _enrolment(app, 300)
        assert step == 2 and await _row_state(app, rid300) == "expired"
        _s, step, _d, rid200 = await _enrolment(app, 200)
        assert step == 1 and await _row_state(app, rid200) == "pending"

        await sequence_runner.tick(app.db, bot_id, now=late + timedelta(seconds=1))
        # The sequence goes on after an expired step: step 3 an hour after the expiry.
        assert await _enrolment(app, 300) == ("active", 3, late + timedelta(hours=1), None)

        st = await Sequences(app.db).stats("night")
        assert (st["enrolled"], st["active"]) == (2, 2)
        assert [(s["sent"], s["pending"], s["expired"]) for s in st["steps"]] == [
            (1, 1, 0),
            (0, 0, 1),
            (0, 0, 0),
        ]
