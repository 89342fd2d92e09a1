"""Helpers for campaign action tests: a sent campaign, an action run here, sandbox records."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from tests.e2e.campaign_support import create, seed
from tests.e2e.support import register

from botdesk.app import App
from botdesk.campaign_actions import ActionSpec, CampaignActions
from botdesk.runtime.action_run import run_action
from botdesk.runtime.foreground import run_campaign
from botdesk.store.models import CampaignActionRow

FINAL = ("edited", "recalled", "failed", "suppressed", "uncertain")


async def sent_campaign(
    app: App, sb: Any, n: int, text: str, *, register_bot: bool = True, **kw: Any
) -> tuple[int, list[Any]]:
    """A campaign delivered to ``n`` sandbox users by `campaign run`'s engine."""
    if register_bot:
        await register(app, sb, "shop", "shop_bot")
    users = await seed(app, sb, "shop", "shop_bot", n)
    cid = await create(app, "shop", text, **kw)
    await run_campaign(app, cid)
    return cid, users


async def act(app: App, spec: ActionSpec) -> dict[str, Any]:
    service = CampaignActions(app.db)
    aid = await service.start(spec, now=datetime.now(UTC))
    assert await run_action(app, aid) is not None
    return await service.status(aid)


def records(sb: Any, chat_id: int | None = None) -> list[dict[str, Any]]:
    return sb.messages(bot="shop_bot", chat_id=chat_id)


async def action_rows(app: App, action_id: int) -> list[Any]:
    async with app.db.read() as conn:
        return list(
            (
                await conn.execute(
                    select(
                        CampaignActionRow.id,
                        CampaignActionRow.chat_id,
                        CampaignActionRow.message_id,
                        CampaignActionRow.state,
                        CampaignActionRow.error,
                    ).where(CampaignActionRow.action_id == action_id)
                )
            ).all()
        )


def accounted(st: dict[str, Any]) -> int:
    return sum(st[k] for k in (*FINAL, "pending", "acting", "cancelled"))
