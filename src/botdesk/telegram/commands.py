"""The bot's command menu: setMyCommands / getMyCommands, per language.

Errors become ``TelegramError`` with Telegram's description (token redacted), so the CLI can
print one line and the runtime can log it.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiogram import Bot
from aiogram.exceptions import AiogramError
from aiogram.types import BotCommand
from aiohttp import ClientError

from botdesk.errors import TelegramError
from botdesk.telegram.outcomes import classify_exception

_CALL_ERRORS = (AiogramError, ClientError, OSError, TimeoutError)


async def set_commands(
    bot: Bot, commands: Sequence[tuple[str, str]], *, language: str | None = None
) -> None:
    """Replace the menu for ``language`` (None: every language without its own menu) with
    ``commands`` ((command, description) pairs); an empty list removes it."""
    try:
        if commands:
            await bot.set_my_commands(
                [BotCommand(command=c, description=d) for c, d in commands],
                language_code=language,
            )
        else:
            await bot.delete_my_commands(language_code=language)
    except _CALL_ERRORS as exc:
        result = classify_exception(exc)
        raise TelegramError(
            f"setMyCommands failed: {result.description or result.outcome.value}"
        ) from exc


async def get_commands(bot: Bot, *, language: str | None = None) -> list[tuple[str, str]]:
    try:
        found = await bot.get_my_commands(language_code=language)
    except _CALL_ERRORS as exc:
        result = classify_exception(exc)
        raise TelegramError(
            f"getMyCommands failed: {result.description or result.outcome.value}"
        ) from exc
    return [(c.command, c.description) for c in found]
