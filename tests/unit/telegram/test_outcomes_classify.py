"""classify_exception on library exceptions built the way aiogram/aiohttp raise them; redaction."""

from __future__ import annotations

from aiogram.exceptions import (
    ClientDecodeError,
    RestartingTelegram,
    TelegramNetworkError,
    TelegramRetryAfter,
)
from aiogram.methods import SendMessage
from aiohttp import (
    ClientOSError,
    ConnectionTimeoutError,
    ServerDisconnectedError,
    SocketTimeoutError,
)
from hypothesis import given
from hypothesis import strategies as st

from botdesk.telegram.outcomes import Outcome, classify_exception, redact
from botdesk.telegram.session import HTTP_STATUS_ATTR

TOKEN = "123456:AAbbCCddEEffGGhhIIjjKKllMMnnOOppQQr"
METHOD = SendMessage(chat_id=1, text="x")


def _wrapped(cause: BaseException, message: str) -> TelegramNetworkError:
    try:
        try:
            raise cause
        except BaseException as e:
            raise TelegramNetworkError(method=METHOD, message=message) from e
    except TelegramNetworkError as err:
        return err


def test_connect_timeout_cause_is_connect_failed() -> None:
    exc = _wrapped(ConnectionTimeoutError("Connection timeout"), "Request timeout error")
    assert classify_exception(exc).outcome is Outcome.CONNECT_FAILED


def test_read_timeout_and_disconnects_are_unknown() -> None:
    for cause in (
        SocketTimeoutError("Timeout on reading data from socket"),
        ServerDisconnectedError(),
        ClientOSError(104, "Connection reset by peer"),
        TimeoutError(),
    ):
        assert classify_exception(_wrapped(cause, str(cause))).outcome is (
            Outcome.UNKNOWN_AFTER_SEND
        )


def test_network_error_without_cause_is_unknown() -> None:
    exc = TelegramNetworkError(method=METHOD, message="something")
    assert classify_exception(exc).outcome is Outcome.UNKNOWN_AFTER_SEND


def test_restarting_is_server_error_and_retry_after_is_float() -> None:
    assert (
        classify_exception(RestartingTelegram(method=METHOD, message="restart")).outcome
        is Outcome.SERVER_ERROR
    )
    result = classify_exception(TelegramRetryAfter(method=METHOD, message="m", retry_after=7))
    assert (result.outcome, result.retry_after) == (Outcome.RETRY_AFTER, 7.0)


def test_garbled_success_is_unknown_but_garbled_4xx_is_bad_request() -> None:
    ok = ClientDecodeError("Failed to decode object", ValueError("x"), "<html>")
    setattr(ok, HTTP_STATUS_ATTR, 200)
    assert classify_exception(ok).outcome is Outcome.UNKNOWN_AFTER_SEND
    too_big = ClientDecodeError("Failed to decode object", ValueError("x"), "<html>")
    setattr(too_big, HTTP_STATUS_ATTR, 413)
    assert classify_exception(too_big).outcome is Outcome.BAD_REQUEST


def test_descriptions_never_carry_the_token() -> None:
    url = f"http://127.0.0.1:8081/bot{TOKEN}/sendMessage"
    exc = _wrapped(ClientOSError(104, f"reset while posting {url}"), f"ClientOSError: {url}")
    result = classify_exception(exc)
    assert TOKEN not in result.description
    assert "bot<token>/sendMessage" in result.description


@given(
    bot_id=st.integers(min_value=10_000, max_value=10**12),
    secret=st.text(
        alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-",
        min_size=30,
        max_size=46,
    ),
    before=st.text(max_size=20),
    after=st.text(max_size=20),
)
def test_redact_removes_any_token(bot_id: int, secret: str, before: str, after: str) -> None:
    token = f"{bot_id}:{secret}"
    for text in (f"{before}/bot{token}/x{after}", f"{before} {token} {after}"):
        assert secret not in redact(text)
