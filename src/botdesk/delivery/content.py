"""Albums and copies in the delivery engine (``worker.DeliveryEngine`` calls these).

- An album is uploaded by its first send alone (under the campaign's upload lock); its answer
  gives each item's file_id, stored on the campaign (``media_items``) so later sends, and a
  resumed run after a crash, send by file_id.
- A copy (copyMessage) has no dry run, and forwarding it anywhere to test it would post it.
  So before the first copy the source chat is asked with getChat (through the bot's limiter,
  ``pacing.Gate.call``: a 429 waits and asks again), and the first copies go one
  at a time: a source chat Telegram does not know, or a first copy answered "message to copy
  not found" / "message can't be copied", cancels the campaign with that reason on every row
  not sent, instead of failing the whole audience. Once one copy is delivered the source is
  proven and the campaign goes at full speed; a later refusal is that recipient's failure.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import update

from botdesk.log import get_logger
from botdesk.store.models import Campaign, Delivery
from botdesk.telegram.gateway import get_chat
from botdesk.telegram.media import AlbumItem, copy_message, send_album
from botdesk.telegram.outcomes import Outcome, SendResult

if TYPE_CHECKING:
    from botdesk.delivery import ledger
    from botdesk.delivery.worker import CampaignCtx, DeliveryEngine

log = get_logger(__name__)

# Telegram's answers that say the source cannot be copied, for anyone (lowercase substrings).
SOURCE_REFUSED = ("message to copy not found", "message can't be copied", "message_id_invalid")


async def send(engine: DeliveryEngine, c: CampaignCtx, row: ledger.Claimed) -> SendResult:
    msg = engine._message(c, row)
    if c.copy_from is not None:
        src = c.copy_from
        return await copy_message(
            engine.ch.bot, msg, from_chat=src["chat"], message_id=int(src["message_id"])
        )
    assert c.items is not None
    if all(i["file_id"] for i in c.items):
        return await send_album(engine.ch.bot, msg, _album(c))
    async with c.upload_lock:  # upload once, then reuse Telegram's file_ids
        result = await send_album(engine.ch.bot, msg, _album(c))
        ids = result.file_ids
        if result.outcome is Outcome.SENT and len(ids) == len(c.items) and all(ids):
            if not all(i["file_id"] for i in c.items):
                for item, fid in zip(c.items, ids, strict=True):
                    item["file_id"] = fid
                async with engine.db.write() as conn:
                    await conn.execute(
                        update(Campaign).where(Campaign.id == c.id).values(media_items=c.items)
                    )
    return result


def _album(c: CampaignCtx) -> list[AlbumItem]:
    assert c.items is not None
    return [AlbumItem(i["kind"], i["file_id"] or Path(i["path"])) for i in c.items]


async def source_ok(engine: DeliveryEngine, c: CampaignCtx) -> bool:
    """Before the first copy: does Telegram know the source chat for this bot? A chat it
    does not know would answer every copy "chat not found", which reads as the recipient's
    chat being gone."""
    assert c.copy_from is not None
    chat = c.copy_from["chat"]
    # Through the bot's limiter like every call (an @username has no chat id: chat 0); a
    # 429 waits its retry_after and asks again. getChat is not a message to the chat: no
    # group bucket.
    chat_id = chat if isinstance(chat, int) else int(chat) if str(chat).lstrip("-").isdigit() else 0
    probe = await engine.gate.call(lambda: get_chat(engine.ch.bot, chat), chat_id=chat_id)
    if probe.outcome is Outcome.CHAT_GONE:
        await stop(
            engine,
            c,
            f"source chat {chat} not found: the bot is not a member of it, or it is gone",
        )
        return False
    return True  # other answers (network, 429) say nothing about the source: the copy decides


async def after_probe(engine: DeliveryEngine, c: CampaignCtx, result: SendResult) -> None:
    if result.outcome is Outcome.SENT:
        c.proven = True
        return
    low = result.description.lower()
    if result.outcome is Outcome.BAD_REQUEST and any(n in low for n in SOURCE_REFUSED):
        src = c.copy_from or {}
        await stop(
            engine,
            c,
            f"source {src.get('chat')}:{src.get('message_id')} cannot be copied: "
            f"{result.description}",
        )


async def stop(engine: DeliveryEngine, c: CampaignCtx, reason: str) -> None:
    """Cancel the campaign because its content cannot be sent: every row not sent yet says
    why."""
    now = engine.clock.now()
    why = f"not sent: campaign stopped: {reason}"
    async with engine.db.write() as conn:
        await conn.execute(
            update(Delivery)
            .where(Delivery.campaign_id == c.id, Delivery.state == "pending")
            .values(state="cancelled", error=why, lease_owner=None, updated_at=now)
        )
        await conn.execute(
            update(Campaign)
            .where(Campaign.id == c.id, Campaign.state.in_(("running", "paused")))
            .values(state="cancelled", finished_at=now)
        )
    c.state = "cancelled"
    log.warning("campaign stopped", bot=engine.ch.name, campaign=c.id, reason=reason)
