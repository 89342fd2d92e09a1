"""The engine's ledger transactions behave the same on every path: plain SQL (the SQLite lane,
one thread hop; asyncpg on PostgreSQL) and the SQLAlchemy statements, on both backends."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, update
from tests.helpers import add_bot, add_campaign, add_delivery, add_subscriber

from botdesk.delivery import ledger
from botdesk.errors import StoreError
from botdesk.store.db import Database
from botdesk.store.models import Delivery, Subscriber

NOW = datetime(2026, 11, 28, 12, 30, 15, 123456, tzinfo=UTC)


async def _world(db: Database) -> tuple[int, dict[str, int]]:
    """A campaign with four pending rows: ann (custom field), bob, cy (a group), and dee,
    who stopped after the snapshot. Returns (campaign id, row id by name)."""
    async with db.write() as conn:
        bot_id = await add_bot(conn)
        cid = await add_campaign(conn, bot_id, name="c", state="running", text="hi", audience=4)
        people = [
            ("ann", 101, "active", False, {"city": "Oslo"}),
            ("bob", 102, "active", False, None),
            ("cy", -103, "active", True, None),
            ("dee", 104, "stopped", False, None),
        ]
        rows: dict[str, int] = {}
        for name, chat, status, group, fields in people:
            sid = await add_subscriber(
                conn,
                bot_id,
                chat,
                status=status,
                first_name=name.title(),
                username=name,
                language="en",
                is_group=group,
                fields=fields,
            )
            rows[name] = await add_delivery(conn, cid, sid, chat, state="pending")
    return cid, rows


async def _states(db: Database, cid: int) -> dict[int, Any]:
    async with db.read() as conn:
        res = await conn.execute(
            select(
                Delivery.id,
                Delivery.state,
                Delivery.attempts,
                Delivery.message_id,
                Delivery.error,
                Delivery.lease_owner,
                Delivery.updated_at,
            ).where(Delivery.campaign_id == cid)
        )
        return {r.id: r for r in res}


@pytest.fixture(params=["native", "statements"])
def path(request: pytest.FixtureRequest, db: Database, monkeypatch: pytest.MonkeyPatch) -> Database:
    if request.param == "native":
        assert ledger._native(db) == ("lane" if db.is_sqlite else "asyncpg")
    else:
        monkeypatch.setattr(ledger, "_native", lambda _db: None)
    return db


async def test_claim_mark_finish_release_on_every_path(path: Database) -> None:
    db = path
    cid, row = await _world(db)

    claimed = await ledger.claim_batch(db, campaign_id=cid, owner="w1", limit=10, now_ts=0.0)
    assert [c.id for c in claimed] == [row["ann"], row["bob"], row["cy"]]
    ann = claimed[0]
    assert ann.values["first_name"] == "Ann" and ann.values["city"] == "Oslo"
    assert ann.values["chat_id"] == "101" and claimed[2].is_group and not ann.is_group
    st = await _states(db, cid)
    assert st[row["dee"]].state == "suppressed"
    assert st[row["dee"]].error == "subscriber stopped before delivery"
    assert {st[row[n]].lease_owner for n in ("ann", "bob", "cy")} == {"w1"}
    # Claimed rows are held: nothing left for another claim.
    assert await ledger.claim_batch(db, campaign_id=cid, owner="w2", limit=10, now_ts=0.0) == []

    ok = await ledger.commit_batch(
        db, bot_id=1, finishes=[], marks=[row["ann"], row["bob"]], unreachable=[], now=NOW
    )
    assert ok == {row["ann"], row["bob"]}
    sent = {"rid": row["ann"], "state": "sent", "message_id": 7, "updated_at": NOW}
    retry = {"rid": row["bob"], "state": "pending", "not_before": 5.0, "updated_at": NOW}
    # Finishes go first: bob is retried and marked again in the same transaction.
    ok = await ledger.commit_batch(
        db,
        bot_id=1,
        finishes=[sent, retry],
        marks=[row["bob"], row["dee"]],
        unreachable=[],
        now=NOW,
    )
    assert ok == {row["bob"]}  # dee is not pending: never marked
    st = await _states(db, cid)
    assert (st[row["ann"]].state, st[row["ann"]].message_id) == ("sent", 7)
    assert st[row["ann"]].lease_owner is None and st[row["ann"]].attempts == 1
    assert (st[row["bob"]].state, st[row["bob"]].attempts) == ("sending", 2)
    # Timestamps written by either path read back as the same aware datetime.
    assert st[row["ann"]].updated_at == NOW

    await ledger.release_batch(db, [row["cy"], row["bob"]], not_before=None)
    st = await _states(db, cid)
    assert (st[row["cy"]].state, st[row["cy"]].lease_owner) == ("pending", None)
    assert st[row["bob"]].state == "sending"  # only pending rows are given back
    again = await ledger.claim_batch(db, campaign_id=cid, owner="w2", limit=10, now_ts=0.0)
    assert [c.id for c in again] == [row["cy"]]


async def test_mark_refuses_subscribers_who_left_after_the_claim(path: Database) -> None:
    db = path
    cid, row = await _world(db)
    claimed = await ledger.claim_batch(db, campaign_id=cid, owner="w1", limit=10, now_ts=0.0)
    assert [c.id for c in claimed] == [row["ann"], row["bob"], row["cy"]]
    # After the claim: bob sends /stop, cy's subscriber row is removed, ann stays.
    async with db.write() as conn:
        await conn.execute(
            update(Subscriber).where(Subscriber.chat_id == 102).values(status="unsubscribed")
        )
        await conn.execute(delete(Subscriber).where(Subscriber.chat_id == -103))
    ok = await ledger.commit_batch(
        db, bot_id=1, finishes=[], marks=[c.id for c in claimed], unreachable=[], now=NOW
    )
    assert ok == {row["ann"]}
    st = await _states(db, cid)
    assert (st[row["ann"]].state, st[row["ann"]].attempts) == ("sending", 1)
    bob, cy = st[row["bob"]], st[row["cy"]]
    assert (bob.state, bob.error) == ("suppressed", "subscriber unsubscribed before sending")
    assert (cy.state, cy.error) == ("suppressed", "subscriber removed before sending")
    assert bob.attempts == cy.attempts == 0 and bob.lease_owner is None is cy.lease_owner
    assert bob.updated_at == NOW


async def test_lane_waits_for_a_held_write_lock_then_commits(tmp_path: Path) -> None:
    db = Database.open(f"sqlite+aiosqlite:///{tmp_path / 'b.db'}", busy_timeout_ms=50)
    try:
        await db.upgrade()
        _cid, row = await _world(db)
        held = threading.Event()
        release = threading.Event()

        def hold() -> None:
            c = sqlite3.connect(str(tmp_path / "b.db"), isolation_level=None)
            c.execute("BEGIN IMMEDIATE")
            held.set()
            release.wait(5)
            c.execute("COMMIT")
            c.close()

        t = threading.Thread(target=hold)
        t.start()
        held.wait(5)
        asyncio.get_running_loop().call_later(0.3, release.set)
        ok = await ledger.commit_batch(
            db, bot_id=1, finishes=[], marks=[row["ann"]], unreachable=[], now=NOW
        )
        t.join()
        assert ok == {row["ann"]}
        assert db.stats.lock_waits >= 1 and db.stats.retries >= 1 and db.stats.busy_errors == 0
    finally:
        await db.close()


async def test_lane_error_is_a_store_error_and_rolls_back(tmp_path: Path) -> None:
    db = Database.open(f"sqlite+aiosqlite:///{tmp_path / 'c.db'}")
    try:
        await db.upgrade()
        cid, row = await _world(db)

        def half_then_fail(c: sqlite3.Connection) -> None:
            c.execute("UPDATE deliveries SET state = 'sent' WHERE id = ?", (row["ann"],))
            c.execute("SELECT no_such_column FROM deliveries")

        with pytest.raises(StoreError, match="database write failed"):
            await db.write_lane(half_then_fail)
        assert (await _states(db, cid))[row["ann"]].state == "pending"
    finally:
        await db.close()


async def test_asyncpg_error_is_a_store_error_and_rolls_back(pg_schema: str) -> None:
    from tests.conftest import PG_URL

    db = Database.open(PG_URL, schema=pg_schema)
    try:
        await db.upgrade()
        cid, row = await _world(db)
        with pytest.raises(StoreError, match="database write failed"):
            async with db.write_asyncpg() as pg:
                await pg.execute("UPDATE deliveries SET state = 'sent' WHERE id = $1", row["ann"])
                await pg.execute("UPDATE deliveries SET no_such_column = 1")
        assert (await _states(db, cid))[row["ann"]].state == "pending"
    finally:
        await db.close()
