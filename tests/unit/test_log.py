"""configure_logging: structlog and stdlib output, console and json, never shows secrets."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator

import pytest
import structlog

from botdesk.errors import ConfigError
from botdesk.log import REDACTOR, configure_logging, format_exception_redacted, get_logger

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1"
URL = f"https://api.telegram.org/bot{TOKEN}/getMe"
GOOGLE = "AIzaSyA1234567890abcdefghijklmnopqrstuv"
KNOWN = "store-held-password-81"  # shaped like nothing: only registration can hide it
SECRETS = (TOKEN, GOOGLE, KNOWN, TOKEN.split(":")[1])

Capture = Callable[[str], io.StringIO]


@pytest.fixture
def capture() -> Iterator[Capture]:
    REDACTOR.add(KNOWN)

    def make(fmt: str) -> io.StringIO:
        stream = io.StringIO()
        configure_logging(level="DEBUG", fmt=fmt, stream=stream)  # type: ignore[arg-type]
        return stream

    yield make
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_botdesk_handler", False)]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(logging.WARNING)
    structlog.reset_defaults()


def assert_clean(output: str, *, masks: int = 1) -> None:
    for secret in SECRETS:
        assert secret not in output, f"{secret!r} leaked into:\n{output}"
    assert output.count("***") >= masks, output


def failing_call() -> None:
    try:
        raise ConnectionError(f"cannot reach {URL}")
    except ConnectionError as exc:
        raise RuntimeError(f"login {KNOWN} with key {GOOGLE} failed") from exc


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_structlog_error_with_traceback(capture: Capture, fmt: str) -> None:
    stream = capture(fmt)
    log = get_logger("botdesk.test")
    try:
        failing_call()
    except RuntimeError as exc:
        log.exception("bot check failed", url=URL, token=TOKEN, error=exc, nested={"k": [GOOGLE]})
    out = stream.getvalue()
    assert "bot check failed" in out and "Traceback" in out and "ConnectionError" in out
    assert_clean(out, masks=6)
    if fmt == "json":
        (line,) = out.splitlines()
        event = json.loads(line)
        assert event["url"] == "https://api.telegram.org/bot***/getMe"
        assert event["token"] == "***"
        assert event["level"] == "error" and event["logger"] == "botdesk.test"
        assert "RuntimeError: login *** with key *** failed" in event["exception"]


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_stdlib_logging_with_args_and_exc_info(capture: Capture, fmt: str) -> None:
    stream = capture(fmt)
    lib = logging.getLogger("somelib.http")
    lib.info("POST %s -> %d", URL.replace("getMe", "sendMessage"), 502)
    try:
        failing_call()
    except RuntimeError:
        lib.error("request to %s failed", URL, exc_info=True)
    lib.warning("stack", stack_info=True, extra={"key_used": GOOGLE})
    out = stream.getvalue()
    assert "POST https://api.telegram.org/bot***/sendMessage -> 502" in out
    assert "Traceback" in out
    assert_clean(out, masks=4)


def test_other_handlers_receive_redacted_records(
    capture: Capture, caplog: pytest.LogCaptureFixture
) -> None:
    capture("console")
    caplog.set_level(logging.INFO)
    try:
        failing_call()
    except RuntimeError:
        logging.getLogger("x").exception("calling %s", URL)
        get_logger("y").exception("structlog side", url=URL)
    assert "calling https://api.telegram.org/bot***/getMe" in caplog.text
    assert "structlog side" in caplog.text
    assert_clean(caplog.text, masks=3)


def test_registered_values_are_hidden_even_without_a_pattern(capture: Capture) -> None:
    stream = capture("json")
    get_logger("z").info("db connect", dsn=f"postgresql://botdesk:{KNOWN}@db/botdesk")
    assert "postgresql://botdesk:***@db/botdesk" in stream.getvalue()
    assert_clean(stream.getvalue())


def test_reconfiguring_is_idempotent(capture: Capture) -> None:
    first = capture("console")
    second = capture("json")
    get_logger("botdesk").warning("once", token=TOKEN)
    assert first.getvalue() == ""
    lines = second.getvalue().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["token"] == "***"
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_botdesk_handler", False)]
    assert len(ours) == 1


def test_level_is_applied(capture: Capture) -> None:
    stream = io.StringIO()
    configure_logging(level="warning", stream=stream)
    get_logger("a").info("hidden")
    logging.getLogger("b").debug("hidden too")
    get_logger("a").warning("shown")
    assert "hidden" not in stream.getvalue() and "shown" in stream.getvalue()


def test_bad_level_and_format_are_config_errors(capture: Capture) -> None:
    with pytest.raises(ConfigError, match="unknown log level 'LOUD'"):
        configure_logging(level="LOUD")
    with pytest.raises(ConfigError, match="unknown log format"):
        configure_logging(fmt="xml")  # type: ignore[arg-type]


def test_default_stream_follows_sys_stderr(
    capture: Capture, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(level="INFO")
    get_logger("e").error("to stderr", url=URL)
    err = capsys.readouterr().err
    assert "to stderr" in err
    assert_clean(err)


def test_format_exception_redacted_uses_the_process_redactor() -> None:
    REDACTOR.add(KNOWN)
    try:
        failing_call()
    except RuntimeError as exc:
        text = format_exception_redacted(exc)
    assert "ConnectionError" in text
    assert_clean(text, masks=3)
