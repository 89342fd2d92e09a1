"""Message templates: personal variables, escaping for the parse mode, Telegram's markup rules.

Owns the template syntax (``{first_name}``, ``{field|default}``, ``{{``/``}}`` for literal
braces), rendering with values escaped for the parse mode, and a parser of Telegram's HTML and
MarkdownV2 that rejects what Telegram would reject ("can't parse entities: ...") and measures
the visible text in UTF-16 code units, the unit of Telegram's 4096/1024 limits.

The parsers follow the Bot API's "Formatting options" and the behaviour of Telegram's own
parser: in HTML only the documented tags are accepted, ``<`` always starts a tag, and an ``&``
that does not start a known entity is a literal; in MarkdownV2 every reserved character outside
an entity must be escaped, markers close only the innermost open entity, and anything left open
is an error. Visible length is measured before Telegram trims surrounding whitespace, so it is
never below Telegram's own count.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from botdesk.errors import TemplateError

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
BUILTIN_VARIABLES: frozenset[str] = frozenset({"first_name", "username", "language", "chat_id"})


class ParseMode(StrEnum):
    PLAIN = "plain"
    HTML = "html"
    MARKDOWNV2 = "markdownv2"


def _mode(parse_mode: ParseMode | str | None) -> ParseMode:
    if parse_mode is None:
        return ParseMode.PLAIN
    try:
        return ParseMode(str(parse_mode).lower())
    except ValueError:
        raise TemplateError(
            f"unknown parse mode {parse_mode!r} (use html, markdownv2 or plain)"
        ) from None


# -- template syntax ---------------------------------------------------------------------------

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class _Var:
    name: str
    default: str | None


_Piece = str | _Var


@lru_cache(maxsize=256)
def _parse_template(template: str) -> tuple[_Piece, ...]:
    pieces: list[_Piece] = []
    literal: list[str] = []
    i, n = 0, len(template)
    while i < n:
        c = template[i]
        if c == "{" and template.startswith("{{", i):
            literal.append("{")
            i += 2
        elif c == "}" and template.startswith("}}", i):
            literal.append("}")
            i += 2
        elif c == "}":
            raise TemplateError(f"single '}}' at position {i}: write '}}}}' for a literal brace")
        elif c == "{":
            end = template.find("}", i + 1)
            if end < 0:
                raise TemplateError(f"unclosed '{{' at position {i}: write '{{{{' for a literal")
            body = template[i + 1 : end]
            name, bar, default = body.partition("|")
            name = name.strip()
            if not _NAME.match(name):
                raise TemplateError(f"invalid variable {{{body}}} at position {i}")
            if literal:
                pieces.append("".join(literal))
                literal = []
            pieces.append(_Var(name, default if bar else None))
            i = end + 1
        else:
            literal.append(c)
            i += 1
    if literal:
        pieces.append("".join(literal))
    return tuple(pieces)


def variables(template: str) -> set[str]:
    """Names of the variables a template uses."""
    return {p.name for p in _parse_template(template) if isinstance(p, _Var)}


def check_variables(template: str, known_fields: Iterable[str] = ()) -> None:
    """Raise ``TemplateError`` naming any variable that is neither built in nor known."""
    known = BUILTIN_VARIABLES | set(known_fields)
    unknown = variables(template) - known
    if unknown:
        raise TemplateError(
            f"unknown variable{'s' if len(unknown) > 1 else ''} "
            + ", ".join("{" + u + "}" for u in sorted(unknown))
            + "; known: "
            + ", ".join(sorted(known))
        )


_MDV2_SPECIAL = re.compile(r"([_*\[\]()~`>#+\-=|{}.!\\])")


def escape(value: str, *, parse_mode: ParseMode | str | None) -> str:
    """Escape a value so it is literal text in the parse mode (valid in text, code and links)."""
    mode = _mode(parse_mode)
    if mode is ParseMode.HTML:
        return html.escape(value, quote=True)
    if mode is ParseMode.MARKDOWNV2:
        return _MDV2_SPECIAL.sub(r"\\\1", value)
    return value


def render(
    template: str, values: Mapping[str, str | None], *, parse_mode: ParseMode | str | None
) -> str:
    """Fill the variables, each escaped for the parse mode; a missing value is its default or ""."""
    mode = _mode(parse_mode)
    pieces = _parse_template(template)
    out: list[str] = []
    for k, piece in enumerate(pieces):
        if isinstance(piece, str):
            out.append(piece)
            continue
        value = values.get(piece.name)
        if value is None or value == "":
            value = piece.default or ""
        rendered = escape(str(value), parse_mode=mode)
        if not rendered and mode is ParseMode.MARKDOWNV2 and _joins_underscores(out, pieces, k):
            # "_{v}_" with an empty value would read "__" (underline); Telegram's documented
            # separator is an empty bold entity.
            rendered = "**"
        out.append(rendered)
    return "".join(out)


def _joins_underscores(out: list[str], pieces: tuple[_Piece, ...], k: int) -> bool:
    before = "".join(out)
    after = next((p for p in pieces[k + 1 :] if isinstance(p, str)), "")
    return before.endswith("_") and after.startswith("_")


# -- markup --------------------------------------------------------------------------------------


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _fail(text: str, i: int, what: str) -> TemplateError:
    offset = len(text[:i].encode("utf-8"))
    return TemplateError(f"can't parse entities: {what} at byte offset {offset}")


def visible_text(text: str, *, parse_mode: ParseMode | str | None) -> str:
    """The text Telegram shows once the markup is parsed; raises like Telegram would."""
    mode = _mode(parse_mode)
    if mode is ParseMode.HTML:
        return _html_visible(text)
    if mode is ParseMode.MARKDOWNV2:
        return _mdv2_visible(text)
    return text


def visible_length(text: str, *, parse_mode: ParseMode | str | None) -> int:
    """Length of the visible text in UTF-16 code units (Telegram's unit for its limits)."""
    return utf16_len(visible_text(text, parse_mode=parse_mode))


def validate(
    template: str,
    *,
    parse_mode: ParseMode | str | None,
    known_fields: Iterable[str] = (),
    sample_values: Mapping[str, str | None] | None = None,
    limit: int | None = TEXT_LIMIT,
) -> None:
    """Check the variables, then render with ``sample_values`` and check markup and length."""
    check_variables(template, known_fields)
    text = render(template, sample_values or {}, parse_mode=parse_mode)
    n = visible_length(text, parse_mode=parse_mode)
    if limit is not None and n > limit:
        raise TemplateError(f"the text is {n} characters after formatting; Telegram allows {limit}")


# HTML ------------------------------------------------------------------------------------------

_HTML_TAGS = frozenset(
    {
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "a",
        "code",
        "pre",
        "blockquote",
        "tg-emoji",
    }
)
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ENTITY = re.compile(r"&(?:#([0-9]{1,7})|#[xX]([0-9a-fA-F]{1,6})|([a-zA-Z]+));")
_TAG_NAME = re.compile(r"[a-zA-Z0-9-]+")
_ATTR = re.compile(r"\s*([a-zA-Z0-9_-]+)(?:\s*=\s*(\"[^\"]*\"|'[^']*'|[^\s\"'>]+))?")


def _decode_entity(text: str, i: int) -> tuple[str, int] | None:
    m = _ENTITY.match(text, i)
    if m is None:
        return None
    dec, hexa, name = m.groups()
    if name is not None:
        ch = _NAMED_ENTITIES.get(name)
        return (ch, m.end()) if ch is not None else None
    code = int(dec) if dec is not None else int(hexa, 16)
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return None
    return chr(code), m.end()


def _html_visible(text: str) -> str:
    out: list[str] = []
    stack: list[tuple[str, int]] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "&":
            decoded = _decode_entity(text, i)
            if decoded is not None:
                out.append(decoded[0])
                i = decoded[1]
                continue
            out.append(c)  # Telegram keeps an '&' that starts no known entity
            i += 1
            continue
        if c != "<":
            out.append(c)
            i += 1
            continue
        close = text.find(">", i)
        if close < 0:
            raise _fail(text, i, "unclosed start tag")
        if text.startswith("</", i):
            name = text[i + 2 : close].strip().lower()
            if not stack:
                raise _fail(text, i, f'unexpected end tag "{name}"')
            open_name, _ = stack.pop()
            if name != open_name:
                raise _fail(
                    text,
                    i,
                    f'unmatched end tag, expected "</{open_name}>", found "</{name}>"',
                )
            i = close + 1
            continue
        m = _TAG_NAME.match(text, i + 1)
        if m is None:
            raise _fail(text, i, "empty tag name")
        name = m.group().lower()
        if name not in _HTML_TAGS:
            raise _fail(text, i, f'unsupported start tag "{name}"')
        attrs = text[m.end() : close]
        if attrs.rstrip().endswith("/"):
            raise _fail(text, i, f'unsupported self-closing tag "{name}"')
        pos = 0
        while pos < len(attrs) and attrs[pos:].strip():
            am = _ATTR.match(attrs, pos)
            if am is None or am.end() == pos:
                raise _fail(text, i, f'invalid attributes in tag "{name}"')
            pos = am.end()
        if name == "span" and not re.search(r"class\s*=\s*[\"']?tg-spoiler", attrs):
            raise _fail(text, i, 'tag "span" must have class "tg-spoiler"')
        stack.append((name, i))
        i = close + 1
    if stack:
        name, at = stack[-1]
        raise _fail(text, at, f'can\'t find end tag corresponding to start tag "{name}"')
    return "".join(out)


# MarkdownV2 ------------------------------------------------------------------------------------

_MDV2_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")
_PRE_LANGUAGE = re.compile(r"[A-Za-z0-9_+#.-]*")


def _mdv2_code(text: str, i: int, fence: str, out: list[str]) -> int:
    """Consume a code/pre entity starting at ``i`` (just after the fence); return the end."""
    n = len(text)
    j = i
    if fence == "```":
        # A first line that looks like a language name is the block's language, not text.
        nl = text.find("\n", i)
        if nl >= 0 and _PRE_LANGUAGE.fullmatch(text, i, nl):
            j = nl + 1
    body: list[str] = []
    while j < n:
        if text[j] == "\\" and j + 1 < n and 1 <= ord(text[j + 1]) <= 126:
            body.append(text[j + 1])
            j += 2
            continue
        if text.startswith(fence, j):
            out.append("".join(body))
            return j + len(fence)
        body.append(text[j])
        j += 1
    kind = "pre" if fence == "```" else "code"
    raise _fail(text, i - len(fence), f"can't find end of {kind} entity")


def _mdv2_url(text: str, i: int) -> int:
    """Skip the (url) part starting at ``i`` ('('); return the index after ')'."""
    n = len(text)
    j = i + 1
    while j < n:
        if text[j] == "\\" and j + 1 < n:
            j += 2
            continue
        if text[j] == ")":
            return j + 1
        j += 1
    raise _fail(text, i, "can't find end of a url")


def _mdv2_visible(text: str) -> str:
    out: list[str] = []
    stack: list[tuple[str, int]] = []  # (marker, position)
    i, n = 0, len(text)
    line_start = True
    while i < n:
        c = text[i]
        if line_start:
            line_start = False
            if text.startswith("**>", i):
                i += 3
                continue
            if c == ">":
                i += 1
                continue
        if c == "\\":
            if i + 1 < n and 1 <= ord(text[i + 1]) <= 126:
                out.append(text[i + 1])
                line_start = text[i + 1] == "\n"
                i += 2
                continue
            # Telegram keeps a backslash that escapes nothing escapable.
            out.append(c)
            i += 1
            continue
        if c == "\n":
            out.append(c)
            line_start = True
            i += 1
            continue
        if c not in _MDV2_RESERVED:
            out.append(c)
            i += 1
            continue
        if c == "`":
            fence = "```" if text.startswith("```", i) else "`"
            i = _mdv2_code(text, i + len(fence), fence, out)
            continue
        marker: str | None = None
        if c == "_":
            marker = "__" if text.startswith("__", i) else "_"
        elif c in "*~":
            marker = c
        elif c == "|" and text.startswith("||", i):
            marker = "||"
        if marker is not None:
            end = i + len(marker)
            if stack and stack[-1][0] == marker:
                stack.pop()
            elif marker == "||" and (end == n or text[end] == "\n"):
                pass  # the mark that ends an expandable blockquote, not a spoiler
            else:
                stack.append((marker, i))
            i = end
            continue
        if c == "[" or (c == "!" and text.startswith("![", i)):
            stack.append(("[" if c == "[" else "![", i))
            i += 1 if c == "[" else 2
            continue
        if c == "]" and stack and stack[-1][0] in ("[", "!["):
            marker, _ = stack.pop()
            i += 1
            url_start = i
            if i < n and text[i] == "(":
                i = _mdv2_url(text, i)
            if marker == "![" and not text.startswith("(tg://emoji?id=", url_start):
                raise _fail(text, url_start, "custom emoji entity must contain a tg://emoji URL")
            continue
        raise _fail(
            text, i, f"character '{c}' is reserved and must be escaped with the preceding '\\'"
        )
    if stack:
        marker, at = stack[-1]
        names = {
            "_": "italic",
            "__": "underline",
            "*": "bold",
            "~": "strikethrough",
            "||": "spoiler",
            "[": "text url",
            "![": "custom emoji",
        }
        raise _fail(text, at, f"can't find end of {names.get(marker, marker)} entity")
    return "".join(out)
