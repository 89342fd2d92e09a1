"""Formatting parsers: HTML, MarkdownV2 and legacy Markdown into (text, entities).

Offsets and lengths are in UTF-16 code units, as in the Bot API; error messages carry
the UTF-8 byte offset into the source, as Telegram's do. The parsers follow Telegram's
documented rules closely enough to reject what Telegram rejects; see docs/sandbox.md for
the known gaps (no text_mention users, blockquotes simplified).
"""

from __future__ import annotations

import re
from typing import Any

Entity = dict[str, Any]

MDV2_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")
_HTML_ENTITY = re.compile(r"&(#[xX][0-9a-fA-F]{1,8}|#[0-9]{1,8}|[a-zA-Z]{2,8});")
_HTML_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'", "nbsp": "\u00a0"}
_TAG_NAME = re.compile(r"[a-zA-Z0-9-]*")
_ATTR = re.compile(r"""\s*([a-zA-Z0-9_-]+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s>"']+))?""")
_HTML_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "tg-emoji": "custom_emoji",
    "blockquote": "blockquote",
}
_MDV2_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "code": "Code",
    "pre": "Pre",
    "text_link": "TextUrl",
    "custom_emoji": "CustomEmoji",
}
_LANGUAGE = re.compile(r"[A-Za-z0-9_+#.-]*")


class EntityParseError(ValueError):
    """Telegram's "can't parse entities" detail (without the "Bad Request" prefix)."""


def utf16_len(text: str) -> int:
    # Characters outside the BMP take two UTF-16 code units; counting them beats encoding.
    n = len(text)
    if text.isascii():
        return n
    return n + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _byte_offset(src: str, index: int) -> int:
    return len(src[:index].encode("utf-8", "surrogatepass"))


def escape_html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_markdown_v2(text: str) -> str:
    return "".join("\\" + ch if ch in MDV2_RESERVED or ch == "\\" else ch for ch in text)


class _Out:
    """Accumulates visible text and tracks its UTF-16 length as it grows."""

    __slots__ = ("entities", "parts", "pos")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.pos = 0
        self.entities: list[Entity] = []

    def add(self, ch: str) -> None:
        self.parts.append(ch)
        self.pos += 2 if ord(ch) > 0xFFFF else 1

    def entity(self, kind: str, start: int, **extra: Any) -> None:
        if self.pos > start:
            self.entities.append(
                {"type": kind, "offset": start, "length": self.pos - start, **extra}
            )

    def result(self) -> tuple[str, list[Entity]]:
        self.entities.sort(key=lambda e: (e["offset"], -e["length"]))
        return "".join(self.parts), self.entities


def parse(text: str, parse_mode: str | None) -> tuple[str, list[Entity]]:
    """Parse ``text`` in ``parse_mode`` (case-insensitive; None or "" = plain text)."""
    if not parse_mode:
        return text, []
    mode = parse_mode.lower()
    if mode == "html":
        return parse_html(text)
    if mode == "markdownv2":
        return parse_markdown_v2(text)
    if mode == "markdown":
        return parse_markdown(text)
    raise ValueError(parse_mode)


# --- HTML --------------------------------------------------------------------------------


def parse_html(src: str) -> tuple[str, list[Entity]]:
    out = _Out()
    stack: list[tuple[str, int, dict[str, Any]]] = []  # (tag, start, entity extras)
    i, n = 0, len(src)
    while i < n:
        ch = src[i]
        if ch == "&":
            m = _HTML_ENTITY.match(src, i)
            decoded = _decode_entity(m.group(1)) if m else None
            if m and decoded is not None:
                for c in decoded:
                    out.add(c)
                i = m.end()
            else:
                out.add("&")
                i += 1
        elif ch == "<":
            i = _html_tag(src, i, out, stack)
        else:
            out.add(ch)
            i += 1
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    return out.result()


def _decode_entity(name: str) -> str | None:
    if name[0] == "#":
        try:
            code = int(name[2:], 16) if name[1] in "xX" else int(name[1:])
        except ValueError:
            return None
        if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF:
            return chr(code)
        return None
    return _HTML_NAMED.get(name.lower())


def _unescape_attr(value: str) -> str:
    if value[:1] in "\"'":
        value = value[1:-1]
    return _HTML_ENTITY.sub(lambda m: _decode_entity(m.group(1)) or m.group(0), value)


