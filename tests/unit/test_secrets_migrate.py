"""migrate_plaintext: values leave botdesk.toml for the store, idempotently, with a backup."""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path

import pytest

from botdesk.errors import ConfigError, SecretError
from botdesk.secrets import SecretStore, migrate_plaintext

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1"
OTHER_TOKEN = "987654321:BBHdqTcvCH1vGWJxfSeofSAs0K5PALDzz9"
API_KEY = "AIzaSyA1234567890abcdefghijklmnopqrstuv"

CONFIG = f"""\
# botdesk configuration
[log]
level = "INFO"  # keep it quiet

[bots.shop]
token = "{TOKEN}"   # from @BotFather
name = "Shop"

[bots.news]
token = "secret:bots.news.token"

[assistant]
provider = "gemini"
api_key = '{API_KEY}'
sort_key = ""

[database]
password = "db-pass-123"
"""


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def backups(path: Path) -> list[Path]:
    return sorted(path.parent.glob(path.name + ".bak-*"))


@pytest.fixture
def store(tmp_path: Path) -> SecretStore:
    return SecretStore.open(tmp_path / "home", env={}, keyring_backend=None)


def test_migrate_moves_values_keeps_comments_and_backs_up(
    tmp_path: Path, store: SecretStore
) -> None:
    config = tmp_path / "botdesk.toml"
    config.write_text(CONFIG)
    moved = migrate_plaintext(config, store)
    assert moved == ["assistant.api_key", "bots.shop.token", "database.password"]

    text = config.read_text()
    for value in (TOKEN, API_KEY, "db-pass-123"):
        assert value not in text
    assert "# from @BotFather" in text and "# keep it quiet" in text  # layout kept
    doc = tomllib.loads(text)
    assert doc["bots"]["shop"] == {"token": "secret:bots.shop.token", "name": "Shop"}
    assert doc["bots"]["news"]["token"] == "secret:bots.news.token"  # untouched
    assert doc["assistant"]["api_key"] == "secret:assistant.api_key"
    assert doc["assistant"]["sort_key"] == ""  # empty values are nothing to protect
    assert doc["database"]["password"] == "secret:database.password"

    assert store.get("bots.shop.token") == TOKEN
    assert store.get("assistant.api_key") == API_KEY
    assert store.resolve(doc["database"]["password"]) == "db-pass-123"

    (backup,) = backups(config)
    assert mode_of(backup) == 0o600
    assert backup.read_text() == CONFIG


def test_migrate_is_idempotent(tmp_path: Path, store: SecretStore) -> None:
    config = tmp_path / "botdesk.toml"
    config.write_text(CONFIG)
    assert migrate_plaintext(config, store)
    after_first = config.read_bytes()
    stat_first = config.stat()
    assert migrate_plaintext(config, store) == []
    assert config.read_bytes() == after_first
    assert config.stat().st_mtime_ns == stat_first.st_mtime_ns  # not rewritten
    assert config.stat().st_ino == stat_first.st_ino
    assert len(backups(config)) == 1


def test_inline_tables_and_arrays_fall_back_to_a_full_rewrite(
    tmp_path: Path, store: SecretStore
) -> None:
    config = tmp_path / "botdesk.toml"
    config.write_text(
        f'bots = {{ shop = {{ token = "{TOKEN}" }} }}\n'
        "[[webhooks]]\n"
        f'secret = "{OTHER_TOKEN}"\n'
        'description = "plain"\n'
    )
    assert migrate_plaintext(config, store) == ["bots.shop.token", "webhooks.0.secret"]
    doc = tomllib.loads(config.read_text())
    assert doc == {
        "bots": {"shop": {"token": "secret:bots.shop.token"}},
        "webhooks": [{"secret": "secret:webhooks.0.secret", "description": "plain"}],
    }
    assert store.get("webhooks.0.secret") == OTHER_TOKEN


def test_value_repeated_under_an_ordinary_key_is_not_mistaken(
    tmp_path: Path, store: SecretStore
) -> None:
    # Only the secret-named line changes; the note keeps its (identical) value.
    config = tmp_path / "botdesk.toml"
    config.write_text(f'[a]\ntoken = "{TOKEN}"  # main\nnote = "{TOKEN}"\n')
    assert migrate_plaintext(config, store) == ["a.token"]
    assert tomllib.loads(config.read_text())["a"] == {"token": "secret:a.token", "note": TOKEN}
    assert "# main" in config.read_text()


def test_conflicting_existing_secret_stops_before_writing(
    tmp_path: Path, store: SecretStore
) -> None:
    store.set("bots.shop.token", OTHER_TOKEN)
    config = tmp_path / "botdesk.toml"
    config.write_text(CONFIG)
    with pytest.raises(SecretError, match="different value"):
        migrate_plaintext(config, store)
    assert config.read_text() == CONFIG
    assert backups(config) == []
    assert store.get("bots.shop.token") == OTHER_TOKEN


def test_same_value_already_stored_is_fine(tmp_path: Path, store: SecretStore) -> None:
    # What a rerun after a crash between "store" and "rewrite" looks like.
    store.set("bots.shop.token", TOKEN)
    config = tmp_path / "botdesk.toml"
    config.write_text(CONFIG)
    assert "bots.shop.token" in migrate_plaintext(config, store)


def test_config_without_secrets_is_left_alone(tmp_path: Path, store: SecretStore) -> None:
    config = tmp_path / "botdesk.toml"
    config.write_text('[log]\nlevel = "DEBUG"\n')
    assert migrate_plaintext(config, store) == []
    assert backups(config) == []


def test_bad_toml_is_a_config_error(tmp_path: Path, store: SecretStore) -> None:
    config = tmp_path / "botdesk.toml"
    config.write_text('[bots\ntoken = "x"\n')
    with pytest.raises(ConfigError, match="not valid TOML"):
        migrate_plaintext(config, store)
    with pytest.raises(ConfigError, match="file not found"):
        migrate_plaintext(tmp_path / "absent.toml", store)


def test_config_file_mode_is_preserved(tmp_path: Path, store: SecretStore) -> None:
    config = tmp_path / "botdesk.toml"
    config.write_text(CONFIG)
    os.chmod(config, 0o640)
    migrate_plaintext(config, store)
    assert mode_of(config) == 0o640
