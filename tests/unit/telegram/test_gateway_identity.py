"""get_me and make_bot: identity, token errors, unreachable servers; no token in any message."""

from __future__ import annotations

import pytest
from tg_fake_api import TOKEN, FakeBotApi

from botdesk.errors import ConfigError, InvalidToken, TelegramUnreachable, UserError
from botdesk.telegram.gateway import BotIdentity, bot_session, get_me, make_bot
from botdesk.telegram.session import SplitTimeoutSession


async def test_get_me_returns_identity(fake_api: FakeBotApi) -> None:
    me = await get_me(TOKEN, api_base=fake_api.base, connect_timeout=0.5, read_timeout=2)
    assert me == BotIdentity(id=123456, username="desk_bot", first_name="Desk")
    assert fake_api.requests[-1][1] == "getMe"


async def test_rejected_token_is_invalid_token_without_the_token(fake_api: FakeBotApi) -> None:
    wrong = "999999:ZZyyXXwwVVuuTTssRRqqPPooNNmmLLkkJJi"
    with pytest.raises(InvalidToken) as info:
        await get_me(wrong, api_base=fake_api.base, connect_timeout=0.5, read_timeout=2)
    assert isinstance(info.value, UserError)
    assert wrong not in str(info.value)
    assert "ZZyy" not in str(info.value)


@pytest.mark.parametrize("token", ["nocolon", "abc:def", "123:", "12 3:abc"])
async def test_malformed_token_is_invalid_token_before_any_request(
    fake_api: FakeBotApi, token: str
) -> None:
    with pytest.raises(InvalidToken) as info:
        await get_me(token, api_base=fake_api.base)
    assert token not in str(info.value)
    assert fake_api.requests == []


async def test_unreachable_server(closed_port: int) -> None:
    with pytest.raises(TelegramUnreachable) as info:
        await get_me(TOKEN, api_base=f"http://127.0.0.1:{closed_port}", connect_timeout=0.5)
    message = str(info.value)
    assert TOKEN not in message
    assert f"127.0.0.1:{closed_port}" in message
    assert "\n" not in message


async def test_make_bot_session_has_split_timeouts() -> None:
    bot = make_bot(TOKEN, api_base="http://127.0.0.1:1", connect_timeout=2.0, read_timeout=7.0)
    try:
        session = bot.session
        assert isinstance(session, SplitTimeoutSession)
        timeout = session.client_timeout(None)
        assert (timeout.total, timeout.sock_connect, timeout.sock_read) == (None, 2.0, 7.0)
        # Long polling passes its own request timeout: it bounds the read, not the connect.
        polling = session.client_timeout(40)
        assert (polling.sock_connect, polling.sock_read) == (2.0, 40.0)
        assert session.api.api_url(TOKEN, "getMe") == f"http://127.0.0.1:1/bot{TOKEN}/getMe"
        assert session._connector_init["limit"] == 256
    finally:
        await bot.session.close()


async def test_bot_session_closes_on_exit(fake_api: FakeBotApi) -> None:
    async with bot_session(TOKEN, api_base=fake_api.base) as bot:
        await bot.get_me()
        inner = bot.session
        assert isinstance(inner, SplitTimeoutSession)
        aio = inner._session
    assert aio is not None and aio.closed


def test_proxy_without_aiohttp_socks_is_a_config_error() -> None:
    try:
        import aiohttp_socks  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="aiohttp-socks"):
            make_bot(TOKEN, proxy="socks5://127.0.0.1:1080")
    else:
        pytest.skip("aiohttp-socks is installed")