def _html_tag(src: str, i: int, out: _Out, stack: list[tuple[str, int, dict[str, Any]]]) -> int:
    at = _byte_offset(src, i)
    if src.startswith("</", i):
        close = src.find(">", i)
        if close < 0:
            raise EntityParseError(f"Unclosed end tag at byte offset {at}")
        name = src[i + 2 : close].strip().lower()
        if not stack:
            raise EntityParseError(f"Unexpected end tag at byte offset {at}")
        tag, start, closed = stack.pop()
        if name != tag:
            raise EntityParseError(
                f'Unmatched end tag at byte offset {at}, expected "</{tag}>", found "</{name}>"'
            )
        kind = closed.pop("_type")
        parent = stack[-1][2] if stack else {}
        if parent.get("_type") in ("code", "pre"):
            # Nothing nests inside code; <pre><code class="language-x"> names pre's language.
            if kind == "code" and "language" in closed:
                parent["language"] = closed["language"]
        elif kind:
            out.entity(kind, start, **closed)
        return close + 1
    name = _TAG_NAME.match(src, i + 1).group(0).lower()  # type: ignore[union-attr]
    if name not in _HTML_TYPES:
        raise EntityParseError(f'Unsupported start tag "{name}" at byte offset {at}')
    j = i + 1 + len(name)
    attrs: dict[str, str] = {}
    while True:
        m = _ATTR.match(src, j)
        if not m or m.end() == j:
            break
        attrs[m.group(1).lower()] = _unescape_attr(m.group(2) or "")
        j = m.end()
    while j < len(src) and src[j].isspace():
        j += 1
    if j < len(src) and src[j] == "/":
        j += 1
    if j >= len(src) or src[j] != ">":
        raise EntityParseError(f"Unclosed start tag at byte offset {at}")
    extra: dict[str, Any] = {"_type": _HTML_TYPES[name]}
    if name == "span" and attrs.get("class") != "tg-spoiler":
        raise EntityParseError(f'Tag "span" must have class "tg-spoiler" at byte offset {at}')
    if name == "a":
        href = attrs.get("href", "")
        extra["url"] = href
        if not href:
            extra["_type"] = None  # an anchor without a link is plain text, as in Telegram
    elif name == "tg-emoji":
        emoji_id = attrs.get("emoji-id", "")
        if not emoji_id.isdigit():
            raise EntityParseError(f"Invalid custom emoji identifier specified at byte offset {at}")
        extra["custom_emoji_id"] = emoji_id
    elif name == "code" and attrs.get("class", "").startswith("language-"):
        extra["language"] = attrs["class"][len("language-") :]
    elif name == "blockquote" and "expandable" in attrs:
        extra["_type"] = "expandable_blockquote"
    stack.append((name, out.pos, extra))
    return j + 1


# --- MarkdownV2 --------------------------------------------------------------------------


def parse_markdown_v2(src: str) -> tuple[str, list[Entity]]:
    out = _Out()
    stack: list[_Open] = []
    quote_start = -1
    i, n = 0, len(src)
    while i < n:
        ch = src[i]
        if ch == "\\" and i + 1 < n and 0 < ord(src[i + 1]) <= 126:
            out.add(src[i + 1])
            i += 2
            continue
        top = stack[-1][0] if stack else None
        if top in ("code", "pre"):
            fence = "```" if top == "pre" else "`"
            if src.startswith(fence, i):
                _, start, _, extra = stack.pop()
                out.entity(top, start, **extra)
                i += len(fence)
            else:
                out.add(ch)
                i += 1
            continue
        if ch == ">" and (i == 0 or src[i - 1] == "\n"):
            if quote_start < 0:
                quote_start = out.pos
            i += 1
            continue
        if ch == "\n" and quote_start >= 0 and not src.startswith(">", i + 1):
            out.entity("blockquote", quote_start)
            quote_start = -1
        if ch not in MDV2_RESERVED:
            out.add(ch)
            i += 1
            continue
        i = _mdv2_token(src, i, out, stack)
    if stack:
        kind, _, index, _ = stack[-1]
        raise EntityParseError(
            f"Can't find end of {_MDV2_NAMES[kind]} entity at byte offset "
            f"{_byte_offset(src, index)}"
        )
    if quote_start >= 0:
        out.entity("blockquote", quote_start)
    return out.result()


# An open MarkdownV2 entity: (type, start in UTF-16, source index, entity extras).
_Open = tuple[str, int, int, dict[str, str]]

