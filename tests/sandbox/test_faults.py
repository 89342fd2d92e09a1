"""Each fault kind, seen through the real aiogram client."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiogram.exceptions import TelegramNetworkError, TelegramRetryAfter, TelegramServerError

from botdesk.sandbox import FaultConfig, Sandbox, parse_faults
from botdesk.sandbox.testing import aiogram_bot


def test_fault_spec_round_trip() -> None:
    cfg = parse_faults("5xx=0.02,reset=0.05,stall=0.01,429=0.1,storm=5@20,updates=1,hold=30")
    assert (cfg.error_5xx, cfg.reset, cfg.stall, cfg.rate_429) == (0.02, 0.05, 0.01, 0.1)
    assert cfg.storms == ((20.0, 5.0),) and cfg.include_get_updates and cfg.stall_seconds == 30
    assert parse_faults(cfg.to_spec()) == cfg
    with pytest.raises(Exception, match="unknown fault"):
        parse_faults("boom=1")
    with pytest.raises(Exception, match=r"within 0\.\.1"):
        parse_faults("5xx=2")


async def test_5xx_alternates_and_records_nothing(sandbox: Sandbox, shop: Any, user: Any) -> None:
    sandbox.set_faults(FaultConfig(error_5xx=1.0))
    async with aiogram_bot(sandbox, shop.token) as bot:
        messages = []
        for _ in range(2):
            with pytest.raises(TelegramServerError) as err:
                await bot.send_message(user.id, "x")
            messages.append(err.value.message)
        assert sorted(messages) == ["Bad Gateway", "Internal Server Error"]
        assert (await bot.get_me()).id == shop.id  # non-send methods are untouched
    assert sandbox.messages() == [] and sandbox.stats()["errors"] == {"500": 1, "502": 1}


async def test_reset_drops_connection_before_processing(
    sandbox: Sandbox, shop: Any, user: Any
) -> None:
    sandbox.set_faults("reset=1")
    async with aiogram_bot(sandbox, shop.token) as bot:
        with pytest.raises(TelegramNetworkError):
            await bot.send_message(user.id, "x")
    assert sandbox.messages() == [] and sandbox.stats()["faults"] == {"reset": 1}


async def test_stall_records_but_never_answers(sandbox: Sandbox, shop: Any, user: Any) -> None:
    sandbox.set_faults("stall=1,hold=60")
    async with aiogram_bot(sandbox, shop.token, timeout=1) as bot:
        with pytest.raises(TelegramNetworkError, match="timeout"):
            await bot.send_message(user.id, "lost ack")
    assert [m["text"] for m in sandbox.messages()] == ["lost ack"]


async def test_storm_then_calm(sandbox: Sandbox, shop: Any, user: Any) -> None:
    sandbox.set_faults(FaultConfig(storms=((0.0, 3.0),)))
    async with aiogram_bot(sandbox, shop.token) as bot:
        with pytest.raises(TelegramRetryAfter) as err:
            await bot.send_message(user.id, "x")
        assert 1 <= err.value.retry_after <= 3
        assert "Too Many Requests: retry after" in err.value.message
        sandbox.set_faults(FaultConfig())
        assert (await bot.send_message(user.id, "calm")).text == "calm"


async def test_random_429_and_get_updates_opt_in(sandbox: Sandbox, shop: Any, user: Any) -> None:
    async with aiogram_bot(sandbox, shop.token) as bot:
        sandbox.set_faults("429=1")
        assert await bot.get_updates()  # getUpdates is exempt unless updates=1
        sandbox.set_faults("429=1,updates=1")
        with pytest.raises(TelegramRetryAfter):
            await bot.get_updates()


async def test_seeded_faults_are_reproducible(shop: Any) -> None:
    from botdesk.sandbox.faults import FaultInjector

    runs = []
    for _ in range(2):
        inj = FaultInjector(parse_faults("5xx=0.2,reset=0.2,stall=0.1"), seed=7, clock=lambda: 0.0)
        runs.append([inj.decide()[0] for _ in range(200)])
    assert runs[0] == runs[1] and len(set(runs[0])) == 5
    await asyncio.sleep(0)
