"""Campaigns of video, albums and copies of existing messages, through the sandbox with the
real aiogram client: what each recipient received, uploads done once, Telegram's refusals."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from tests.e2e import test_campaign_delivery as delivery
from tests.e2e.campaign_support import create, seed, status
from tests.e2e.support import app_on, register

from botdesk.app import App
from botdesk.bots import BotRegistry
from botdesk.campaigns import Campaigns, CampaignSpec
from botdesk.errors import TemplateError, ValidationError
from botdesk.media import MediaItem
from botdesk.runtime.foreground import run_campaign
from botdesk.store.models import Delivery
from botdesk.telegram.gateway import bot_session

fast_app = delivery.fast_app
fast_sandbox = delivery.fast_sandbox


@pytest.fixture
async def both_app(backend: tuple[str, str | None], home: Path) -> AsyncIterator[App]:
    """Both backends (conftest's ``backend``): an album's row writes its message_ids beside
    the ledger's hot path."""
    (home / "botdesk.toml").write_text(delivery.FAST)
    async with app_on(home, *backend) as a:
        yield a


PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def _file(tmp: Path, name: str, data: bytes = b"\x00\x00\x00\x18ftypmp42" + b"x" * 64) -> Path:
    path = tmp / name
    path.write_bytes(data)
    return path


async def _rows(app: App, cid: int) -> list[Any]:
    async with app.db.read() as conn:
        return list((await conn.execute(select(Delivery).where(Delivery.campaign_id == cid))).all())


async def test_a_video_campaign_uploads_once_then_sends_by_file_id(
    fast_app: App, fast_sandbox: Any, tmp_path: Path
) -> None:
    sb = fast_sandbox
    await register(fast_app, sb, "shop", "shop_bot")
    users = await seed(fast_app, sb, "shop", "shop_bot", 5)
    video = _file(tmp_path, "clip.mp4")
    cid = await create(fast_app, "shop", "New <b>clip</b>", parse_mode="html", video=video)
    assert (await Campaigns(fast_app.db).get(cid)).media_kind == "video"
    stats = await run_campaign(fast_app, cid)
    assert stats.sent == 5
    sent = sb.messages(bot="shop_bot")
    assert sorted(m["chat_id"] for m in sent) == sorted(u.id for u in users)
    assert {m["method"] for m in sent} == {"sendVideo"} and {m["media"] for m in sent} == {"video"}
    assert {m["caption"] for m in sent} == {"New clip"}
    assert [u["kind"] for u in sb.uploads()] == ["video"]
    assert {m["file_id"] for m in sent} == {sb.uploads()[0]["file_id"]}


async def test_an_album_is_uploaded_once_and_every_row_keeps_its_message_ids(
    both_app: App, fast_sandbox: Any, tmp_path: Path
) -> None:
    fast_app = both_app
    sb = fast_sandbox
    info = await register(fast_app, sb, "shop", "shop_bot")
    users = await seed(fast_app, sb, "shop", "shop_bot", 6)
    album = [
        MediaItem("photo", _file(tmp_path, "a.png", PNG)),
        MediaItem("video", _file(tmp_path, "b.mp4")),
        MediaItem("photo", _file(tmp_path, "c.png", PNG)),
    ]
    cid = await create(fast_app, "shop", "Our spring album", album=album)
    stats = await run_campaign(fast_app, cid)
    assert stats.sent == 6
    assert [u["kind"] for u in sb.uploads()] == ["photo", "video", "photo"]
    file_ids = [u["file_id"] for u in sb.uploads()]
    rows = {r.chat_id: r for r in await _rows(fast_app, cid)}
    for u in users:
        got = sb.messages(bot="shop_bot", chat_id=u.id)
        assert [m["method"] for m in got] == ["sendMediaGroup"] * 3
        assert len({m["media_group_id"] for m in got}) == 1
        assert [m["file_id"] for m in got] == file_ids  # by file_id after the first upload
        assert [m["caption"] for m in got] == ["Our spring album", None, None]
        row = rows[u.id]
        assert row.state == "sent" and row.message_ids == [m["message_id"] for m in got]
        assert row.message_id == got[0]["message_id"]
    # An edit of an album is refused; a recall deletes every message of every album, also
    # where one of its messages is already gone (deleted meanwhile).
    from tests.e2e.action_support import act

    from botdesk.campaign_actions import ActionSpec, CampaignActions
    from botdesk.errors import DeliveryError

    with pytest.raises(DeliveryError, match="is an album: botdesk does not edit"):
        await CampaignActions(fast_app.db).plan(ActionSpec(cid, "edit", text="new"))
    first = sb.messages(bot="shop_bot", chat_id=users[0].id)[1]
    async with bot_session(info.token, api_base=sb.base_url) as bot:
        assert await bot.delete_message(users[0].id, first["message_id"])
    st = await act(fast_app, ActionSpec(campaign_id=cid, kind="recall"))
    assert st["recalled"] == 6 and st["failed"] == 0
    assert all(m["deleted"] for m in sb.messages(bot="shop_bot"))


async def test_a_copy_keeps_formatting_and_buttons_of_the_source(
    fast_app: App, fast_sandbox: Any
) -> None:
    sb = fast_sandbox
    info = await register(fast_app, sb, "shop", "shop_bot")
    users = await seed(fast_app, sb, "shop", "shop_bot", 4)
    # The source: a formatted message with a button, in the bot's chat with the first user.
    async with bot_session(info.token, api_base=sb.base_url) as bot:
        from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

        kb = InlineKeyboardMarkup(
            inline_keyboard=[[InlineKeyboardButton(text="Shop", url="https://example.com")]]
        )
        src = await bot.send_message(
            users[0].id, "<b>Sale</b> today", parse_mode="HTML", reply_markup=kb
        )
    before = len(sb.messages(bot="shop_bot"))
    cid = await create(fast_app, "shop", "", copy_from=f"{users[0].id}:{src.message_id}")
    assert (await run_campaign(fast_app, cid)).sent == 4
    copies = sb.messages(bot="shop_bot")[before:]
    assert {m["method"] for m in copies} == {"copyMessage"}
    assert sorted(m["chat_id"] for m in copies) == sorted(u.id for u in users)
    for m in copies:
        assert m["text"] == "Sale today"
        assert m["entities"] == [{"type": "bold", "offset": 0, "length": 4}]
        assert m["reply_markup"]["inline_keyboard"][0][0]["url"] == "https://example.com"
    # A user's own message to the bot, with campaign buttons replacing the (absent) keyboard.
    said = await sb.user_send(users[1].id, "shop_bot", "Forward this tip")
    cid2 = await create(
        fast_app,
        "shop",
        "",
        copy_from=f"{users[1].id}:{said['message_id']}",
        buttons=[("More", "https://example.com/more")],
    )
    assert (await run_campaign(fast_app, cid2)).sent == 4
    last = sb.messages(bot="shop_bot")[-4:]
    assert {m["text"] for m in last} == {"Forward this tip"}
    assert {m["reply_markup"]["inline_keyboard"][0][0]["text"] for m in last} == {"More"}
    # A copy is recalled message by message; an edit is refused (text or caption unknown).
    from tests.e2e.action_support import act

    from botdesk.campaign_actions import ActionSpec, CampaignActions
    from botdesk.errors import DeliveryError

    with pytest.raises(DeliveryError, match="is a copy of another message"):
        await CampaignActions(fast_app.db).plan(ActionSpec(cid2, "edit", text="new"))
    st = await act(fast_app, ActionSpec(campaign_id=cid2, kind="recall"))
    assert st["recalled"] == 4
    assert all(m["deleted"] for m in sb.messages(bot="shop_bot")[-4:])


async def test_a_missing_source_stops_the_campaign_after_one_row(
    fast_app: App, fast_sandbox: Any
) -> None:
    sb = fast_sandbox
    await register(fast_app, sb, "shop", "shop_bot")
    users = await seed(fast_app, sb, "shop", "shop_bot", 40)
    cid = await create(fast_app, "shop", "", copy_from=f"{users[0].id}:9999")
    await run_campaign(fast_app, cid)
    st = await status(fast_app, cid)
    assert st["state"] == "cancelled"
    assert st["failed"] == 1 and st["cancelled"] == 39 and st["sent"] == 0
    assert sb.messages(bot="shop_bot") == []
    report = await Campaigns(fast_app.db).report(cid)
    reasons = {r["state"]: r["reason"] for r in report["reasons"]}
    assert "message to copy not found" in reasons["failed"]
    assert "campaign stopped" in reasons["cancelled"]
    assert "cannot be copied" in reasons["cancelled"]


async def test_an_unknown_source_chat_stops_the_campaign_before_any_copy(
    fast_app: App, fast_sandbox: Any
) -> None:
    sb = fast_sandbox
    await register(fast_app, sb, "shop", "shop_bot")
    await seed(fast_app, sb, "shop", "shop_bot", 10)
    cid = await create(fast_app, "shop", "", copy_from="-1001234567890:5")
    await run_campaign(fast_app, cid)
    st = await status(fast_app, cid)
    assert st["state"] == "cancelled" and st["cancelled"] == 10 and st["suppressed"] == 0
    report = await Campaigns(fast_app.db).report(cid)
    assert "source chat -1001234567890 not found" in report["reasons"][0]["reason"]
    assert sb.messages(bot="shop_bot") == []


async def test_caption_too_long_is_refused_before_anything_is_sent(
    fast_app: App, fast_sandbox: Any, tmp_path: Path
) -> None:
    sb = fast_sandbox
    await register(fast_app, sb, "shop", "shop_bot")
    await seed(fast_app, sb, "shop", "shop_bot", 3)
    rec = await BotRegistry(fast_app.db, fast_app.secrets).get("shop")
    now = datetime.now(UTC)
    video = _file(tmp_path, "clip.mp4")
    spec = CampaignSpec(bot="shop", text="x" * 1025, video=video)
    with pytest.raises(TemplateError, match=r"caption is 1025 characters.*Telegram allows 1024"):
        await Campaigns(fast_app.db).validate(spec, rec, now=now)
    album = [MediaItem("photo", _file(tmp_path, "a.png", PNG))] * 2
    spec = CampaignSpec(bot="shop", text="y" * 1100, album=album)
    with pytest.raises(TemplateError, match="caption is 1100"):
        await Campaigns(fast_app.db).validate(spec, rec, now=now)
    # the same text fits a text message (4096)
    await Campaigns(fast_app.db).validate(CampaignSpec(bot="shop", text="x" * 1025), rec, now=now)
    with pytest.raises(ValidationError, match="no --text"):
        await Campaigns(fast_app.db).validate(
            CampaignSpec(bot="shop", text="hi", copy_from="5:1"), rec, now=now
        )
    with pytest.raises(ValidationError, match="cannot carry buttons"):
        await Campaigns(fast_app.db).validate(
            CampaignSpec(bot="shop", text="hi", album=album, buttons=[("a", "https://a.io")]),
            rec,
            now=now,
        )
    with pytest.raises(ValidationError, match="give one of --video, --album, not several"):
        await Campaigns(fast_app.db).validate(
            CampaignSpec(bot="shop", text="hi", video=video, album=album), rec, now=now
        )
    assert sb.messages(bot="shop_bot") == [] and sb.uploads() == []


async def test_a_copy_of_a_post_in_a_group_the_bot_is_in(
    fast_app: App, fast_sandbox: Any, tmp_path: Path
) -> None:
    """The sandbox has no channels; a group the bot is in takes the same path (a negative
    from_chat_id, getChat of it, copyMessage), here with a photo and its caption."""
    sb = fast_sandbox
    info = await register(fast_app, sb, "shop", "shop_bot")
    users = await seed(fast_app, sb, "shop", "shop_bot", 3)
    gid = sb.add_group("News", [users[0].id], "shop_bot")
    from aiogram.types import FSInputFile

    async with bot_session(info.token, api_base=sb.base_url) as bot:
        post = await bot.send_photo(
            gid,
            FSInputFile(_file(tmp_path, "p.png", PNG)),
            caption="<i>Post</i>",
            parse_mode="HTML",
        )
    cid = await create(fast_app, "shop", "", copy_from=f"{gid}:{post.message_id}")
    assert (await run_campaign(fast_app, cid)).sent == 3
    copies = [m for m in sb.messages(bot="shop_bot") if m["method"] == "copyMessage"]
    assert sorted(m["chat_id"] for m in copies) == sorted(u.id for u in users)
    for m in copies:
        assert m["media"] == "photo" and m["caption"] == "Post"
        assert m["entities"] == [{"type": "italic", "offset": 0, "length": 4}]
    assert len(sb.uploads()) == 1  # the post's upload; copies upload nothing
