"""kill -9 during an album campaign, then `campaign run` again: no chat gets the album twice,
the files are uploaded once (the resumed run sends the stored file_ids), every row accounted
for."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from tests.e2e import test_campaign_crash as crash
from tests.e2e.campaign_support import accounted, create, seed, status
from tests.e2e.support import register
from tests.e2e.test_campaign_media import PNG

from botdesk.app import App
from botdesk.media import MediaItem
from botdesk.store.models import Campaign, Delivery

crash_app = crash.crash_app
limited_sandbox = crash.limited_sandbox
RECIPIENTS = 60


async def _uploaded(app: App, cid: int) -> bool:
    async with app.db.read() as conn:
        items = (
            await conn.execute(select(Campaign.media_items).where(Campaign.id == cid))
        ).scalar()
    return bool(items) and all(i["file_id"] for i in items)


@pytest.mark.slow
async def test_a_resumed_album_campaign_does_not_double(
    crash_app: App, limited_sandbox: Any, home: Path, tmp_path: Path
) -> None:
    app, sb = crash_app, limited_sandbox
    await register(app, sb, "shop", "shop_bot")
    users = await seed(app, sb, "shop", "shop_bot", RECIPIENTS)
    (tmp_path / "a.png").write_bytes(PNG)
    (tmp_path / "b.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"v" * 64)
    album = [MediaItem("photo", tmp_path / "a.png"), MediaItem("video", tmp_path / "b.mp4")]
    cid = await create(app, "shop", "album news", album=album)
    first = await crash.CampaignRun(home, cid, 0).start()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        # Kill once the upload is stored and some albums are out, well before the end.
        while not (await _uploaded(app, cid) and len(sb.messages(bot="shop_bot")) >= 10):
            assert first.running and loop.time() < deadline, first.output
            await asyncio.sleep(0.01)
        await first.kill()
        assert len(sb.messages(bot="shop_bot")) < 2 * RECIPIENTS, "finished before the kill"
        await crash._until_lease_expires(app)
        second = await crash.CampaignRun(home, cid, 1).start()
        try:
            assert await second.wait(within=60) == 0, second.output
        finally:
            await second.close()
    finally:
        await first.close()
    st = await status(app, cid)
    assert st["state"] == "completed" and accounted(st) == RECIPIENTS
    assert st["sent"] + st["uncertain"] == RECIPIENTS
    per_chat = Counter(m["chat_id"] for m in sb.messages(bot="shop_bot"))
    groups = Counter((m["chat_id"], m["media_group_id"]) for m in sb.messages(bot="shop_bot"))
    assert set(groups.values()) == {2}  # whole albums only
    assert all(n == 2 for n in per_chat.values()), "a chat got the album twice"
    assert [u["kind"] for u in sb.uploads()] == ["photo", "video"]  # uploaded once
    async with app.db.read() as conn:
        rows = (await conn.execute(select(Delivery).where(Delivery.campaign_id == cid))).all()
    for r in rows:
        if r.state == "sent":
            assert r.message_ids is not None and len(r.message_ids) == 2
            assert per_chat[r.chat_id] == 2
    # every uncertain row is an album that may or may not have left; none was sent twice
    assert {u.id for u in users} >= set(per_chat)
