"""Redactor rules: token shapes, Bot API URLs, API keys, HTTP credentials, known values."""

from __future__ import annotations

import json
import threading
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from botdesk.redact import REDACTOR, Redactor, format_exception_redacted

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1"
GOOGLE = "AIzaSyA1234567890abcdefghijklmnopqrstuv"
OPENAI = "sk-proj-abcdefghijklmnop1234567890"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"token={TOKEN}", TOKEN),
        (f"https://api.telegram.org/bot{TOKEN}/getMe", TOKEN),
        (f"https://api.telegram.org/file/bot{TOKEN}/photos/1.jpg", TOKEN),
        ("POST /bot42:short-and-odd/sendMessage HTTP/1.1", "42:short-and-odd"),
        ("GET /bot123456%3AAAHdq-short/getUpdates", "123456%3AAAHdq-short"),
        (f"gemini key {GOOGLE} rejected", GOOGLE),
        (f"provider said: invalid {OPENAI}", OPENAI),
        ("Authorization: Bearer eyJhbGciOi.JIUzI1NiJ9.abc", "eyJhbGciOi.JIUzI1NiJ9.abc"),
        ("headers={'Authorization': 'Basic dXNlcjpwYXNz'}", "dXNlcjpwYXNz"),
        ("{'x-goog-api-key': 'any-custom-key-value'}", "any-custom-key-value"),
        ("GET /v1/models?key=plainkey123&alt=json", "plainkey123"),
        ("https://h/x?access_token=tok_123456&b=1", "tok_123456"),
    ],
)
def test_patterns(text: str, secret: str) -> None:
    out = Redactor().redact(text)
    assert secret not in out
    assert "***" in out


def test_url_shape_survives_for_debugging() -> None:
    out = Redactor().redact(f"https://api.telegram.org/bot{TOKEN}/getMe?key=abcdef123&alt=json")
    assert out == "https://api.telegram.org/bot***/getMe?key=***&alt=json"


def test_ordinary_text_is_untouched() -> None:
    text = "sent 12345 messages to /bottles, key=value? no: ok; sk-short; at 10:30"
    assert Redactor().redact(text) == text


def test_registered_values_in_all_spellings() -> None:
    secret = 'pa"ss:w/rd\\1'
    r = Redactor()
    r.add(secret)
    for spelled in (secret, quote(secret, safe=""), json.dumps(secret)[1:-1], repr(secret)[1:-1]):
        assert r.redact(f"<{spelled}>") == "<***>"


def test_short_values_are_ignored_and_longest_wins() -> None:
    r = Redactor()
    r.add("abc")
    r.add("webhook-secret")
    r.add("webhook-secret-long-version")
    assert r.redact("abc") == "abc"
    assert r.redact("x webhook-secret-long-version y") == "x *** y"
    with pytest.raises(TypeError):
        r.add(None)  # type: ignore[arg-type]


def test_format_exception_redacted_covers_chain_and_notes() -> None:
    r = Redactor(["custom-db-password"])
    try:
        try:
            raise ConnectionError(f"https://api.telegram.org/bot{TOKEN}/getMe failed")
        except ConnectionError as inner:
            err = RuntimeError("login with custom-db-password refused")
            err.add_note(f"key {GOOGLE}")
            raise err from inner
    except RuntimeError as exc:
        text = format_exception_redacted(exc, redactor=r)
    assert "Traceback" in text and "The above exception" in text
    for secret in (TOKEN, GOOGLE, "custom-db-password"):
        assert secret not in text
    assert text.count("***") >= 3


def test_concurrent_add_and_redact() -> None:
    r = Redactor()
    values = [f"value-{i:04d}-secret" for i in range(200)]
    stop = threading.Event()
    failures: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            out = r.redact("value-0000-secret and " + TOKEN)
            if TOKEN in out:
                failures.append(out)

    readers = [threading.Thread(target=reader) for _ in range(3)]
    for t in readers:
        t.start()
    for v in values:
        r.add(v)
    stop.set()
    for t in readers:
        t.join(timeout=30)
    assert not failures
    assert all(r.redact(v) == "***" for v in values)


def test_process_wide_instance() -> None:
    REDACTOR.add("process-wide-secret-1")
    assert REDACTOR.redact("x process-wide-secret-1") == "x ***"


_ALNUM = st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


@given(
    bot_id=st.integers(min_value=10_000, max_value=10**12),
    secret=st.text(_ALNUM, min_size=30, max_size=46),
    prefix=st.text(max_size=20),
    suffix=st.text(max_size=20),
)
def test_any_bot_token_is_hidden(bot_id: int, secret: str, prefix: str, suffix: str) -> None:
    token = f"{bot_id}:{secret}"
    for text in (f"{prefix}{token}{suffix}", f"{prefix}/bot{token}/sendMessage{suffix}"):
        assert token not in Redactor().redact(text)


@given(value=st.text(min_size=6, max_size=40).filter(lambda v: v.strip() == v))
def test_any_registered_value_is_hidden(value: str) -> None:
    r = Redactor([value])
    assert value not in r.redact(f"before {value} after")
