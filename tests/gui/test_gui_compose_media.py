"""The composer's message kinds and send options against the sandbox: a video, an album and a
copy of an existing message composed, previewed and sent (what each subscriber received: the
kind, the caption, the silent and protected flags); a caption too long shown inline with
nothing sent; the options reaching the stored campaign and its detail."""

from __future__ import annotations

import struct
from pathlib import Path

from tests.gui.conftest import BOT, USERNAME, console_on, until

from botdesk.campaigns import SendOptions
from botdesk.gui.views.campaigns import CampaignsView

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def mp4(seconds: int) -> bytes:
    """The smallest MP4 the preview reads a duration from: ftyp, then moov with its mvhd."""
    ftyp = struct.pack(">I4s4sI", 16, b"ftyp", b"mp42", 0)
    mvhd_body = struct.pack(">IIIII", 0, 0, 0, 1000, seconds * 1000) + b"\0" * 80
    mvhd = struct.pack(">I4s", 8 + len(mvhd_body), b"mvhd") + mvhd_body
    return ftyp + struct.pack(">I4s", 8 + len(mvhd), b"moov") + mvhd


def choose(c, kind: str) -> None:
    c.media_kind.setCurrentIndex(c.media_kind.findData(kind))


async def sent(view, sb, method: str) -> list[dict]:
    """Send what is composed; once it completed, the messages it sent (by ``method``: the
    bot's welcomes go out meanwhile)."""
    before = len(sb.messages(bot=USERNAME))
    d = view.detail
    old = d.campaign_id
    view.composer.send_btn.click()
    await until(lambda: d.campaign_id not in (None, old), what="the new campaign's detail")
    services = view.ctx.services

    async def completed() -> bool:
        return (await services.campaign_status(d.campaign_id))["state"] == "completed"

    await until(completed, within=20, what="completed")
    d.refresh()  # now, not at the screen's next one-second turn
    await until(lambda: d.content.text(), what="content line")
    return [m for m in sb.messages(bot=USERNAME)[before:] if m["method"] == method]


def test_video_album_and_copy_campaigns_reach_subscribers(
    drive, home: Path, tmp_path: Path
) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(mp4(72))
    (tmp_path / "a.png").write_bytes(PNG)
    (tmp_path / "c.png").write_bytes(PNG)

    async def scenario() -> None:
        async with console_on(home, users=3) as (window, sb, people):
            ids = sorted(u.id for u in people)
            view = window.open_screen(CampaignsView)
            c = view.composer
            await until(lambda: c.bot.currentText() == BOT and c.people, what="bots and people")

            # A video with a caption, silent: the placeholder names it and its length.
            choose(c, "video")
            c.media_path.setText(str(clip))
            c.parse_mode.setCurrentText("html")
            c.text.setPlainText("New <b>clip</b>")
            c.silent.setChecked(True)
            html = c.preview.toHtml()
            assert "clip.mp4" in html and "1:12" in html and "silent" in html
            got = await sent(view, sb, "sendVideo")
            assert sorted(m["chat_id"] for m in got) == ids
            assert {(m["media"], m["caption"], m["disable_notification"]) for m in got} == {
                ("video", "New clip", True)
            }
            assert "video" in view.detail.content.text()
            assert "silent" in view.detail.content.text()

            # An album of three, reordered (c.png moved up), protected, not silent.
            view.compose()
            choose(c, "album")
            for name in ("a.png", "clip.mp4", "c.png"):
                c.add_album_file(str(tmp_path / name))
            c.album_up.click()  # the last one (current) goes up one
            assert [i.path.name for i in c.album_items()] == ["a.png", "c.png", "clip.mp4"]
            assert [i.kind for i in c.album_items()] == ["photo", "photo", "video"]
            c.text.setPlainText("Spring album")
            c.silent.setChecked(False)
            c.protect.setChecked(True)
            html = c.preview.toHtml()
            assert html.count("<img") == 2 and "clip.mp4" in html and "protected" in html
            got = await sent(view, sb, "sendMediaGroup")
            assert len(got) == 9
            for chat in ids:
                mine = [m for m in got if m["chat_id"] == chat]
                assert [m["method"] for m in mine] == ["sendMediaGroup"] * 3
                assert [m["media"] for m in mine] == ["photo", "photo", "video"]
                assert [m["caption"] for m in mine] == ["Spring album", None, None]
                assert {(m["protect_content"], m["disable_notification"]) for m in mine} == {
                    (True, False)
                }
            assert "album" in view.detail.content.text()
            assert "protected content" in view.detail.content.text()

            # A copy of a message a subscriber sent the bot: a card, no text of ours.
            said = await sb.user_send(people[0].id, USERNAME, "Tip of the day")
            view.compose()
            choose(c, "copy")
            assert not c.text.isEnabled()
            c.copy_from.setText(f"{people[0].id}:{said['message_id']}")
            c.protect.setChecked(False)
            c.silent.setChecked(True)
            html = c.preview.toPlainText()
            assert f"Copy of message {said['message_id']} from chat {people[0].id}" in html
            assert "sent exactly as it is" in html
            copies = await sent(view, sb, "copyMessage")
            assert sorted(m["chat_id"] for m in copies) == ids
            assert {(m["text"], m["disable_notification"]) for m in copies} == {
                ("Tip of the day", True)
            }
            assert "copy" in view.detail.content.text()

    drive(scenario())


