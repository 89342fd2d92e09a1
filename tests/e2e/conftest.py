"""End-to-end fixtures: a sandbox on loopback, a home with bots registered against it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from botdesk.app import App, open_app
from botdesk.sandbox.testing import running_sandbox


@pytest.fixture
async def sandbox() -> AsyncIterator[Any]:
    async with running_sandbox(seed=7) as sb:
        yield sb


@pytest.fixture
async def app(home: Path) -> AsyncIterator[App]:
    async with open_app(home, configure_logs=False) as a:
        yield a


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> tuple[str, str | None]:
    """(backend, schema): a sync fixture, because ``pg_schema`` runs its own event loop."""
    if request.param == "sqlite":
        return "sqlite", None
    return "postgresql", str(request.getfixturevalue("pg_schema"))
