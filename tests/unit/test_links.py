"""Tracked-link tokens: genuine ones verify; forged, altered, re-keyed or expired ones do not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from botdesk.links import LINK_KEY_SECRET, LinkRefused, LinkSigner, _b64, _unb64, load_key

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
SIGNER = LinkSigner(key=b"k" * 32, base_url="https://example.org/hook/r/", ttl=timedelta(days=1))


def test_round_trip_and_url() -> None:
    tok = SIGNER.token(123456, 2, now=NOW)
    claim = SIGNER.verify(tok, now=NOW + timedelta(hours=23))
    assert (claim.delivery_id, claim.button) == (123456, 2)
    assert SIGNER.url(1, 0, now=NOW).startswith("https://example.org/hook/r/")
    assert len(tok) < 64


def test_expired_refused_as_expired() -> None:
    tok = SIGNER.token(7, 0, now=NOW)
    with pytest.raises(LinkRefused) as err:
        SIGNER.verify(tok, now=NOW + timedelta(days=1, seconds=1))
    assert err.value.expired


@pytest.mark.parametrize("where", [0, 8, 9, 12, 13, 28])
def test_any_altered_byte_is_refused(where: int) -> None:
    raw = bytearray(_unb64(SIGNER.token(7, 1, now=NOW)))
    raw[where] ^= 0x01
    with pytest.raises(LinkRefused) as err:
        SIGNER.verify(_b64(bytes(raw)), now=NOW)
    assert not err.value.expired


def test_other_key_and_garbage_refused() -> None:
    other = LinkSigner(key=b"x" * 32, base_url=SIGNER.base_url)
    forged = other.token(7, 1, now=NOW)
    for tok in (forged, "", "abc", "!!!!", SIGNER.token(7, 1, now=NOW)[:-2]):
        with pytest.raises(LinkRefused):
            SIGNER.verify(tok, now=NOW)


def test_key_generated_once_in_the_store() -> None:
    from botdesk.errors import SecretNotFound

    class Store:
        def __init__(self) -> None:
            self.data: dict[str, str] = {}

        def get(self, name: str) -> str:
            if name not in self.data:
                raise SecretNotFound(name)
            return self.data[name]

        def set(self, name: str, value: str) -> None:
            self.data[name] = value

    store = Store()
    first = load_key(store)
    assert len(first) >= 32 and store.data[LINK_KEY_SECRET] == first.decode()
    assert load_key(store) == first
