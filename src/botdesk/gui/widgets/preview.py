"""The composer's preview: the message as a Telegram client shows it.

The text is first rendered by botdesk's own template engine (``delivery.templates.render``)
with the chosen subscriber's values, exactly as the engine will send it; then the parse
mode's entities (bold, italic, underline, strike, spoiler, code, pre, links, quotes) become
Qt rich text inside a chat bubble, with the media above and the buttons under it: a photo's
thumbnail; a video, animation, audio or voice message as a placeholder with its file name,
size and duration when the file says it (MP4/M4A ``mvhd``, Ogg's last granule); an album as
a grid; a copy of an existing message as a card saying whose message goes out as it is (its
content is not known before it is sent). Badges above the bubble say silent / protected /
no link preview / rate cap. Validation is not done here: the composer shows
``Campaigns.validate``'s errors.
"""

from __future__ import annotations

import html
import re
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from PySide6.QtWidgets import QTextBrowser

from botdesk import media
from botdesk.campaigns import SendOptions
from botdesk.delivery import templates
from botdesk.errors import ValidationError

ICONS = {"document": "📄", "video": "🎬", "animation": "🎞", "audio": "🎵", "voice": "🎤"}

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


def _mp4_duration(fh: BinaryIO, end: int) -> float | None:
    """The movie header's duration (``moov/mvhd``) of an MP4/M4A/MOV file."""
    pos, want = 0, [b"moov", b"mvhd"]
    while pos + 8 <= end and want:
        fh.seek(pos)
        head = fh.read(8)
        if len(head) < 8:
            return None
        size, box = struct.unpack(">I4s", head)
        body = pos + 8
        if size == 1:
            size = struct.unpack(">Q", fh.read(8))[0]
            body += 8
        elif size == 0:
            size = end - pos
        if size < 8:
            return None
        if box == want[0]:
            want.pop(0)
            if not want:  # mvhd: version, flags, then times, timescale and duration
                version = fh.read(4)[0]
                if version == 1:
                    fh.read(16)
                    scale, dur = struct.unpack(">IQ", fh.read(12))
                else:
                    fh.read(8)
                    scale, dur = struct.unpack(">II", fh.read(8))
                return dur / scale if scale else None
            end, pos = pos + size, body  # into moov
            continue
        pos += size
    return None


def _ogg_duration(fh: BinaryIO, size: int) -> float | None:
    """Ogg Opus (48 kHz less its pre-skip) or Vorbis: the last page's granule position."""
    head = fh.read(512)
    if b"OpusHead" in head:
        i = head.index(b"OpusHead")
        rate, skip = 48000, struct.unpack("<H", head[i + 10 : i + 12])[0]
    elif b"\x01vorbis" in head:
        i = head.index(b"\x01vorbis")
        rate, skip = struct.unpack("<I", head[i + 12 : i + 16])[0], 0
    else:
        return None
    fh.seek(max(0, size - 65536))
    tail = fh.read()
    i = tail.rfind(b"OggS")
    if i < 0 or i + 14 > len(tail) or not rate:
        return None
    granule = struct.unpack("<q", tail[i + 6 : i + 14])[0]
    return max(0, granule - skip) / rate if granule >= 0 else None


def media_duration(path: Path) -> float | None:
    """Seconds of a video or audio file when its container says it cheaply, else None."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            if path.suffix.lower() in (".ogg", ".oga", ".opus"):
                return _ogg_duration(fh, size)
            if path.suffix.lower() in (".mp4", ".m4v", ".mov", ".m4a"):
                return _mp4_duration(fh, size)
    except (OSError, struct.error, IndexError):
        return None
    return None


def _size(n: int) -> str:
    return f"{n / 1048576:.1f} MB" if n >= 1048576 else f"{max(1, round(n / 1024))} KB"


def file_card(item: media.MediaItem, *, width: int = 320) -> str:
    """A photo's thumbnail, or a placeholder with the file's name, size and duration."""
    path = item.path
    if item.kind == "photo" and path.is_file():
        return f'<img src="{html.escape(path.as_uri())}" width="{width}">'
    facts = [item.kind]
    try:
        facts.append(_size(path.stat().st_size))
    except OSError:
        facts.append("file not found")
    if item.kind in ("video", "animation", "audio", "voice"):
        secs = media_duration(path)
        if secs is not None:
            facts.append(f"{int(secs // 60)}:{int(secs % 60):02d}")
    icon = ICONS.get(item.kind, "📄")
    play = "▶ " if item.kind in ("video", "animation") else ""
    return (
        f'<table width="{width}" cellpadding="8" style="background:#1f2a36;color:#f0f0f0">'
        f"<tr><td>{play}{icon} <b>{html.escape(path.name)}</b><br>"
        f'<span style="color:#b8c4d0">{html.escape(" · ".join(facts))}</span></td></tr></table>'
    )


def album_html(items: Sequence[media.MediaItem]) -> str:
    """The album's files in a grid of two columns, in their order."""
    cells = [f'<td valign="top">{file_card(i, width=150)}</td>' for i in items]
    rows = "".join(f"<tr>{''.join(cells[n : n + 2])}</tr>" for n in range(0, len(cells), 2))
    return f'<table cellspacing="4">{rows}</table>' if rows else "<p><i>no files yet</i></p>"


