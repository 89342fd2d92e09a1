"""The foundation through the CLI: configuration errors, bots, secrets, doctor, db."""

from __future__ import annotations

import asyncio
import io
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from botdesk.cli.main import main
from botdesk.sandbox.testing import running_sandbox


@pytest.fixture
async def sandbox() -> AsyncIterator[Any]:
    async with running_sandbox(seed=11) as sb:
        yield sb


def _all_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())


def run(args: list[str], *, stdin: str | None = None) -> int:
    if stdin is not None:
        old = sys.stdin
        sys.stdin = io.StringIO(stdin)
        try:
            return main(args)
        finally:
            sys.stdin = old
    return main(args)


async def arun(args: list[str], *, stdin: str | None = None) -> int:
    return await asyncio.to_thread(run, args, stdin=stdin)


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        ("[network\n", "not valid TOML"),
        ("[network]\nconect_timeout = 3\n", "key 'network.conect_timeout'): unknown key"),
        ("[network]\nread_timeout = 'soon'\n", "key 'network.read_timeout'"),
        ("[network]\nread_timeout = -1\n", "greater than 0"),
        ("[log]\nformat = 'xml'\n", "key 'log.format'"),
    ],
)
def test_bad_configuration_is_one_line_and_exit_2(
    home: Path, capsys: pytest.CaptureFixture[str], toml: str, needle: str
) -> None:
    (home / "botdesk.toml").write_text(toml)
    before = sorted(p.name for p in home.iterdir())
    assert run(["--home", str(home), "bot", "list"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0] and str(home / "botdesk.toml") in err[0]
    assert sorted(p.name for p in home.iterdir()) == before  # nothing written


def test_bad_environment_variable_names_the_variable(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOTDESK_DELIVERY__RATE", "fast")
    assert run(["--home", str(home), "config", "show"]) == 2
    assert "environment BOTDESK_DELIVERY__RATE" in capsys.readouterr().err


async def test_bot_add_list_remove_and_doctor(
    home: Path, sandbox: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    info = sandbox.add_bot("shop_bot")
    h = ["--home", str(home)]
    assert (
        await arun(
            [*h, "bot", "add", "shop", "--token-stdin", "--api-base", sandbox.base_url],
            stdin=info.token + "\n",
        )
        == 0
    )
    assert "@shop_bot" in capsys.readouterr().out
    assert await arun([*h, "bot", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(b["name"], b["username"], b["api_base"]) for b in listed] == [
        ("shop", "shop_bot", sandbox.base_url)
    ]
    # The token is in the secret store only: not in the database file, not in the TOML.
    raw = await asyncio.to_thread(_all_bytes, home)
    assert info.token.encode() not in raw
    assert await arun([*h, "doctor", "--json"]) == 0
    checks = {c["check"]: c for c in json.loads(capsys.readouterr().out)}
    assert checks["bot shop"]["verdict"] == "ok"
    assert checks["secret store"]["verdict"] == "ok" and "0600" in checks["secret store"]["detail"]
    assert checks["migrations"]["verdict"] == "ok"
    sandbox.revoke_token("shop_bot")
    assert await arun([*h, "doctor"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and info.token not in out
    assert await arun([*h, "bot", "remove", "shop", "--yes"]) == 0
    assert await arun([*h, "bot", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1] or "[]") == []


@pytest.mark.parametrize(
    ("token", "needle"),
    [
        ("not-a-token", "malformed bot token"),
        ("123456:" + "A" * 35, "rejected the bot token"),
    ],
)
async def test_bot_add_refuses_bad_tokens_and_stores_nothing(
    home: Path, sandbox: Any, capsys: pytest.CaptureFixture[str], token: str, needle: str
) -> None:
    h = ["--home", str(home)]
    rc = await arun(
        [*h, "bot", "add", "x", "--token-stdin", "--api-base", sandbox.base_url], stdin=token
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and needle in err[0]
    assert token not in err[0]
    assert await arun([*h, "secrets", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["names"] == []


async def test_bot_add_unreachable_server(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    token = "123456:" + "B" * 35
    rc = await arun(
        [
            "--home",
            str(home),
            "bot",
            "add",
            "x",
            "--token-stdin",
            "--api-base",
            "http://127.0.0.1:9",
        ],
        stdin=token,
    )
    err = capsys.readouterr().err
    assert rc == 2 and "cannot reach" in err and token not in err


def test_secrets_set_list_delete_and_config_show_masks(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    h = ["--home", str(home)]
    assert (
        run([*h, "secrets", "set", "gemini.key"], stdin="AIzaSyA-very-secret-value-1234567890abc\n")
        == 0
    )
    assert run([*h, "secrets", "list", "--json"]) == 0
    listing = capsys.readouterr().out
    assert "gemini.key" in listing and "very-secret" not in listing
    (home / "botdesk.toml").write_text(
        '[assistant]\nprovider = "gemini"\napi_key_secret = "gemini.key"\n'
    )
    assert run([*h, "config", "show"]) == 0
    shown = capsys.readouterr().out
    assert 'api_key_secret = "gemini.key"' in shown and "very-secret" not in shown
    assert run([*h, "secrets", "delete", "gemini.key"]) == 0
    assert run([*h, "secrets", "delete", "gemini.key"]) == 2


def test_db_status_and_upgrade(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    h = ["--home", str(home)]
    assert run([*h, "db", "status", "--json"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert st["current"] is None and st["up_to_date"] is False
    assert run([*h, "db", "upgrade"]) == 0
    assert "database at revision 0012" in capsys.readouterr().out
    assert run([*h, "db", "status", "--json"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert st["current"] == st["head"] == "0012" and st["up_to_date"] is True
    assert "sqlite" in st["url"]
