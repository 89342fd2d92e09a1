"""SecretStore: backend choice, keyring and encrypted-file behaviour, env fallback."""

from __future__ import annotations

import os
import stat
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail, null
from keyring.errors import KeyringLocked, PasswordDeleteError

from botdesk.errors import SecretError, SecretNotFound
from botdesk.secrets import (
    FILE_KEY_PROTECTION,
    SecretStore,
    env_var_for,
    generate_master_key,
    is_secret_reference,
    keyring_refusal,
)

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1"
API_KEY = "AIzaSyA1234567890abcdefghijklmnopqrstuv"


class MemoryKeyring(KeyringBackend):
    """A real keyring backend that keeps entries in a dict (what an OS store would do)."""

    priority = 5  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        try:
            del self.entries[(service, username)]
        except KeyError:
            raise PasswordDeleteError(username) from None


class PlaintextKeyring(MemoryKeyring):
    """Named like keyrings.alt.file.PlaintextKeyring: values sit in a file unencrypted."""


class DeclaredInsecureKeyring(MemoryKeyring):
    insecure = True


class LockedKeyring(MemoryKeyring):
    def get_password(self, service: str, username: str) -> str | None:
        raise KeyringLocked("the collection is locked")


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def eager_thread_switching() -> Iterator[None]:
    """Switch threads as often as possible so a missing lock shows up as lost writes."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


@pytest.fixture
def registered_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)


def open_file_store(home: Path, **env: str) -> SecretStore:
    return SecretStore.open(home, env=env, keyring_backend=None)


# ----------------------------------------------------------------- backend choice


def test_registered_os_keyring_is_used_when_auto(
    tmp_path: Path, registered_keyring: MemoryKeyring
) -> None:
    store = SecretStore.open(tmp_path, env={})
    assert store.backend.name == "keyring"
    assert "MemoryKeyring" in store.backend.protection
    store.set("bots.shop.token", TOKEN)
    assert registered_keyring.entries[("botdesk", "bots.shop.token")] == TOKEN
    assert store.get("bots.shop.token") == TOKEN
    assert store.names() == ["bots.shop.token"]
    # no secret material lands on disk when the keyring holds the secrets
    assert [p.name for p in tmp_path.iterdir()] == ["secrets.lock"]
    assert (tmp_path / "secrets.lock").stat().st_size == 0


@pytest.mark.parametrize(
    "backend",
    [
        PlaintextKeyring(),
        DeclaredInsecureKeyring(),
        fail.Keyring(),  # type: ignore[no-untyped-call]
        null.Keyring(),  # type: ignore[no-untyped-call]
        LockedKeyring(),
    ],
    ids=["plaintext", "declared-insecure", "fail", "null", "locked"],
)
def test_unusable_keyrings_are_refused(tmp_path: Path, backend: KeyringBackend) -> None:
    assert keyring_refusal(backend) is not None
    store = SecretStore.open(tmp_path, env={}, keyring_backend=backend)
    assert store.backend.name == "encrypted-file"
    assert store.backend.protection == FILE_KEY_PROTECTION
    assert any("OS keyring not used" in note for note in store.backend.notes)
    store.set("x.token", TOKEN)
    # the refused backend received nothing
    assert not getattr(backend, "entries", {})


def test_plaintext_keyring_registered_globally_is_refused(tmp_path: Path) -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(PlaintextKeyring())
    try:
        store = SecretStore.open(tmp_path, env={})
    finally:
        keyring.set_keyring(previous)
    assert store.backend.name == "encrypted-file"
    assert "plaintext" in " ".join(store.backend.notes).lower()


def test_chained_keyring_skips_its_plaintext_member(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from keyring.backends.chainer import ChainerBackend

    plaintext, good = PlaintextKeyring(), MemoryKeyring()
    # The chain's members normally come from installed plugins; pin them for the test.
    monkeypatch.setattr(ChainerBackend, "backends", [plaintext, good])
    store = SecretStore.open(tmp_path, env={}, keyring_backend=ChainerBackend())  # type: ignore[no-untyped-call]
    assert store.backend.name == "keyring" and "MemoryKeyring" in store.backend.protection
    store.set("a.token", TOKEN)
    assert plaintext.entries == {} and ("botdesk", "a.token") in good.entries


def test_keyring_off_env_disables_the_keyring(
    tmp_path: Path, registered_keyring: MemoryKeyring
) -> None:
    store = SecretStore.open(tmp_path, env={"BOTDESK_KEYRING": "off"})
    assert store.backend.name == "encrypted-file"
    store.set("a.token", TOKEN)
    assert registered_keyring.entries == {}


def test_file_backend_forced_keeps_its_key_in_the_keyring(
    tmp_path: Path, registered_keyring: MemoryKeyring
) -> None:
    store = SecretStore.open(tmp_path, env={"BOTDESK_SECRETS_BACKEND": "file"})
    assert store.backend.name == "encrypted-file"
    assert "key in the OS keyring" in store.backend.protection
    store.set("a.token", TOKEN)
    assert not (tmp_path / "master.key").exists()
    assert ("botdesk", "__botdesk_master_key__") in registered_keyring.entries
    again = SecretStore.open(tmp_path, env={"BOTDESK_SECRETS_BACKEND": "file"})
    assert again.get("a.token") == TOKEN


def test_existing_encrypted_file_stays_the_store_when_a_keyring_appears(
    tmp_path: Path, registered_keyring: MemoryKeyring
) -> None:
    open_file_store(tmp_path).set("a.token", TOKEN)
    store = SecretStore.open(tmp_path, env={})
    assert store.backend.name == "encrypted-file"
    assert store.get("a.token") == TOKEN
    assert any("stays the store" in n for n in store.backend.notes)


def test_keyring_forced_but_unusable_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SecretError, match="keyring is unusable") as info:
        SecretStore.open(
            tmp_path,
            env={"BOTDESK_SECRETS_BACKEND": "keyring"},
            keyring_backend=fail.Keyring(),  # type: ignore[no-untyped-call]
        )
    assert "\n" not in str(info.value)


# ----------------------------------------------------------------- keyring backend


def test_concurrent_keyring_writers_keep_every_name(
    tmp_path: Path, eager_thread_switching: None
) -> None:
    kr = MemoryKeyring()
    stores = [SecretStore.open(tmp_path, env={}, keyring_backend=kr) for _ in range(4)]

    def writer(n: int) -> None:
        for i in range(10):
            stores[n].set(f"k{n}.s{i}", f"keyring-value-{n}-{i}")

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(stores[0].names()) == 40


def test_keyring_delete_and_missing(tmp_path: Path) -> None:
    kr = MemoryKeyring()
    store = SecretStore.open(tmp_path, env={}, keyring_backend=kr)
    store.set("one", "value-one-123")
    store.set("two", "value-two-456")
    assert store.names() == ["one", "two"]
    store.delete("one")
    assert store.names() == ["two"]
    with pytest.raises(SecretNotFound):
        store.get("one")
    with pytest.raises(SecretNotFound):
        store.delete("one")
    # a second store over the same keyring sees the index
    assert SecretStore.open(tmp_path, env={}, keyring_backend=kr).names() == ["two"]


# ----------------------------------------------------------------- encrypted file


def test_encrypted_file_is_0600_atomic_and_holds_no_plaintext(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = open_file_store(home)
    assert not (home / "secrets.enc").exists()  # nothing written before the first set
    store.set("bots.shop.token", TOKEN)
    store.set("assistant.api_key", API_KEY)
    enc, key = home / "secrets.enc", home / "master.key"
    assert mode_of(enc) == 0o600
    assert mode_of(key) == 0o600
    raw = enc.read_bytes()
    assert TOKEN.encode() not in raw and API_KEY.encode() not in raw
    assert b"bots.shop.token" not in raw  # names are private too
    assert not [p.name for p in home.iterdir() if p.name.endswith(".tmp")]
    reopened = open_file_store(home)
    assert reopened.get("bots.shop.token") == TOKEN
    assert reopened.names() == ["assistant.api_key", "bots.shop.token"]
    reopened.delete("assistant.api_key")
    assert open_file_store(home).names() == ["bots.shop.token"]


def test_modes_hold_under_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        open_file_store(tmp_path).set("a.token", TOKEN)
    finally:
        os.umask(old)
    assert mode_of(tmp_path / "secrets.enc") == 0o600
    assert mode_of(tmp_path / "master.key") == 0o600


def test_master_key_from_env(tmp_path: Path) -> None:
    key = generate_master_key()
    store = open_file_store(tmp_path, BOTDESK_MASTER_KEY=key)
    assert "BOTDESK_MASTER_KEY" in store.backend.protection
    store.set("a.token", TOKEN)
    assert not (tmp_path / "master.key").exists()
    assert open_file_store(tmp_path, BOTDESK_MASTER_KEY=key).get("a.token") == TOKEN
    assert key in store.values()  # the key itself is redacted from logs


def test_wrong_master_key_is_one_clear_line(tmp_path: Path) -> None:
    open_file_store(tmp_path, BOTDESK_MASTER_KEY=generate_master_key()).set("a.token", TOKEN)
    wrong = generate_master_key()
    with pytest.raises(SecretError) as info:
        open_file_store(tmp_path, BOTDESK_MASTER_KEY=wrong)
    message = str(info.value)
    assert "wrong BOTDESK_MASTER_KEY" in message
    assert "\n" not in message and wrong not in message


def test_malformed_master_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SecretError, match="not a valid Fernet key"):
        open_file_store(tmp_path, BOTDESK_MASTER_KEY="hunter2-is-not-a-key")


def test_corrupt_file_is_one_clear_line(tmp_path: Path) -> None:
    open_file_store(tmp_path).set("a.token", TOKEN)
    enc = tmp_path / "secrets.enc"
    data = bytearray(enc.read_bytes())
    data[40] ^= 0x01
    enc.write_bytes(bytes(data))
    with pytest.raises(SecretError) as info:
        open_file_store(tmp_path)
    assert "cannot decrypt" in str(info.value) and "\n" not in str(info.value)


def test_missing_key_for_existing_file(tmp_path: Path) -> None:
    open_file_store(tmp_path).set("a.token", TOKEN)
    (tmp_path / "master.key").unlink()
    with pytest.raises(SecretError, match="its key is missing"):
        open_file_store(tmp_path)


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    open_file_store(tmp_path).set("a.token", TOKEN)
    os.chmod(tmp_path / "master.key", 0o644)
    with pytest.raises(SecretError, match="chmod 600"):
        open_file_store(tmp_path)


def test_concurrent_writers_lose_nothing(tmp_path: Path, eager_thread_switching: None) -> None:
    open_file_store(tmp_path).set("seed", "seed-value")
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            store = open_file_store(tmp_path)
            for i in range(5):
                store.set(f"w{n}.s{i}", f"value-{n}-{i}-xyz")
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert len(open_file_store(tmp_path).names()) == 1 + 6 * 5


# ----------------------------------------------------------------- env fallback and names


def test_env_fallback_is_read_only_and_shadowed_by_the_store(tmp_path: Path) -> None:
    env = {"BOTDESK_SECRET_BOTS_SHOP_TOKEN": TOKEN, "BOTDESK_SECRET_EXTRA": "extra-value-1"}
    store = open_file_store(tmp_path, **env)
    assert env_var_for("bots.shop-x.token") == "BOTDESK_SECRET_BOTS_SHOP_X_TOKEN"
    assert store.get("bots.shop.token") == TOKEN
    assert store.get("extra") == "extra-value-1"
    assert [(e.name, e.source) for e in store.entries()] == [
        ("BOTS_SHOP_TOKEN", "env:BOTDESK_SECRET_BOTS_SHOP_TOKEN"),
        ("EXTRA", "env:BOTDESK_SECRET_EXTRA"),
    ]
    with pytest.raises(SecretError, match="unset it there") as info:
        store.delete("bots.shop.token")
    assert not isinstance(info.value, SecretNotFound)
    store.set("bots.shop.token", "stored-wins-123")
    assert store.get("bots.shop.token") == "stored-wins-123"
    assert store.names() == ["EXTRA", "bots.shop.token"]
    assert set(store.values()) >= {TOKEN, "stored-wins-123", "extra-value-1"}


def test_env_values_in_os_environ_shape(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOTDESK_SECRET_GEMINI_KEY", API_KEY)
    store = SecretStore.open(tmp_path, keyring_backend=None)  # default env is os.environ
    assert store.get("gemini.key") == API_KEY


@pytest.mark.parametrize("name", ["", "_x", ".x", "a b", "a/b", "x" * 129, "tok\n"])
def test_bad_names_are_refused(tmp_path: Path, name: str) -> None:
    store = open_file_store(tmp_path)
    with pytest.raises(SecretError, match="invalid secret name"):
        store.set(name, "value-123456")
    with pytest.raises(SecretError, match="invalid secret name"):
        store.get(name)


def test_empty_values_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SecretError, match="empty value"):
        open_file_store(tmp_path).set("a", "  ")


def test_register_hook_sees_every_value(tmp_path: Path) -> None:
    open_file_store(tmp_path).set("a.token", TOKEN)
    seen: list[str] = []
    store = SecretStore.open(
        tmp_path,
        env={"BOTDESK_SECRET_B": "env-value-77"},
        keyring_backend=None,
        register=seen.append,
    )
    assert TOKEN in seen and "env-value-77" in seen
    assert (tmp_path / "master.key").read_text().strip() in seen
    store.set("c.key", API_KEY)
    assert API_KEY in seen


def test_references(tmp_path: Path) -> None:
    assert is_secret_reference("secret:bots.shop.token")
    assert not is_secret_reference("secret:")
    assert not is_secret_reference("bots.shop.token")
    store = open_file_store(tmp_path)
    store.set("bots.shop.token", TOKEN)
    assert store.resolve("secret:bots.shop.token") == TOKEN
    assert store.resolve("plain") == "plain"
    with pytest.raises(SecretNotFound):
        store.resolve("secret:absent")
