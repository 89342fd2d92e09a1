"""A subscriber's time zone: an IANA name (``Europe/Berlin``), checked before it is stored.

Telegram does not tell a bot the user's zone; botdesk knows it when the operator imports it
(``subscribers import``, a ``timezone`` column), sets it (``subscribers set-timezone``), or the
subscriber picks it on a menu button (``cb:tz=ZONE``, a rules menu's ``timezone:``). It is
stored in ``subscribers.timezone`` and read by the sequence schedule (quiet hours) and the
segment language (``tz:``).
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from botdesk.errors import ValidationError

MAX_LENGTH = 64


def is_zone(name: object) -> bool:
    """True for a time zone name the system's zone database knows."""
    if not isinstance(name, str) or not name or len(name) > MAX_LENGTH or name != name.strip():
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def check_zone(name: str) -> str:
    """``name`` if it is a known IANA time zone, else ``ValidationError`` saying so."""
    if not is_zone(name):
        raise ValidationError(
            f"unknown time zone {name[:70]!r} (an IANA name such as Europe/Berlin)"
        )
    return name