def copy_card(source: str, *, buttons: bool) -> str:
    """A copy's content is the source message's, unknown before sending: say whose."""
    try:
        src = media.parse_copy_source(source)
        what = f"Copy of message {src.message_id} from chat {html.escape(str(src.chat))}"
    except ValidationError:
        what = f"Copy of {html.escape(source or 'CHAT:MESSAGE_ID')} (not a CHAT:MESSAGE_ID yet)"
    keyboard = (
        "The buttons below replace its keyboard."
        if buttons
        else "Its own buttons, if it has any, are kept."
    )
    return (
        '<table width="100%" cellpadding="8" style="background:#eef3f8;color:#1f2a36;'
        'border:1px dashed #5da3e8">'
        f"<tr><td>⧉ <b>{what}</b>, sent exactly as it is: its text, media and formatting "
        "are the original's, which botdesk cannot show before sending (copyMessage). "
        f"{keyboard}</td></tr></table>"
    )


def badges_html(options: SendOptions) -> str:
    """Silent, protected, no link preview, rate cap: small badges above the bubble."""
    marks = []
    if options.silent:
        marks.append("🔕 silent")
    if options.protect:
        marks.append("🔒 protected content")
    if not options.link_preview:
        marks.append("no link preview")
    if options.max_rate is not None:
        marks.append(f"at most {options.max_rate:g} msg/s")
    return "".join(
        f'<span style="background:#5f6b7a;color:white"> {html.escape(m)} </span>&nbsp;'
        for m in marks
    )


def message_html(
    text: str,
    *,
    parse_mode: str,
    values: dict[str, str | None],
    buttons: list[tuple[str, str]],
    photo: Path | None = None,
    document: Path | None = None,
    dark: bool = False,
    file: media.MediaItem | None = None,
    album: Sequence[media.MediaItem] = (),
    copy_from: str | None = None,
    options: SendOptions | None = None,
) -> str:
    """The whole bubble: badges, media (one file, an album or a copy's card), rendered text
    (the caption under an album, as Telegram shows it), buttons."""
    bubble = "#2b5278" if dark else "#ffffff"
    fg = "#f5f5f5" if dark else "#000000"
    if file is None and photo is not None:
        file = media.MediaItem("photo", photo)
    if file is None and document is not None:
        file = media.MediaItem("document", document)
    parts = []
    if copy_from is not None:
        parts.append(copy_card(copy_from, buttons=bool(buttons)))
    else:
        if album:
            parts.append(album_html(album))
        elif file is not None:
            parts.append(file_card(file) + "<br>")
        rendered = templates.render(text, values, parse_mode=parse_mode)
        parts.append(body_html(rendered, parse_mode))
    rows = "".join(
        f'<tr><td align="center" style="background:#5da3e8;color:white;padding:6px">'
        # Telegram marks a URL button with an arrow; a callback button has none.
        f"{html.escape(label)}{'' if target.startswith('cb:') else ' ↗'}</td></tr>"
        for label, target in buttons
    )
    table = f'<table width="100%" cellspacing="4">{rows}</table>' if rows else ""
    badges = badges_html(options) if options is not None else ""
    return (
        (f"<p>{badges}</p>" if badges else "")
        + f'<table width="100%" cellpadding="10" style="background:{bubble};color:{fg}">'
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