def test_caption_too_long_inline_and_options_reach_the_campaign(
    drive, home: Path, tmp_path: Path
) -> None:
    photo = tmp_path / "p.png"
    photo.write_bytes(PNG)

    async def scenario() -> None:
        async with console_on(home, users=2) as (window, sb, _people):
            view = window.open_screen(CampaignsView)
            c = view.composer
            await until(lambda: c.bot.currentText() == BOT, what="bots")
            services = window.ctx.services

            # A caption over Telegram's 1024: Campaigns.validate's line, inline; nothing sent.
            choose(c, "photo")
            c.media_path.setText(str(photo))
            c.text.setPlainText("x" * 1100)
            n = view.validated
            await until(lambda: view.validated > n and c.error.isVisible(), what="caption error")
            assert "caption is 1100 characters" in c.error.text() and "1024" in c.error.text()
            assert "<img" in c.preview.toHtml()  # the photo's thumbnail
            n = view.validated
            c.send_btn.click()
            await until(lambda: view.validated > n, what="refused")
            await window.ctx.bridge.drain()
            assert await services.campaign_list() == []
            assert not [m for m in sb.messages(bot=USERNAME) if m["media"]]

            # One album file is not an album: the service's rule, inline.
            choose(c, "album")
            c.text.setPlainText("short")
            c.add_album_file(str(photo))
            n = view.validated
            await until(lambda: view.validated > n and c.error.isVisible(), what="album error")
            assert "2-10 items" in c.error.text()

            # The options reach the stored campaign and its detail.
            choose(c, "text")
            c.text.setPlainText("See https://example.com")
            c.silent.setChecked(True)
            c.protect.setChecked(True)
            c.link_preview.setChecked(False)
            c.max_rate.setValue(5)
            assert "protected content" in c.preview.toPlainText()
            assert "at most 5 msg/s" in c.preview.toPlainText()
            c.create_btn.click()
            await until(lambda: view.stack.currentWidget() is view.detail, what="draft")
            [info] = await services.campaign_list()
            assert info.state == "draft" and info.media_kind is None
            assert info.options == SendOptions(
                silent=True, protect=True, link_preview=False, max_rate=5.0
            )
            await until(lambda: view.detail.content.text(), what="content line")
            line = view.detail.content.text()
            assert "silent" in line and "link preview off" in line and "at most 5 msg/s" in line
            assert not [m for m in sb.messages(bot=USERNAME) if "example" in (m["text"] or "")]

    drive(scenario())
