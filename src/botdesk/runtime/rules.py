"""Keyword rules at run time: each bot's current rule set, its replies, its command menu.

``RuleBook`` follows the stored rule set (``reply_rules``) from inside the update batch's
transaction: one primary-key read per batch, a new parse only when the version changed, so an
operator's `botdesk rules load` reaches every worker sharing the database on its next batch.
A rule's reply is sent like the assistant's (a ``SendEffect`` through the bot's channel:
reply priority, 429s waited out, recorded in the conversation).

``commands_worker`` runs beside the bot's other workers in the process that owns the bot: it
registers the rule set's ``commands:`` with setMyCommands when serving starts and again when
the stored version changes.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiogram import Bot
from sqlalchemy.ext.asyncio import AsyncConnection

from botdesk import reply_rules
from botdesk.clock import wait_event
from botdesk.errors import BotdeskError
from botdesk.log import get_logger
from botdesk.reply_rules import Rule, RuleSet
from botdesk.runtime.channel import BotChannel
from botdesk.subscribers import Person
from botdesk.telegram.commands import set_commands
from botdesk.telegram.gateway import OutgoingMessage

log = get_logger(__name__)

CHECK_EVERY_S = 5.0
RETRY_AFTER_FAILURE_S = 60.0


class RuleBook:
    """The bot's rule set as of the last batch (None: the bot has no rules)."""

    def __init__(self, bot_id: int, *, name: str = "") -> None:
        self.bot_id = bot_id
        self.name = name
        self._set: RuleSet | None = None

    async def current(self, conn: AsyncConnection) -> RuleSet | None:
        version = await reply_rules.stored_version(conn, self.bot_id)
        if version == 0:
            self._set = None
        elif self._set is None or self._set.version != version:
            try:
                self._set = await reply_rules.load_stored(conn, self.bot_id)
                log.info("reply rules loaded", bot=self.name, version=version)
            except BotdeskError as exc:  # validated when stored: only a newer botdesk's rules
                log.error("stored reply rules unreadable", bot=self.name, error=str(exc))
        return self._set


def _media(value: str | None) -> str | Path | None:
    if value is None or value.startswith(("http://", "https://")):
        return value
    return Path(value) if Path(value).is_absolute() else value  # absolute: upload; else file_id


def reply_parts(rule: Rule, p: Person) -> tuple[str, OutgoingMessage, dict[str, Any]]:
    """What a matched rule sends to ``p``: the text recorded in the conversation, the
    message, and the inbox row's meta."""
    r = rule.reply
    text = reply_rules.render(r, first_name=p.first_name, username=p.username)
    msg = OutgoingMessage(
        chat_id=p.chat_id,
        text=text,
        parse_mode=None if r.parse_mode == "plain" else r.parse_mode,
        photo=_media(r.photo),
        document=_media(r.document),
        buttons=r.links,
        callbacks=tuple((b.label, b.key) for b in r.menu),
    )
    return text, msg, {"kind": "rule", "rule": rule.name}


async def apply_commands(bot: Bot, rules: RuleSet) -> list[str | None]:
    """setMyCommands for every language the rule set has commands for; returns them."""
    by_lang = rules.commands_by_language()
    for lang, cmds in by_lang.items():
        await set_commands(bot, [(c.command, c.description) for c in cmds], language=lang)
    return list(by_lang)


async def commands_worker(channel: BotChannel, stop: asyncio.Event) -> None:
    """Keep the bot's command menu in step with its stored rule set (``BotWorker``)."""
    applied = -1
    while not stop.is_set():
        wait = CHECK_EVERY_S
        try:
            rules = await reply_rules.current(channel.db, bot_id=channel.record.id)
            if rules.version != applied:
                if rules.commands:
                    langs = await apply_commands(channel.bot, rules)
                    log.info(
                        "command menu registered",
                        bot=channel.name,
                        languages=",".join(x or "default" for x in langs),
                    )
                applied = rules.version
        except Exception as exc:  # a menu must never stop the bot (a failed worker ends its turn)
            log.warning("command menu not registered", bot=channel.name, error=str(exc))
            wait = RETRY_AFTER_FAILURE_S
        await wait_event(stop, wait)
