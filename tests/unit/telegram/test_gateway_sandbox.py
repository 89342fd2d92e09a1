"""gateway.send against the botdesk sandbox: its Telegram-like answers and faults map right."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from botdesk.sandbox.server import Sandbox
from botdesk.sandbox.testing import running_sandbox
from botdesk.telegram.gateway import Outcome, OutgoingMessage, bot_session, get_me, send

TOKEN = "424242:" + "S" * 35
BOT = "gw_bot"


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async with running_sandbox(latency=(0.0, 0.0)) as sandbox:
        sandbox.add_bot(BOT, TOKEN)
        yield sandbox


def _text(chat: int, text: str = "hello", **kw: object) -> OutgoingMessage:
    return OutgoingMessage(chat_id=chat, text=text, parse_mode=None, **kw)  # type: ignore[arg-type]


async def test_identity_and_delivery(sb: Sandbox, tmp_path: Path) -> None:
    me = await get_me(TOKEN, api_base=sb.base_url)
    assert me.username == BOT
    (user,) = sb.add_users(1, start_bots=[BOT])
    photo = tmp_path / "p.png"
    photo.write_bytes(b"\x89PNG\r\n\x1a\nfake")
    async with bot_session(TOKEN, api_base=sb.base_url) as bot:
        text = await send(bot, OutgoingMessage(user.id, "<b>hi</b> &amp; bye", "HTML"))
        media = await send(bot, _text(user.id, "caption", photo=photo))
        again = await send(bot, _text(user.id, "same photo", photo=media.file_id))
    assert text.outcome is media.outcome is again.outcome is Outcome.SENT
    assert media.file_id
    texts = [m.get("text") or m.get("caption") for m in sb.messages(BOT, user.id)]
    assert texts == ["hi & bye", "caption", "same photo"]


async def test_unreachable_recipients(sb: Sandbox) -> None:
    blocked, deact, deleted, never = sb.add_users(4)
    for u in (blocked, deact, deleted):
        await sb.user_start(u.id, BOT)
    await sb.user_block(blocked.id, BOT)
    sb.user_deactivate(deact.id)
    sb.user_delete(deleted.id)
    async with bot_session(TOKEN, api_base=sb.base_url) as bot:
        got = {
            name: (await send(bot, _text(u))).outcome
            for name, u in (
                ("blocked", blocked.id),
                ("deact", deact.id),
                ("deleted", deleted.id),
                ("never", never.id),
                ("no group", -4_000_999_999),
            )
        }
    assert got == {
        "blocked": Outcome.BLOCKED,
        "deact": Outcome.DEACTIVATED,
        "deleted": Outcome.CHAT_GONE,
        "never": Outcome.NOT_STARTED,
        "no group": Outcome.CHAT_GONE,
    }


@pytest.mark.parametrize(
    ("faults", "outcome"),
    [
        ("5xx=1", Outcome.SERVER_ERROR),
        ("429=1", Outcome.RETRY_AFTER),
        ("reset=1", Outcome.UNKNOWN_AFTER_SEND),
    ],
)
async def test_faults(sb: Sandbox, faults: str, outcome: Outcome) -> None:
    (user,) = sb.add_users(1, start_bots=[BOT])
    sb.set_faults(faults)
    async with bot_session(TOKEN, api_base=sb.base_url) as bot:
        result = await send(bot, _text(user.id))
    assert result.outcome is outcome
    if outcome is Outcome.RETRY_AFTER:
        assert result.retry_after is not None and result.retry_after >= 1


async def test_lost_answer_is_uncertain_although_the_message_was_delivered(sb: Sandbox) -> None:
    (user,) = sb.add_users(1, start_bots=[BOT])
    sb.set_faults("stall=1,hold=5")
    async with bot_session(
        TOKEN,
        api_base=sb.base_url,
        read_timeout=0.3,
    ) as bot:
        result = await send(bot, _text(user.id, "did it arrive?"))
    assert result.outcome is Outcome.UNKNOWN_AFTER_SEND
    # This is why it must never be retried automatically: the user already has it.
    assert [m["text"] for m in sb.messages(BOT, user.id)] == ["did it arrive?"]


async def test_revoked_token_is_unauthorized(sb: Sandbox) -> None:
    (user,) = sb.add_users(1, start_bots=[BOT])
    sb.revoke_token(BOT)
    async with bot_session(TOKEN, api_base=sb.base_url) as bot:
        result = await send(bot, _text(user.id))
    assert result.outcome is Outcome.UNAUTHORIZED
    assert TOKEN not in result.description
