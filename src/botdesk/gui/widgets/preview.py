"""The composer's preview: the message as a Telegram client shows it.

The text is first rendered by botdesk's own template engine (``delivery.templates.render``)
with the chosen subscriber's values, exactly as the engine will send it; then the parse
mode's entities (bold, italic, underline, strike, spoiler, code, pre, links, quotes) become
Qt rich text inside a chat bubble, with the photo or document above and the buttons under
it. Validation is not done here: the composer shows ``Campaigns.validate``'s errors.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from PySide6.QtWidgets import QTextBrowser

from botdesk.delivery import templates

_MDV2 = re.compile(
    r"```(?:[^\n`]*\n)?(?P<pre>.*?)```"
    r"|`(?P<code>(?:\\.|[^`])*)`"
    r"|\|\|(?P<spoiler>.*?)\|\|"
    r"|\*(?P<b>(?:\\.|[^*])+)\*"
    r"|__(?P<u>(?:\\.|[^_])+)__"
    r"|_(?P<i>(?:\\.|[^_])+)_"
    r"|~(?P<s>(?:\\.|[^~])+)~"
    r"|\[(?P<lt>(?:\\.|[^\]])*)\]\((?P<lu>(?:\\.|[^)])*)\)",
    re.S,
)
_UNESCAPE = re.compile(r"\\(.)")


def _plain(s: str) -> str:
    return html.escape(_UNESCAPE.sub(r"\1", s))


def mdv2_to_html(text: str) -> str:
    """MarkdownV2 entities as HTML (nested entities one level deep, as most messages use)."""
    out: list[str] = []
    pos = 0
    for m in _MDV2.finditer(text):
        out.append(_plain(text[pos : m.start()]))
        pos = m.end()
        g = m.groupdict()
        if g["pre"] is not None:
            out.append(f"<pre>{_plain(g['pre'])}</pre>")
        elif g["code"] is not None:
            out.append(f"<code>{_plain(g['code'])}</code>")
        elif g["spoiler"] is not None:
            out.append(
                f'<span style="background:#888;color:#888">{mdv2_to_html(g["spoiler"])}</span>'
            )
        elif g["lt"] is not None:
            url = html.escape(_UNESCAPE.sub(r"\1", g["lu"]))
            out.append(f'<a href="{url}">{mdv2_to_html(g["lt"])}</a>')
        else:
            tag = next(t for t in ("b", "u", "i", "s") if g[t] is not None)
            out.append(f"<{tag}>{mdv2_to_html(g[tag])}</{tag}>")
    out.append(_plain(text[pos:]))
    return "".join(out)


_TG_HTML = (
    (
        re.compile(r"<tg-spoiler>(.*?)</tg-spoiler>", re.S),
        r'<span style="background:#888;color:#888">\1</span>',
    ),
    (
        re.compile(r'<span class="tg-spoiler">(.*?)</span>', re.S),
        r'<span style="background:#888;color:#888">\1</span>',
    ),
    (
        re.compile(r"<blockquote[^>]*>", re.S),
        '<blockquote style="border-left:3px solid #5da3e8;margin-left:4px;padding-left:6px">',
    ),
    (re.compile(r"<tg-emoji[^>]*>(.*?)</tg-emoji>", re.S), r"\1"),
    (
        re.compile(r"<(/?)(strong|em|ins|del|strike)>"),
        lambda m: (
            "<"
            + m.group(1)
            + {"strong": "b", "em": "i", "ins": "u", "del": "s", "strike": "s"}[m.group(2)]
            + ">"
        ),
    ),
)


def body_html(text: str, parse_mode: str) -> str:
    """The message body as Qt rich text, line breaks kept."""
    if parse_mode == "html":
        body = text
        for rx, rep in _TG_HTML:
            body = rx.sub(rep, body)  # type: ignore[arg-type]
    elif parse_mode == "markdownv2":
        body = mdv2_to_html(text)
    else:
        body = html.escape(text)
    return body.replace("\n", "<br>")


def message_html(
    text: str,
    *,
    parse_mode: str,
    values: dict[str, str | None],
    buttons: list[tuple[str, str]],
    photo: Path | None = None,
    document: Path | None = None,
    dark: bool = False,
) -> str:
    """The whole bubble: media, rendered text, buttons."""
    rendered = templates.render(text, values, parse_mode=parse_mode)
    bubble = "#2b5278" if dark else "#ffffff"
    fg = "#f5f5f5" if dark else "#000000"
    parts = []
    if photo is not None and photo.is_file():
        parts.append(f'<img src="{html.escape(photo.as_uri())}" width="320"><br>')
    if document is not None:
        parts.append(f"<p>📄 <b>{html.escape(document.name)}</b></p>")
    parts.append(body_html(rendered, parse_mode))
    rows = "".join(
        f'<tr><td align="center" style="background:#5da3e8;color:white;padding:6px">'
        # Telegram marks a URL button with an arrow; a callback button has none.
        f"{html.escape(label)}{'' if target.startswith('cb:') else ' ↗'}</td></tr>"
        for label, target in buttons
    )
    table = f'<table width="100%" cellspacing="4">{rows}</table>' if rows else ""
    return (
        f'<table width="100%" cellpadding="10" style="background:{bubble};color:{fg}">'
        f"<tr><td>{''.join(parts)}</td></tr></table>{table}"
    )


class MessagePreview(QTextBrowser):
    def __init__(self, parent: object = None) -> None:
        super().__init__(parent)  # type: ignore[arg-type]
        self.setObjectName("preview")
        self.setOpenLinks(False)
        self.setMinimumWidth(300)

    def show_message(self, html_text: str) -> None:
        self.setHtml(html_text)

    def show_problem(self, line: str) -> None:
        self.setHtml(f'<p style="color:#888"><i>{html.escape(line)}</i></p>')
