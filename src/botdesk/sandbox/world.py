"""The simulated world: bots, users, groups, the messages in each chat and bot update queues.

Everything here is synchronous and in memory; the server's handlers run between awaits,
so each call is atomic. Objects are rendered to Bot API JSON (exact field names, empty
optional fields omitted) by the ``*_json`` helpers.
"""

from __future__ import annotations

import asyncio
import random
import string
import time
from dataclasses import dataclass, field
from typing import Any

from .errors import SandboxError

TOKEN_ALPHABET = string.ascii_letters + string.digits + "_-"
FIRST_NAMES = (
    "Ana",
    "Ben",
    "Chen",
    "Dara",
    "Eli",
    "Fatima",
    "Goran",
    "Hana",
    "Ivan",
    "Jonas",
    "Kemal",
    "Lea",
    "Mina",
    "Noor",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sami",
    "Tariq",
)
LANGUAGES = ("en", "en", "de", "es", "pt", "ru", "fr", "it")

ACTIVE, DEACTIVATED, DELETED = "active", "deactivated", "deleted"
# Update types delivered when allowed_updates is not given (Telegram's default set).
DEFAULT_ALLOWED = frozenset({"message", "edited_message", "callback_query", "my_chat_member"})


@dataclass(frozen=True)
class BotInfo:
    id: int
    username: str
    token: str


@dataclass(frozen=True)
class UserInfo:
    id: int
    first_name: str
    username: str
    language_code: str


@dataclass
class Webhook:
    url: str = ""
    secret_token: str = ""
    max_connections: int = 40
    allowed_updates: list[str] | None = None
    last_error_date: int = 0
    last_error_message: str = ""


@dataclass
class Bot:
    info: BotInfo
    first_name: str
    revoked: bool = False
    star_tenths: int = 0
    pending: list[dict[str, Any]] = field(default_factory=list)
    next_update_id: int = 1
    allowed_updates: frozenset[str] = DEFAULT_ALLOWED
    webhook: Webhook = field(default_factory=Webhook)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    poll_owner: object | None = None
    commands: dict[tuple[str, str], list[dict[str, str]]] = field(default_factory=dict)
    started: set[int] = field(default_factory=set)
    blocked: set[int] = field(default_factory=set)
    open_queries: dict[str, int] = field(default_factory=dict)
    answered: dict[str, str] = field(default_factory=dict)  # query id -> the text it showed

    def user_json(self) -> dict[str, Any]:
        return {
            "id": self.info.id,
            "is_bot": True,
            "first_name": self.first_name,
            "username": self.info.username,
        }

    def notify(self) -> None:
        """Wake whoever waits for this bot's updates (long poll, webhook sender)."""
        self.changed.set()
        self.changed = asyncio.Event()


@dataclass
class User:
    info: UserInfo
    state: str = ACTIVE

    def json(self) -> dict[str, Any]:
        return {
            "id": self.info.id,
            "is_bot": False,
            "first_name": self.info.first_name,
            "username": self.info.username,
            "language_code": self.info.language_code,
        }

    def chat_json(self) -> dict[str, Any]:
        return {
            "id": self.info.id,
            "type": "private",
            "first_name": self.info.first_name,
            "username": self.info.username,
        }


@dataclass
class Group:
    id: int
    title: str
    members: set[int]
    bots: set[int]

    def chat_json(self) -> dict[str, Any]:
        return {"id": self.id, "type": "group", "title": self.title}


@dataclass
class ChatLog:
    """Messages of one chat as one bot sees it; ids increase per chat."""

    next_id: int = 1
    messages: dict[int, dict[str, Any]] = field(default_factory=dict)
    records: dict[int, dict[str, Any]] = field(default_factory=dict)


