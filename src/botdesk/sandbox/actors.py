"""What simulated users do: start a bot, write, press buttons, edit, block, leave Telegram.

Each action turns into the updates Telegram would send the bot (message, edited_message,
callback_query, my_chat_member). Misuse (unknown user, pressing a button that does not
exist) raises ``SandboxError``.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import SandboxError
from .world import ACTIVE, DEACTIVATED, DELETED, Bot, User, World, now

_COMMAND = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")


def command_entities(text: str) -> list[dict[str, Any]]:
    """bot_command entities as Telegram's clients mark them (ASCII, so offsets are UTF-16)."""
    out = []
    for m in _COMMAND.finditer(text):
        prefix = text[: m.start()]
        offset = len(prefix.encode("utf-16-le")) // 2
        out.append({"type": "bot_command", "offset": offset, "length": len(m.group(0))})
    return out


class Actors:
    def __init__(self, world: World) -> None:
        self.world = world

    def _active(self, user_id: int) -> User:
        user = self.world.user(user_id)
        if user.state != ACTIVE:
            raise SandboxError(f"user {user_id} is {user.state} and cannot act")
        return user

    def _member_update(self, bot: Bot, user: User, old: str, new: str) -> None:
        def member(status: str) -> dict[str, Any]:
            body: dict[str, Any] = {"status": status, "user": bot.user_json()}
            if status == "kicked":
                body["until_date"] = 0
            return body

        self.world.push_update(
            bot,
            "my_chat_member",
            {
                "chat": user.chat_json(),
                "from": user.json(),
                "date": now(),
                "old_chat_member": member(old),
                "new_chat_member": member(new),
            },
        )

    def _inbound(self, bot: Bot, user: User, text: str) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": 0,
            "from": user.json(),
            "chat": user.chat_json(),
            "date": now(),
            "text": text,
        }
        entities = command_entities(text)
        if entities:
            message["entities"] = entities
        self.world.store(bot, user.info.id, message)
        self.world.push_update(bot, "message", message)
        return message

    def start(self, user_id: int, bot_name: str, payload: str | None = None) -> dict[str, Any]:
        bot = self.world.bot(bot_name)
        user = self._active(user_id)
        if user_id in bot.blocked:  # "Restart bot" unblocks, then sends /start
            self.unblock(user_id, bot_name)
        bot.started.add(user_id)
        return self._inbound(bot, user, f"/start {payload}" if payload else "/start")

    def send(self, user_id: int, bot_name: str, text: str) -> dict[str, Any]:
        bot = self.world.bot(bot_name)
        user = self._active(user_id)
        if not text:
            raise SandboxError("a user cannot send an empty message")
        if user_id in bot.blocked:
            raise SandboxError(f"user {user_id} blocked @{bot.info.username}; unblock first")
        bot.started.add(user_id)  # writing to a bot opens the conversation
        return self._inbound(bot, user, text)

    def press(self, user_id: int, bot_name: str, message_id: int, data: str) -> dict[str, Any]:
        bot = self.world.bot(bot_name)
        user = self._active(user_id)
        message = self.world.log(bot, user_id).messages.get(int(message_id))
        if message is None:
            raise SandboxError(f"no message {message_id} in the chat of user {user_id}")
        rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
        if not any(b.get("callback_data") == data for row in rows for b in row):
            raise SandboxError(f"message {message_id} has no button with callback_data {data!r}")
        query_id = self.world.new_query_id()
        bot.open_queries[query_id] = user_id
        query = {
            "id": query_id,
            "from": user.json(),
            "message": message,
            "chat_instance": str(bot.info.id ^ user_id),
            "data": data,
        }
        self.world.push_update(bot, "callback_query", query)
        return query

    def edit(self, user_id: int, bot_name: str, message_id: int, text: str) -> dict[str, Any]:
        bot = self.world.bot(bot_name)
        self._active(user_id)
        message = self.world.log(bot, user_id).messages.get(int(message_id))
        if message is None or message["from"]["id"] != user_id:
            raise SandboxError(f"user {user_id} has no message {message_id} to edit")
        message["text"] = text
        message.pop("entities", None)
        entities = command_entities(text)
        if entities:
            message["entities"] = entities
        message["edit_date"] = now()
        self.world.push_update(bot, "edited_message", dict(message))
        return message

    def block(self, user_id: int, bot_name: str) -> None:
        bot = self.world.bot(bot_name)
        user = self._active(user_id)
        if user_id in bot.blocked:
            return
        bot.blocked.add(user_id)
        self._member_update(bot, user, "member", "kicked")

    def unblock(self, user_id: int, bot_name: str) -> None:
        bot = self.world.bot(bot_name)
        user = self._active(user_id)
        if user_id not in bot.blocked:
            return
        bot.blocked.discard(user_id)
        self._member_update(bot, user, "kicked", "member")

    def deactivate(self, user_id: int) -> None:
        self.world.user(user_id).state = DEACTIVATED

    def delete(self, user_id: int) -> None:
        self.world.user(user_id).state = DELETED
