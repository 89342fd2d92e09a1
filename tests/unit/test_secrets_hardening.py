"""SecretStore under hostile or broken conditions: symlinks, garbage, full disks, odd values."""

from __future__ import annotations

import errno
import itertools
import json
import os
import re
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from keyring.backend import KeyringBackend
from keyring.errors import PasswordSetError

from botdesk.errors import SecretError
from botdesk.secrets import SECRET_NAME_RE, SecretStore, generate_master_key, migrate_plaintext

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1"


def open_file_store(home: Path, **env: str) -> SecretStore:
    return SecretStore.open(home, env=env, keyring_backend=None)


def test_name_pattern_is_the_documented_one() -> None:
    assert SECRET_NAME_RE == r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}"
    assert re.fullmatch(SECRET_NAME_RE, "bots.shop.token")


def test_symlinked_key_file_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.key"
    fd = os.open(elsewhere, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, generate_master_key().encode())
    os.close(fd)
    home = tmp_path / "home"
    home.mkdir()
    (home / "master.key").symlink_to(elsewhere)
    store = open_file_store(home)
    with pytest.raises(SecretError, match="cannot open key file") as info:
        store.set("a.token", TOKEN)
    assert "\n" not in str(info.value)
    assert not (home / "secrets.enc").exists()


def test_garbage_key_file_is_refused(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "master.key", os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"\x00\xffnot a key")
    os.close(fd)
    with pytest.raises(SecretError, match="not a valid Fernet key"):
        open_file_store(tmp_path).set("a.token", TOKEN)


def test_decryptable_but_foreign_document_is_refused(tmp_path: Path) -> None:
    key = generate_master_key()
    (tmp_path / "secrets.enc").write_bytes(Fernet(key.encode()).encrypt(json.dumps([1]).encode()))
    with pytest.raises(SecretError, match="not a botdesk secrets document"):
        open_file_store(tmp_path, BOTDESK_MASTER_KEY=key)
    (tmp_path / "secrets.enc").write_bytes(Fernet(key.encode()).encrypt(b"\xff{"))
    with pytest.raises(SecretError, match="not a secrets document"):
        open_file_store(tmp_path, BOTDESK_MASTER_KEY=key)


def test_unreadable_store_path_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "secrets.enc").mkdir()
    with pytest.raises(SecretError, match="cannot read") as info:
        open_file_store(tmp_path)
    assert "\n" not in str(info.value)


def test_failed_write_keeps_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_file_store(tmp_path)
    store.set("a.token", TOKEN)
    before = (tmp_path / "secrets.enc").read_bytes()

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(SecretError, match=r"cannot write .*No space left"):
        store.set("b.token", "another-value-123")
    monkeypatch.undo()
    assert (tmp_path / "secrets.enc").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    assert open_file_store(tmp_path).names() == ["a.token"]


class BrokenKeyring(KeyringBackend):
    priority = 5  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]

    def get_password(self, service: str, username: str) -> str | None:
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        raise PasswordSetError("write refused by the collection")

    def delete_password(self, service: str, username: str) -> None:
        raise PasswordSetError("nope")


def test_keyring_write_failure_is_a_secret_error(tmp_path: Path) -> None:
    store = SecretStore.open(tmp_path, env={}, keyring_backend=BrokenKeyring())
    with pytest.raises(SecretError, match="OS keyring failed to write") as info:
        store.set("a.token", TOKEN)
    assert TOKEN not in str(info.value)


def test_empty_env_values_are_ignored(tmp_path: Path) -> None:
    store = open_file_store(tmp_path, BOTDESK_SECRET_EMPTY="", BOTDESK_SECRETS_BACKEND="file")
    assert store.names() == []


def test_bad_backend_choice_is_a_config_error(tmp_path: Path) -> None:
    from botdesk.errors import ConfigError

    with pytest.raises(ConfigError, match="auto, keyring or file"):
        open_file_store(tmp_path, BOTDESK_SECRETS_BACKEND="vault")


def test_migration_backup_is_private_even_with_umask_zero(tmp_path: Path) -> None:
    config = tmp_path / "botdesk.toml"
    config.write_text(f'[bots.a]\ntoken = "{TOKEN}"\n')
    old = os.umask(0)
    try:
        migrate_plaintext(config, open_file_store(tmp_path / "home"))
    finally:
        os.umask(old)
    (backup,) = tmp_path.glob("botdesk.toml.bak-*")
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600


_homes = itertools.count()
_names = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,20}\Z")
_values = st.text(min_size=1, max_size=60).filter(lambda v: v.strip() != "")


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(items=st.dictionaries(_names, _values, min_size=1, max_size=4))
def test_any_names_and_values_round_trip(tmp_path: Path, items: dict[str, str]) -> None:
    home = tmp_path / f"h{next(_homes)}"  # hypothesis reuses tmp_path
    store = open_file_store(home)
    for name, value in items.items():
        store.set(name, value)
    again = open_file_store(home)
    assert {n: again.get(n) for n in again.names()} == items
    raw = (home / "secrets.enc").read_bytes()
    for value in items.values():
        if len(value.encode()) >= 4:
            assert value.encode() not in raw
    for name in items:
        again.delete(name)
    assert again.names() == []
