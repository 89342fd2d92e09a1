"""Settings: ``botdesk.toml`` in the home, overridden by ``BOTDESK_*`` environment variables.

Validated once at the edge; everything below receives values, never reads globals. A bad file
or variable raises one ``ConfigError`` naming the source, the key and the reason.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from botdesk.errors import ConfigError

CONFIG_FILENAME = "botdesk.toml"
DB_FILENAME = "botdesk.db"
ENV_PREFIX = "BOTDESK_"

DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 30.0
DEFAULT_EXECUTOR_SIZE = 4
DEFAULT_RATE = 30.0
DEFAULT_PAID_RATE = 1000.0
DEFAULT_WELCOME = (
    "Welcome, {first_name}! You are now subscribed to our updates. "
    "Send /stop at any time to unsubscribe."
)
DEFAULT_AUTO_REPLY = "Thanks for your message! We will get back to you soon."
DEFAULT_STOP_TEXT = (
    "You are unsubscribed and will receive no more messages. Send /start to come back."
)


def default_home() -> Path:
    """BOTDESK_HOME, else the platform's user data dir."""
    env = os.environ.get("BOTDESK_HOME")
    if env:
        return Path(env).expanduser()
    import platformdirs  # deferred: keeps `botdesk --help` light

    return Path(platformdirs.user_data_dir("botdesk", appauthor=False))


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DatabaseSettings(_Section):
    # Empty: the SQLite file in the home. A postgresql+asyncpg:// URL shares one database.
    url: str = ""
    pool_size: int = Field(default=5, ge=1, le=100)
    busy_timeout_ms: int = Field(default=5000, ge=0, le=600_000)


class LogSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["console", "json"] = "console"


class NetworkSettings(_Section):
    connect_timeout: float = Field(default=DEFAULT_CONNECT_TIMEOUT, gt=0, le=120)
    read_timeout: float = Field(default=DEFAULT_READ_TIMEOUT, gt=0, le=600)
    # One outbound proxy for reachability (not rotation), e.g. socks5://127.0.0.1:1080.
    proxy: str = ""


class DeliverySettings(_Section):
    rate: float = Field(default=DEFAULT_RATE, gt=0, le=DEFAULT_PAID_RATE)
    paid_rate: float = Field(default=DEFAULT_PAID_RATE, gt=0, le=DEFAULT_PAID_RATE)
    # Paid broadcasts start at the free rate and double each second until the first 429 or
    # paid_rate (slow start): at a real paid limit below paid_rate, 1-14 answers 429 instead
    # of one for nearly every message in flight. Off by default: Telegram documents 1,000/s,
    # and the ramp costs a 20,000-message broadcast 17% of its rate (828 vs 997 msg/s).
    paid_slow_start: bool = False
    in_flight: int = Field(default=16, ge=1, le=512)
    batch_size: int = Field(default=200, ge=1, le=10_000)
    lease_seconds: float = Field(default=15.0, ge=2, le=600)
    max_server_retries: int = Field(default=4, ge=0, le=20)


class AssistantSettings(_Section):
    provider: Literal["offline", "gemini", "openai"] = "offline"
    model: str = ""
    base_url: str = ""
    api_key_secret: str = ""  # name of a secret in the store, never the key itself
    timeout: float = Field(default=20.0, gt=0, le=300)
    confidence_threshold: float | None = Field(default=None, ge=0, le=1)
    per_subscriber_limit: int = Field(default=10, ge=1, le=1000)
    per_seconds: float = Field(default=60.0, gt=0)
    history_token_budget: int = Field(default=1500, ge=0, le=100_000)
    embeddings: bool = True


class GuiSettings(_Section):
    theme: Literal["light", "dark"] = "light"


class BotOptions(_Section):
    welcome_text: str = DEFAULT_WELCOME
    stop_text: str = DEFAULT_STOP_TEXT
    auto_reply: str = DEFAULT_AUTO_REPLY
    language: str = Field(default="en", pattern=r"^[a-z]{2}(-[A-Za-z]{2,4})?$")
    rate: float | None = Field(default=None, gt=0, le=DEFAULT_PAID_RATE)
    assistant: bool = True


class Settings(BaseSettings):
    """The effective configuration. Build it with ``load_settings``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_assignment=True,
    )

    database: DatabaseSettings = DatabaseSettings()
    log: LogSettings = LogSettings()
    network: NetworkSettings = NetworkSettings()
    delivery: DeliverySettings = DeliverySettings()
    assistant: AssistantSettings = AssistantSettings()
    gui: GuiSettings = GuiSettings()
    executor_size: int = Field(default=DEFAULT_EXECUTOR_SIZE, ge=1, le=64)
    bots: dict[str, BotOptions] = Field(default_factory=dict)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's values arrive as init kwargs; the environment overrides them.
        return (env_settings, init_settings)

    def bot(self, name: str) -> BotOptions:
        return self.bots.get(name) or BotOptions()


class Home:
    """The folder that holds botdesk.toml, the SQLite database and the secrets."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def config_file(self) -> Path:
        return self.path / CONFIG_FILENAME

    @property
    def db_file(self) -> Path:
        return self.path / DB_FILENAME

    def ensure(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)

    def database_url(self, settings: Settings) -> str:
        return settings.database.url or f"sqlite+aiosqlite:///{self.db_file}"


def _env_names(env: Mapping[str, str]) -> set[str]:
    return {k.upper() for k in env if k.upper().startswith(ENV_PREFIX)}


def _source_of(loc: tuple[Any, ...], env: Mapping[str, str], config_file: Path) -> str:
    var = ENV_PREFIX + "__".join(str(p) for p in loc).upper()
    names = _env_names(env)
    if var in names or any(var.startswith(n + "__") or n.startswith(var + "__") for n in names):
        return f"environment {var}"
    return str(config_file)


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse the TOML file; a syntax error becomes one ConfigError with line and column."""
    if not path.exists():
        return {}
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=str(path)) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=str(path)) from exc


def load_settings(home: Home) -> Settings:
    """Validate botdesk.toml plus BOTDESK_* variables; raise ConfigError on the first problem."""
    data = read_config_file(home.config_file)
    try:
        return Settings(**data)
    except pydantic.ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err.get("loc", ()))
        key = ".".join(str(p) for p in loc) or None
        reason = str(err.get("msg", "invalid value"))
        if err.get("type") == "extra_forbidden":
            reason = "unknown key"
        raise ConfigError(
            reason, file=_source_of(loc, os.environ, home.config_file), key=key
        ) from None


def _merge(base: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in changes.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def save_settings(home: Home, changes: Mapping[str, Any]) -> Settings:
    """Merge ``changes`` into botdesk.toml, validated as a whole before the file is replaced.

    Only the file is written (the environment still overrides it); an invalid change raises
    ``ConfigError`` and leaves the file as it was. The write is atomic (temp file + rename).
    """
    import tomli_w

    data = _merge(read_config_file(home.config_file), changes)
    try:
        Settings(**data)
    except pydantic.ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err.get("loc", ())) or None
        raise ConfigError(str(err.get("msg", "invalid value")), key=key) from None
    home.ensure()
    tmp = home.config_file.with_suffix(".toml.tmp")
    tmp.write_text(tomli_w.dumps(data), encoding="utf-8")
    tmp.replace(home.config_file)
    return load_settings(home)
