"""The opened application: home, settings, secrets and database, shared by CLI, serve and demo.

``open_app`` is the single way interfaces reach services: it validates configuration once,
configures logging with redaction, opens the database and brings its schema up to date.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from botdesk.config import Home, Settings, load_settings

if TYPE_CHECKING:
    from botdesk.secrets import SecretStore
    from botdesk.store.db import Database


@dataclass
class App:
    home: Home
    settings: Settings
    db: Database
    _secrets: SecretStore | None = field(default=None, repr=False)

    @property
    def secrets(self) -> SecretStore:
        if self._secrets is None:
            self._secrets = open_secrets(self.home)
        return self._secrets


def open_secrets(home: Home) -> SecretStore:
    from botdesk.log import REDACTOR
    from botdesk.secrets import SecretStore

    home.ensure()
    # register= hands every value the store ever reads or writes (and its master key) to the
    # redactor, so a secret set later in the process cannot leak into logs either.
    return SecretStore.open(home.path, register=REDACTOR.add)


def load(home_path: Path) -> tuple[Home, Settings]:
    home = Home(home_path)
    return home, load_settings(home)


@asynccontextmanager
async def open_app(
    home_path: Path,
    *,
    upgrade: bool = True,
    configure_logs: bool = True,
    quiet: bool = False,
    schema: str | None = None,
) -> AsyncIterator[App]:
    """``quiet``: one-shot commands log warnings and errors only (their output is the result)."""
    from botdesk.store.db import Database

    home, settings = load(home_path)
    if configure_logs:
        from botdesk.log import configure_logging

        level = settings.log.level
        if quiet and level in ("DEBUG", "INFO"):
            level = "DEBUG" if level == "DEBUG" else "WARNING"
        configure_logging(level=level, fmt=settings.log.format)
    home.ensure()
    db = Database.open(
        home.database_url(settings),
        busy_timeout_ms=settings.database.busy_timeout_ms,
        pool_size=settings.database.pool_size,
        schema=schema,
    )
    try:
        if upgrade:
            await db.upgrade()
        yield App(home=home, settings=settings, db=db)
    finally:
        await db.close()
