"""Fixtures: a running sandbox (no latency, no faults) and an aiogram bot pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiogram import Bot

from botdesk.sandbox import BotInfo, Sandbox
from botdesk.sandbox.testing import aiogram_bot, running_sandbox


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with running_sandbox() as sb:
        yield sb


@pytest.fixture
def shop(sandbox: Sandbox) -> BotInfo:
    return sandbox.add_bot("shop_bot")


@pytest.fixture
async def tg(sandbox: Sandbox, shop: BotInfo) -> AsyncIterator[Bot]:
    async with aiogram_bot(sandbox, shop.token) as bot:
        yield bot


@pytest.fixture
def user(sandbox: Sandbox, shop: BotInfo) -> Any:
    return sandbox.add_users(1, start_bots=["shop_bot"])[0]