class World:
    """All simulated state of one sandbox, seeded for reproducibility."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.bots: dict[str, Bot] = {}  # by lowercase username
        self.by_token: dict[str, Bot] = {}
        self.users: dict[int, User] = {}
        self.groups: dict[int, Group] = {}
        self.logs: dict[tuple[int, int], ChatLog] = {}  # (bot id, chat id)
        self.files: dict[str, dict[str, Any]] = {}
        self.outgoing: list[dict[str, Any]] = []  # every accepted outgoing message, in order
        self.uploads: list[dict[str, Any]] = []  # every file uploaded (not sent by file_id)
        self._next_query = 1
        self._next_group = 1
        # Seconds added to the wall clock for the Bot API methods' dates (``advance_clock``):
        # how a test makes a message older than Telegram's 48-hour deletion window.
        self.clock_offset = 0.0

    def now(self) -> int:
        """The sandbox's time, as message dates carry it (Unix seconds)."""
        return int(time.time() + self.clock_offset)

    # -- population ------------------------------------------------------------------

    def add_bot(self, username: str, token: str | None = None) -> BotInfo:
        username = username.lstrip("@")
        if not username or not all(c.isalnum() or c == "_" for c in username):
            raise SandboxError(f"bad bot username '{username}'")
        if username.lower() in self.bots:
            raise SandboxError(f"bot @{username} already exists")
        if token is None:
            bot_id = self.rng.randint(6_000_000_000, 7_999_999_999)
            token = f"{bot_id}:" + "".join(self.rng.choice(TOKEN_ALPHABET) for _ in range(35))
        head, sep, secret = token.partition(":")
        if not (sep and head.isdigit() and secret and all(c in TOKEN_ALPHABET for c in secret)):
            raise SandboxError("bad bot token: expected <digits>:<[A-Za-z0-9_-]+>")
        if token in self.by_token:
            raise SandboxError("bot token already in use")
        info = BotInfo(id=int(head), username=username, token=token)
        name = username.replace("_", " ").title()
        bot = Bot(info=info, first_name=name)
        self.bots[username.lower()] = bot
        self.by_token[token] = bot
        return info

    def bot(self, username: str) -> Bot:
        try:
            return self.bots[username.lstrip("@").lower()]
        except KeyError:
            raise SandboxError(f"no bot @{username.lstrip('@')} in the sandbox") from None

    def add_users(self, count: int) -> list[UserInfo]:
        if count < 0:
            raise SandboxError("user count must be >= 0")
        made = []
        for _ in range(count):
            uid = self.rng.randint(100_000_000, 2_999_999_999)
            while uid in self.users:
                uid = self.rng.randint(100_000_000, 2_999_999_999)
            first = self.rng.choice(FIRST_NAMES)
            info = UserInfo(
                id=uid,
                first_name=first,
                username=f"{first.lower()}{uid % 100000}",
                language_code=self.rng.choice(LANGUAGES),
            )
            self.users[uid] = User(info)
            made.append(info)
        return made

    def user(self, user_id: int) -> User:
        try:
            return self.users[int(user_id)]
        except (KeyError, ValueError):
            raise SandboxError(f"no user {user_id} in the sandbox") from None

    def add_group(self, title: str, member_ids: list[int], bot: Bot) -> int:
        for uid in member_ids:
            self.user(uid)
        gid = -(4_000_000_000 + self._next_group)
        self._next_group += 1
        self.groups[gid] = Group(gid, title, set(member_ids), {bot.info.id})
        return gid

    # -- messages ----------------------------------------------------------------------

    def log(self, bot: Bot, chat_id: int) -> ChatLog:
        key = (bot.info.id, chat_id)
        log = self.logs.get(key)
        if log is None:
            log = self.logs[key] = ChatLog()
        return log

    def store(self, bot: Bot, chat_id: int, message: dict[str, Any]) -> dict[str, Any]:
        log = self.log(bot, chat_id)
        message["message_id"] = log.next_id
        log.next_id += 1
        log.messages[message["message_id"]] = message
        return message

    def chat_json(self, chat_id: int) -> dict[str, Any]:
        if chat_id < 0:
            return self.groups[chat_id].chat_json()
        return self.users[chat_id].chat_json()

    # -- updates -----------------------------------------------------------------------

    def push_update(self, bot: Bot, kind: str, payload: dict[str, Any]) -> None:
        allowed = bot.allowed_updates
        if bot.webhook.url and bot.webhook.allowed_updates is not None:
            allowed = frozenset(bot.webhook.allowed_updates) or DEFAULT_ALLOWED
        if kind not in allowed:
            return
        bot.pending.append({"update_id": bot.next_update_id, kind: payload})
        bot.next_update_id += 1
        bot.notify()

    def new_query_id(self) -> str:
        qid = f"{self.rng.randint(10**17, 10**18)}{self._next_query}"
        self._next_query += 1
        return qid


def now() -> int:
    return int(time.time())
