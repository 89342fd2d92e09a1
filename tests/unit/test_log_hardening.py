"""Logging side doors: exception objects as messages, broken %-args, JSON escaping, threads."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog

from botdesk.log import REDACTOR, configure_logging, get_logger
from botdesk.secrets import SecretStore

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1"
URL = f"https://api.telegram.org/bot{TOKEN}/sendMessage"

Capture = Callable[[str], io.StringIO]


@pytest.fixture
def capture() -> Iterator[Capture]:
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


def test_exception_object_as_the_message(capture: Capture) -> None:
    stream = capture("console")
    logging.getLogger("lib").error(ConnectionError(f"lost {URL}"))
    get_logger("app").error(ConnectionError(f"lost {URL}"))  # type: ignore[arg-type]
    out = stream.getvalue()
    assert out.count("lost https://api.telegram.org/bot***/sendMessage") == 2
    assert TOKEN not in out


def test_broken_format_arguments_do_not_dump_raw_args(
    capture: Capture, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = capture("console")
    logging.getLogger("lib").warning("retry %d of %d", URL)  # a bug in someone's call
    out = stream.getvalue() + capsys.readouterr().err
    assert "unformattable log arguments" in out
    assert "--- Logging error ---" not in out
    assert TOKEN not in out


def test_json_escaped_secret_is_hidden(capture: Capture) -> None:
    odd = 'pa"ss\\word-with-quote'
    REDACTOR.add(odd)
    stream = capture("json")
    get_logger("x").info("login", detail={"password": odd}, text=f"pw={odd}")
    (line,) = stream.getvalue().splitlines()
    assert odd not in line and json.dumps(odd)[1:-1] not in line
    event = json.loads(line)
    assert event["detail"] == {"password": "***"} and event["text"] == "pw=***"


def test_exc_info_given_as_an_exception_object(capture: Capture) -> None:
    stream = capture("json")
    try:
        raise TimeoutError(f"no answer from {URL}")
    except TimeoutError as exc:
        caught = exc
    get_logger("x").warning("later", exc_info=caught)  # outside the except block
    event = json.loads(stream.getvalue())
    assert (
        "TimeoutError: no answer from https://api.telegram.org/bot***/sendMessage"
        in (event["exception"])
    )


def test_store_registration_then_logging_from_threads(tmp_path: Path, capture: Capture) -> None:
    stream = capture("json")
    store = SecretStore.open(tmp_path, env={}, keyring_backend=None, register=REDACTOR.add)
    values = [f"threaded-secret-{i:03d}-x" for i in range(40)]

    def worker(i: int) -> None:
        store.set(f"s{i}", values[i])
        get_logger("worker").info("stored", value=values[i], echo=f"v={values[i]}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(values))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    out = stream.getvalue()
    assert len(out.splitlines()) == len(values)
    for value in values:
        assert value not in out
    master = (tmp_path / "master.key").read_text().strip()
    get_logger("x").error("oops", key=master)
    assert master not in stream.getvalue()
