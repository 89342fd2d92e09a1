"""Edit and recall a sent campaign against the sandbox: content, rules, suppression, serve."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from tests.e2e.action_support import accounted, act, action_rows, records, sent_campaign
from tests.e2e.support import eventually, running

from botdesk.app import App
from botdesk.campaign_actions import ActionSpec, CampaignActions
from botdesk.errors import DeliveryError, TemplateError, ValidationError
from botdesk.sandbox.methods import DELETE_WINDOW_S
from botdesk.store.models import CampaignAction, Subscriber

SHOP = ("Shop", "https://example.com/shop")


async def test_edit_changes_every_delivered_message(app: App, sandbox: Any) -> None:
    cid, users = await sent_campaign(
        app, sandbox, 6, "Hi {first_name}, boots cost 100", buttons=[SHOP]
    )
    st = await act(
        app,
        ActionSpec(campaign_id=cid, kind="edit", text="Hi {first_name}, boots cost 90"),
    )
    assert st["state"] == "completed" and st["edited"] == st["total"] == 6
    assert accounted(st) == 6
    by_chat = {u.id: u for u in users}
    for rec in records(sandbox):
        user = by_chat[rec["chat_id"]]
        assert rec["text"] == f"Hi {user.first_name}, boots cost 90"
        assert rec["edited"] and rec["edit_calls"] == 1 and rec["edits"] == 1
        # The campaign's keyboard is sent again (an edit without one would remove it).
        assert rec["reply_markup"]["inline_keyboard"][0][0]["url"] == SHOP[1]


async def test_edit_replaces_buttons_and_a_photo_caption(
    app: App, sandbox: Any, tmp_path: Path
) -> None:
    photo = tmp_path / "p.png"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    cid, _ = await sent_campaign(app, sandbox, 3, "New boots", photo=photo, buttons=[SHOP])
    st = await act(
        app,
        ActionSpec(
            campaign_id=cid,
            kind="edit",
            text="<b>New</b> boots, now 90",
            parse_mode="html",
            buttons=(("Sale", "https://example.com/sale"),),
        ),
    )
    assert st["edited"] == 3
    for rec in records(sandbox):
        assert rec["caption"] == "New boots, now 90" and rec["entities"][0]["type"] == "bold"
        assert rec["reply_markup"]["inline_keyboard"][0][0]["text"] == "Sale"
    # Editing again with the same content: Telegram says "not modified"; the row is edited,
    # with the reason, and nothing else changes.
    again = await act(
        app,
        ActionSpec(
            campaign_id=cid,
            kind="edit",
            text="<b>New</b> boots, now 90",
            parse_mode="html",
            buttons=(("Sale", "https://example.com/sale"),),
        ),
    )
    assert again["edited"] == 3
    assert again["reasons"][0]["reason"].startswith("unchanged")
    assert all(r["edits"] == 1 and r["edit_calls"] == 2 for r in records(sandbox))


async def test_recall_deletes_and_suppresses_who_blocked_the_bot(app: App, sandbox: Any) -> None:
    cid, users = await sent_campaign(app, sandbox, 5, "Flash sale")
    blocked = users[0]
    async with app.db.write() as conn:  # what serve records when the user blocks the bot
        await conn.execute(
            update(Subscriber).where(Subscriber.chat_id == blocked.id).values(status="blocked")
        )
    st = await act(app, ActionSpec(campaign_id=cid, kind="recall"))
    assert st["recalled"] == 4 and st["suppressed"] == 1 and accounted(st) == 5
    assert st["reasons"] == [
        {"state": "suppressed", "reason": "subscriber blocked since the campaign", "count": 1}
    ]
    for rec in records(sandbox):
        if rec["chat_id"] == blocked.id:
            assert not rec["deleted"] and "delete_calls" not in rec
        else:
            assert rec["deleted"] and rec["delete_calls"] == 1
    # A later edit leaves the recalled messages out; a second recall has nothing to do.
    plan = await CampaignActions(app.db).plan(ActionSpec(campaign_id=cid, kind="edit", text="x"))
    assert plan.messages == 1
    with pytest.raises(DeliveryError, match="no delivered message"):
        async with app.db.write() as conn:
            await conn.execute(update(Subscriber).values(status="active"))
        await act(app, ActionSpec(campaign_id=cid, kind="recall"))
        await act(app, ActionSpec(campaign_id=cid, kind="recall"))


async def test_too_old_to_delete_is_a_clear_reason(app: App, sandbox: Any) -> None:
    cid, _ = await sent_campaign(app, sandbox, 3, "Yesterday's news")
    sandbox.advance_clock(DELETE_WINDOW_S + 3600)  # the messages are 49 hours old
    st = await act(app, ActionSpec(campaign_id=cid, kind="recall"))
    assert st["failed"] == 3 and st["recalled"] == 0
    (reason,) = st["reasons"]
    assert "within 48 hours" in reason["reason"] and reason["count"] == 3
    assert all(r["delete_calls"] == 1 and not r["deleted"] for r in records(sandbox))
    # Editing has no such window.
    st = await act(app, ActionSpec(campaign_id=cid, kind="edit", text="Corrected news"))
    assert st["edited"] == 3


async def test_a_message_deleted_meanwhile_fails_with_its_reason(app: App, sandbox: Any) -> None:
    cid, users = await sent_campaign(app, sandbox, 2, "Hello")
    gone = records(sandbox, users[1].id)[0]
    sandbox.api.delete_one(sandbox.world.bot("shop_bot"), users[1].id, gone["message_id"])
    st = await act(app, ActionSpec(campaign_id=cid, kind="edit", text="Hello again"))
    assert st["edited"] == 1 and st["failed"] == 1
    assert "message to edit not found" in st["reasons"][0]["reason"]


async def test_validated_before_anything_is_touched(app: App, sandbox: Any) -> None:
    cid, _ = await sent_campaign(app, sandbox, 2, "Hi {first_name}")
    service = CampaignActions(app.db)
    with pytest.raises(TemplateError, match="Telegram allows 4096"):
        await service.start(
            ActionSpec(campaign_id=cid, kind="edit", text="x" * 4095 + "{first_name}"),
            now=datetime.now(UTC),
        )
    with pytest.raises(TemplateError, match="unknown variable"):
        await service.start(
            ActionSpec(campaign_id=cid, kind="edit", text="Hi {frist_name}"),
            now=datetime.now(UTC),
        )
    with pytest.raises(TemplateError, match="parse"):
        await service.start(
            ActionSpec(campaign_id=cid, kind="edit", text="<b>open", parse_mode="html"),
            now=datetime.now(UTC),
        )
    with pytest.raises(ValidationError, match="button URL"):
        await service.start(
            ActionSpec(campaign_id=cid, kind="edit", text="ok", buttons=(("x", "ftp://x"),)),
            now=datetime.now(UTC),
        )
    async with app.db.read() as conn:
        assert (await conn.execute(CampaignAction.__table__.select())).first() is None
    assert all(not r["edited"] and "edit_calls" not in r for r in records(sandbox))
    # One action at a time per campaign.
    await service.start(ActionSpec(campaign_id=cid, kind="recall"), now=datetime.now(UTC))
    with pytest.raises(DeliveryError, match="unfinished recall"):
        await service.plan(ActionSpec(campaign_id=cid, kind="edit", text="ok"))


async def test_a_running_campaign_is_refused(app: App, sandbox: Any) -> None:
    from tests.e2e.campaign_support import create, seed
    from tests.e2e.support import register

    await register(app, sandbox, "shop", "shop_bot")
    await seed(app, sandbox, "shop", "shop_bot", 2)
    cid = await create(app, "shop", "Soon")
    with pytest.raises(DeliveryError, match="is draft; only a completed or cancelled"):
        await CampaignActions(app.db).plan(ActionSpec(campaign_id=cid, kind="recall"))


async def test_serve_performs_a_queued_action(app: App, sandbox: Any) -> None:
    cid, _ = await sent_campaign(app, sandbox, 4, "Served news")
    service = CampaignActions(app.db)
    async with running(app):
        aid = await service.start(ActionSpec(campaign_id=cid, kind="recall"), now=datetime.now(UTC))

        async def done() -> bool:
            return (await service.status(aid))["state"] == "completed"

        await eventually(done, within=20)
    st = await service.status(aid)
    assert st["recalled"] == 4
    rows = await action_rows(app, aid)
    assert {r.state for r in rows} == {"recalled"}
    news = [r for r in records(sandbox) if r["text"] == "Served news"]
    assert len(news) == 4
    assert all(r["deleted"] and r["delete_calls"] == 1 for r in news), news


async def test_a_block_botdesk_did_not_know_of_is_learned(app: App, sandbox: Any) -> None:
    cid, users = await sent_campaign(app, sandbox, 3, "Hello")
    await sandbox.user_block(users[2].id, "shop_bot")  # nobody polls: the ledger still says active
    st = await act(app, ActionSpec(campaign_id=cid, kind="edit", text="Hello again"))
    assert st["edited"] == 2 and st["suppressed"] == 1
    async with app.db.read() as conn:
        status = (
            await conn.execute(
                Subscriber.__table__.select().where(Subscriber.chat_id == users[2].id)
            )
        ).one()
    assert status.status == "blocked"  # later campaigns skip them
