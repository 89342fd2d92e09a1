"""Redaction of secrets in text: the one place that knows what a secret looks like.

Owns ``Redactor`` (pattern rules plus registered known values), the process-wide
``REDACTOR`` and ``format_exception_redacted``. Logging (``botdesk.log``), CLI error
output and anything else that turns data into text for humans runs it through here.

Rules, applied in this order, each match replaced by ``***``:

1. every registered value (``Redactor.add``), in its raw, percent-encoded and
   JSON-escaped spellings, longest first;
2. ``bot<token>`` segments of Bot API URLs (``/bot123:abc/getMe`` -> ``/bot***/getMe``),
   whatever the token's length, and ``file/bot<token>`` alike;
3. Telegram bot tokens anywhere (``\\d{5,}:[A-Za-z0-9_-]{30,}``);
4. Google API keys (``AIza...``) and ``sk-...`` keys (OpenAI-style providers);
5. credentials in HTTP shapes: ``Bearer <x>``, ``Authorization: <x>``,
   ``x-goog-api-key: <x>`` and ``key=``/``api_key=``/``token=``/``access_token=``
   query parameters (the name is kept, the value is hidden).
"""

from __future__ import annotations

import json
import re
import threading
import traceback
from collections.abc import Iterable
from urllib.parse import quote

MASK = "***"
MIN_SECRET_LENGTH = 6

# Bot API URLs carry the token in the path; the id part is kept out of logs too because
# "bot<id>:<anything>" is the whole credential in Telegram's eyes. ":" may be %3A-encoded.
_BOT_URL_SEGMENT = re.compile(r"(/bot)(?:\d+|\*\*\*)?(?::|%3[Aa])[^/\s?#\"'<>]*")
_BOT_TOKEN = re.compile(r"\d{5,}:[A-Za-z0-9_-]{30,}")
_GOOGLE_KEY = re.compile(r"AIza[0-9A-Za-z_-]{30,}")
_SK_KEY = re.compile(r"\bsk-[A-Za-z0-9_-]{16,}")
_BEARER = re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]+")
_AUTH_HEADER = re.compile(
    r"(?i)(\b(?:authorization|proxy-authorization)[\"']?\s*[:=]\s*[\"']?(?:basic\s+|token\s+)?)"
    r"(?!bearer\b)(?!\*\*\*)[^\s\"',;}]+"
)
_GOOG_HEADER = re.compile(r"(?i)(\bx-goog-api-key[\"']?\s*[:=]\s*[\"']?)(?!\*\*\*)[^\s\"',;}&]+")
_QUERY_KEY = re.compile(
    r"(?i)([?&;](?:key|api_key|apikey|api-key|token|access_token|secret)=)[^&\s#\"'<>]+"
)

_PATTERN_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (_BOT_URL_SEGMENT, r"\1" + MASK),
    (_BOT_TOKEN, MASK),
    (_GOOGLE_KEY, MASK),
    (_SK_KEY, MASK),
    (_BEARER, r"\1" + MASK),
    (_AUTH_HEADER, r"\1" + MASK),
    (_GOOG_HEADER, r"\1" + MASK),
    (_QUERY_KEY, r"\1" + MASK),
)


def _spellings(value: str) -> set[str]:
    """The forms a value takes once it passes through URLs, JSON or repr()."""
    forms = {value, quote(value, safe=""), json.dumps(value)[1:-1]}
    forms.add(repr(value)[1:-1])
    return {f for f in forms if len(f) >= MIN_SECRET_LENGTH}


class Redactor:
    """Replaces secrets in text with ``***``. Thread-safe.

    ``add`` may run from any thread while others call ``redact``: the compiled pattern
    is swapped atomically, so a reader sees either the old or the new set of values.
    """

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._known: re.Pattern[str] | None = None
        for value in values:
            self.add(value)

    def add(self, value: str) -> None:
        """Register a known secret; values shorter than 6 characters are ignored.

        Short values would turn ordinary words in logs into ``***`` and hide nothing
        worth hiding: no real token or key is that short.
        """
        if not isinstance(value, str):
            raise TypeError(f"Redactor.add expects str, got {type(value).__name__}")
        value = value.strip()
        if len(value) < MIN_SECRET_LENGTH:
            return
        with self._lock:
            new = _spellings(value) - self._values
            if not new:
                return
            self._values |= new
            # Longest first so a value that contains another is hidden whole.
            ordered = sorted(self._values, key=len, reverse=True)
            self._known = re.compile("|".join(re.escape(v) for v in ordered))

    def add_many(self, values: Iterable[str]) -> None:
        for value in values:
            self.add(value)

    def __len__(self) -> int:
        return len(self._values)

    def redact(self, text: str) -> str:
        """Return ``text`` with every known value and every secret-shaped string masked."""
        if not text:
            return text
        known = self._known
        if known is not None:
            text = known.sub(MASK, text)
        for pattern, replacement in _PATTERN_RULES:
            text = pattern.sub(replacement, text)
        return text


REDACTOR = Redactor()


def redact(text: str) -> str:
    """Redact ``text`` with the process-wide ``REDACTOR``."""
    return REDACTOR.redact(text)


def format_exception_redacted(exc: BaseException, *, redactor: Redactor | None = None) -> str:
    """The full traceback of ``exc`` (causes, context and notes included), redacted.

    Frames can show source lines and exception messages that hold tokens (a URL in an
    aiohttp error, a token in an f-string), so the whole text is redacted, not just
    ``str(exc)``.
    """
    text = "".join(traceback.format_exception(exc))
    return (redactor or REDACTOR).redact(text)
