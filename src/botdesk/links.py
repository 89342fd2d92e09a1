"""Signed tracked-link tokens: which recipient's delivery, which button, until when.

A token is ``base64url(delivery id, button index, expiry) + HMAC-SHA256`` over those bytes
with a key kept in the secret store (``LINK_KEY_SECRET``, generated once). Nobody without the
key can make a token for another recipient or change the button or the expiry; the id is
not secret, the signature is what counts. The MAC is truncated to 128 bits, which keeps the
link short and forgery still out of reach (2^-128 per guess).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as _random
import struct
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from botdesk.errors import BotdeskError

LINK_KEY_SECRET = "link_signing_key"
DEFAULT_LINK_TTL = timedelta(days=30)
MAC_BYTES = 16
_PAYLOAD = struct.Struct(">QBI")  # delivery id, button index, expiry (unix seconds)
_DOMAIN = b"botdesk-link-v1"


class LinkRefused(BotdeskError):
    """A token that is forged, altered or malformed (``expired`` False) or out of date."""

    def __init__(self, reason: str, *, expired: bool = False) -> None:
        super().__init__(reason)
        self.expired = expired


class _Secrets(Protocol):
    def get(self, name: str) -> str: ...

    def set(self, name: str, value: str) -> None: ...


def load_key(store: _Secrets) -> bytes:
    """The signing key from the secret store, generated and stored on first use."""
    from botdesk.errors import SecretNotFound

    try:
        value = store.get(LINK_KEY_SECRET)
    except SecretNotFound:
        value = _random.token_urlsafe(32)
        store.set(LINK_KEY_SECRET, value)
    return value.encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class LinkClaim:
    delivery_id: int
    button: int
    expires_at: int


@dataclass(frozen=True)
class LinkSigner:
    key: bytes
    base_url: str  # where the redirect endpoint answers, e.g. https://host/hook/r/
    ttl: timedelta = DEFAULT_LINK_TTL

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self.key, _DOMAIN + payload, hashlib.sha256).digest()[:MAC_BYTES]

    def token(self, delivery_id: int, button: int, *, now: datetime) -> str:
        expires = int((now + self.ttl).timestamp())
        payload = _PAYLOAD.pack(delivery_id, button, expires)
        return _b64(payload + self._mac(payload))

    def url(self, delivery_id: int, button: int, *, now: datetime) -> str:
        return self.base_url + self.token(delivery_id, button, now=now)

    def verify(self, token: str, *, now: datetime) -> LinkClaim:
        """The claim of a genuine, current token; ``LinkRefused`` otherwise."""
        try:
            raw = _unb64(token)
        except (binascii.Error, ValueError):
            raise LinkRefused("malformed link") from None
        if len(raw) != _PAYLOAD.size + MAC_BYTES:
            raise LinkRefused("malformed link")
        payload, mac = raw[: _PAYLOAD.size], raw[_PAYLOAD.size :]
        if not hmac.compare_digest(mac, self._mac(payload)):
            raise LinkRefused("bad signature")
        delivery_id, button, expires = _PAYLOAD.unpack(payload)
        if now.timestamp() > expires:
            raise LinkRefused("link expired", expired=True)
        return LinkClaim(delivery_id, button, expires)
