"""Campaign send options through the sandbox: silent, protected, no link preview, a rate cap."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from tests.e2e import test_campaign_delivery as delivery
from tests.e2e.campaign_support import create, seed, status
from tests.e2e.support import register

from botdesk.app import App
from botdesk.bots import BotRegistry
from botdesk.campaigns import Campaigns, CampaignSpec, SendOptions
from botdesk.clock import ManualClock
from botdesk.delivery.worker import CampaignCtx
from botdesk.errors import ValidationError
from botdesk.runtime.foreground import run_campaign

# The same fixtures as the delivery tests: a fast home, a sandbox without limits.
fast_app = delivery.fast_app
fast_sandbox = delivery.fast_sandbox


async def test_options_reach_every_send_and_the_cap_holds(fast_app: App, fast_sandbox: Any):
    sb = fast_sandbox
    await register(fast_app, sb, "shop", "shop_bot")
    users = await seed(fast_app, sb, "shop", "shop_bot", 11)
    options = SendOptions(silent=True, protect=True, link_preview=False, max_rate=5.0)
    cid = await create(fast_app, "shop", "Sale: https://example.com/sale", options=options)
    assert (await status(fast_app, cid))["options"] == {
        "silent": True, "protect": True, "link_preview": False, "max_rate": 5.0,
    }  # fmt: skip
    await Campaigns(fast_app.db).start(cid, now=datetime.now(UTC))
    began = time.monotonic()
    stats = await run_campaign(fast_app, cid)
    took = time.monotonic() - began
    assert stats.sent == 11
    sent = sb.messages(bot="shop_bot")
    assert {m["chat_id"] for m in sent} == {u.id for u in users} and len(sent) == 11
    for m in sent:
        assert m["disable_notification"] and m["protect_content"]
        assert m["link_preview_options"] == {"is_disabled": True}
    # The bot may send 1000/s here; the campaign's cap of 5/s spaces 11 sends over >= 2 s.
    # (A lower bound only: a slow machine can never make it fail.)
    assert took >= 10 / 5.0 - 0.05


async def test_defaults_send_plain_messages(fast_app: App, fast_sandbox: Any) -> None:
    sb = fast_sandbox
    await register(fast_app, sb, "shop", "shop_bot")
    await seed(fast_app, sb, "shop", "shop_bot", 2)
    cid = await create(fast_app, "shop", "Hello https://example.com")
    assert (await status(fast_app, cid))["options"] == SendOptions().as_dict()
    await Campaigns(fast_app.db).start(cid, now=datetime.now(UTC))
    await run_campaign(fast_app, cid)
    for m in sb.messages(bot="shop_bot"):
        assert not m["disable_notification"] and not m["protect_content"]
        assert m["link_preview_options"] is None


@pytest.mark.parametrize("rate", [0.0, -1.0, 1000.5])
async def test_a_rate_cap_out_of_range_is_refused(
    fast_app: App, fast_sandbox: Any, rate: float
) -> None:
    await register(fast_app, fast_sandbox, "shop", "shop_bot")
    await seed(fast_app, fast_sandbox, "shop", "shop_bot", 1)
    rec = await BotRegistry(fast_app.db, fast_app.secrets).get("shop")
    spec = CampaignSpec(bot="shop", text="hi", options=SendOptions(max_rate=rate))
    with pytest.raises(ValidationError, match="--max-rate"):
        await Campaigns(fast_app.db).validate(spec, rec, now=datetime.now(UTC))


def test_the_cap_hands_out_evenly_spaced_slots() -> None:
    clock = ManualClock()
    ctx = CampaignCtx(
        id=1, state="running", text="x", parse_mode="plain", media_kind=None, media_path=None,
        file_id=None, buttons=(), paid=False, options=SendOptions(max_rate=4.0),
    )  # fmt: skip
    now = clock.monotonic()
    assert [ctx.cap_wait(now) for _ in range(4)] == [0.0, 0.25, 0.5, 0.75]
    # After a quiet spell the cap does not bank sends for a burst.
    assert ctx.cap_wait(now + 10.0) == 0.0 and ctx.cap_wait(now + 10.0) == 0.25
    free = CampaignCtx(
        id=2, state="running", text="x", parse_mode="plain", media_kind=None, media_path=None,
        file_id=None, buttons=(), paid=False,
    )  # fmt: skip
    assert [free.cap_wait(now) for _ in range(3)] == [0.0, 0.0, 0.0]
