"""The bot registry: which bots botdesk runs, where their API lives, and their tokens.

A token is checked with getMe before anything is stored, then kept only in the secret store
(under ``bot.<name>.token``); the database records the bot's id, username and API base.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select, update

from botdesk.errors import InvalidToken, NotFoundError, ValidationError
from botdesk.store.models import Bot

if TYPE_CHECKING:
    from botdesk.secrets import SecretStore
    from botdesk.store.db import Database

TOKEN_RE = re.compile(r"^\d{5,}:[A-Za-z0-9_-]{30,}$")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class BotRecord:
    id: int
    name: str
    telegram_id: int
    username: str
    api_base: str | None
    token_secret: str
    status: str
    status_reason: str | None
    update_offset: int
    # Send rates (msg/s) learned from Telegram's 429s; None: the configured ones.
    learned_rate: float | None = None
    learned_paid_rate: float | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "username": self.username,
            "telegram_id": self.telegram_id,
            "api_base": self.api_base or "https://api.telegram.org",
            "status": self.status,
            "status_reason": self.status_reason,
        }


def token_secret_name(name: str) -> str:
    return f"bot.{name}.token"


def check_token_format(token: str) -> str:
    token = token.strip()
    if not TOKEN_RE.match(token):
        raise InvalidToken(
            "malformed bot token: expected the form 123456789:AA... as given by @BotFather"
        )
    return token


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise ValidationError(
            f"invalid bot name {name!r}: use 1-64 letters, digits, '_' or '-', "
            "starting alphanumeric"
        )
    return name


def _record(row: Any) -> BotRecord:
    m = row._mapping
    return BotRecord(
        id=m["id"],
        name=m["name"],
        telegram_id=m["telegram_id"],
        username=m["username"],
        api_base=m["api_base"],
        token_secret=m["token_secret"],
        status=m["status"],
        status_reason=m["status_reason"],
        update_offset=m["update_offset"],
        learned_rate=m["learned_rate"],
        learned_paid_rate=m["learned_paid_rate"],
    )


async def store_learned_rates(
    db: Database, bot_id: int, rate: float | None, paid_rate: float | None
) -> None:
    """Keep the rates a bot's limiter learned from 429s, for its next start."""
    async with db.write() as conn:
        await conn.execute(
            update(Bot)
            .where(Bot.id == bot_id)
            .values(learned_rate=rate, learned_paid_rate=paid_rate)
        )


class BotRegistry:
    def __init__(self, db: Database, secrets: SecretStore) -> None:
        self.db = db
        self.secrets = secrets

    async def add(
        self,
        name: str,
        token: str,
        *,
        api_base: str | None,
        connect_timeout: float,
        read_timeout: float,
    ) -> BotRecord:
        from botdesk.log import REDACTOR
        from botdesk.telegram.gateway import get_me

        check_name(name)
        token = check_token_format(token)
        REDACTOR.add(token)
        async with self.db.read() as conn:
            if (await conn.execute(select(Bot.id).where(Bot.name == name))).first():
                raise ValidationError(f"a bot named '{name}' is already registered")
        identity = await get_me(
            token, api_base=api_base, connect_timeout=connect_timeout, read_timeout=read_timeout
        )
        secret = token_secret_name(name)
        self.secrets.set(secret, token)
        try:
            async with self.db.write() as conn:
                await conn.execute(
                    insert(Bot).values(
                        name=name,
                        telegram_id=identity.id,
                        username=identity.username,
                        api_base=api_base,
                        token_secret=secret,
                        status="active",
                        update_offset=0,
                    )
                )
        except BaseException:
            self.secrets.delete(secret)
            raise
        return await self.get(name)

    async def get(self, name: str) -> BotRecord:
        async with self.db.read() as conn:
            row = (await conn.execute(select(Bot.__table__).where(Bot.name == name))).first()
        if row is None:
            raise NotFoundError(f"no bot named '{name}' (see `botdesk bot list`)")
        return _record(row)

    async def list(self) -> list[BotRecord]:
        async with self.db.read() as conn:
            rows = (await conn.execute(select(Bot.__table__).order_by(Bot.name))).all()
        return [_record(r) for r in rows]

    async def remove(self, name: str) -> None:
        rec = await self.get(name)
        async with self.db.write() as conn:
            await conn.execute(delete(Bot).where(Bot.id == rec.id))
        from botdesk.errors import SecretNotFound

        try:
            self.secrets.delete(rec.token_secret)
        except SecretNotFound:
            pass

    def token(self, rec: BotRecord) -> str:
        return self.secrets.get(rec.token_secret)

    async def set_status(self, name: str, status: str, reason: str | None = None) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                update(Bot).where(Bot.name == name).values(status=status, status_reason=reason)
            )