_MDV2_PAIRS = (
    ("__", "underline"),
    ("||", "spoiler"),
    ("_", "italic"),
    ("*", "bold"),
    ("~", "strikethrough"),
)


def _mdv2_token(src: str, i: int, out: _Out, stack: list[_Open]) -> int:
    ch = src[i]
    top = stack[-1][0] if stack else None
    if src.startswith("```", i):
        j = i + 3
        nl = src.find("\n", j)
        extra: dict[str, str] = {}
        if nl >= 0:
            lang = src[j:nl]
            if _LANGUAGE.fullmatch(lang):
                if lang:
                    extra["language"] = lang
                j = nl + 1
        stack.append(("pre", out.pos, i, extra))
        return j
    if ch == "`":
        stack.append(("code", out.pos, i, {}))
        return i + 1
    for token, kind in _MDV2_PAIRS:
        if src.startswith(token, i):
            if top == kind:
                _, start, _, _ = stack.pop()
                out.entity(kind, start)
            else:
                stack.append((kind, out.pos, i, {}))
            return i + len(token)
    if ch == "[" or (ch == "!" and src.startswith("![", i)):
        kind = "custom_emoji" if ch == "!" else "text_link"
        stack.append((kind, out.pos, i, {}))
        return i + (2 if ch == "!" else 1)
    if ch == "]" and top in ("text_link", "custom_emoji"):
        kind, start, _, _ = stack.pop()
        if not src.startswith("(", i + 1):
            if kind == "custom_emoji":
                raise EntityParseError(
                    f"Custom emoji entity must contain a tg://emoji URL at byte offset "
                    f"{_byte_offset(src, i)}"
                )
            return i + 1  # "[text]" with no URL stays plain text
        url, end = _mdv2_url(src, i + 2)
        if kind == "custom_emoji":
            if not url.startswith("tg://emoji?id="):
                raise EntityParseError(
                    f"Custom emoji URL must have an emoji identifier at byte offset "
                    f"{_byte_offset(src, i)}"
                )
            out.entity(kind, start, custom_emoji_id=url[len("tg://emoji?id=") :])
        elif url:
            out.entity(kind, start, url=url)
        return end
    raise EntityParseError(
        f"Character '{ch}' is reserved and must be escaped with the preceding '\\'"
    )


def _mdv2_url(src: str, i: int) -> tuple[str, int]:
    parts: list[str] = []
    n = len(src)
    while i < n:
        ch = src[i]
        if ch == "\\" and i + 1 < n and 0 < ord(src[i + 1]) <= 126:
            parts.append(src[i + 1])
            i += 2
        elif ch == ")":
            return "".join(parts), i + 1
        else:
            parts.append(ch)
            i += 1
    raise EntityParseError(f"Can't find end of a URL at byte offset {_byte_offset(src, i)}")


# --- legacy Markdown ---------------------------------------------------------------------


def parse_markdown(src: str) -> tuple[str, list[Entity]]:
    out = _Out()
    i, n = 0, len(src)
    while i < n:
        ch = src[i]
        if ch == "\\" and i + 1 < n and src[i + 1] in "_*`[":
            out.add(src[i + 1])
            i += 2
            continue
        if ch not in "_*`[":
            out.add(ch)
            i += 1
            continue
        at = _byte_offset(src, i)
        missing = EntityParseError(f"Can't find end of the entity starting at byte offset {at}")
        start = out.pos
        if src.startswith("```", i):
            j = i + 3
            end = src.find("```", j)
            if end < 0:
                raise missing
            body = src[j:end]
            pre_extra: dict[str, str] = {}
            first, nl, rest = body.partition("\n")
            if nl and _LANGUAGE.fullmatch(first):
                body = rest
                if first:
                    pre_extra["language"] = first
            for c in body:
                out.add(c)
            out.entity("pre", start, **pre_extra)
            i = end + 3
        elif ch == "[":
            close = src.find("]", i + 1)
            if close < 0:
                raise missing
            for c in src[i + 1 : close]:
                out.add(c)
            i = close + 1
            if src.startswith("(", i):
                end = src.find(")", i)
                if end < 0:
                    raise missing
                url = src[i + 1 : end]
                if url:
                    out.entity("text_link", start, url=url)
                i = end + 1
        else:
            end = src.find(ch, i + 1)
            if end < 0:
                raise missing
            for c in src[i + 1 : end]:
                out.add(c)
            out.entity({"_": "italic", "*": "bold", "`": "code"}[ch], start)
            i = end + 1
    return out.result()
