"""delivery.templates: variables, escaping, Telegram's HTML/MarkdownV2 rules, visible length."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from botdesk.delivery.templates import (
    CAPTION_LIMIT,
    TEXT_LIMIT,
    ParseMode,
    check_variables,
    render,
    validate,
    variables,
    visible_length,
    visible_text,
)
from botdesk.errors import TemplateError, ValidationError

HTML = ParseMode.HTML
MD = ParseMode.MARKDOWNV2


def test_limits() -> None:
    assert (TEXT_LIMIT, CAPTION_LIMIT) == (4096, 1024)


def test_variables_and_literal_braces() -> None:
    tpl = "Hi {first_name|there}, {{not a var}} {vip_level} {first_name}"
    assert variables(tpl) == {"first_name", "vip_level"}
    assert render(tpl, {"vip_level": "gold"}, parse_mode="plain") == ("Hi there, {not a var} gold ")


@pytest.mark.parametrize("bad", ["{", "a } b", "{first name}", "{1x}", "{}"])
def test_malformed_templates(bad: str) -> None:
    with pytest.raises(TemplateError):
        variables(bad)


def test_unknown_variables_are_named_with_the_known_list() -> None:
    with pytest.raises(TemplateError) as info:
        check_variables("{frist_name} {plan} {tier}", known_fields=["plan"])
    message = str(info.value)
    assert "{frist_name}" in message and "{tier}" in message and "{plan}" not in message
    assert "first_name" in message and "plan" in message
    assert isinstance(info.value, ValidationError)
    check_variables("{first_name} {username} {language} {chat_id} {plan}", ["plan"])


def test_values_are_escaped_for_the_parse_mode() -> None:
    name = "<b>A&B</b> *x_y* [l](u) 1.5!"
    assert render("<i>{n}</i>", {"n": name}, parse_mode=HTML) == (
        "<i>&lt;b&gt;A&amp;B&lt;/b&gt; *x_y* [l](u) 1.5!</i>"
    )
    assert render("_{n}_", {"n": name}, parse_mode=MD) == (
        r"_<b\>A&B</b\> \*x\_y\* \[l\]\(u\) 1\.5\!_"
    )
    assert render("{n}", {"n": name}, parse_mode=ParseMode.PLAIN) == name
    assert render("{n}", {"n": "a\\b`c"}, parse_mode="markdownv2") == "a\\\\b\\`c"


def test_parse_mode_names_are_case_insensitive_and_checked() -> None:
    assert render("{n}", {"n": "<"}, parse_mode="HTML") == "&lt;"
    assert render("{n}", {"n": "<"}, parse_mode=None) == "<"
    with pytest.raises(TemplateError):
        render("x", {}, parse_mode="markdown")


@pytest.mark.parametrize(
    ("text", "visible"),
    [
        ("<b>bold</b> <strong>s</strong> <i>i</i><em>e</em>", "bold s ie"),
        ("<u>u</u><ins>n</ins><s>s</s><strike>k</strike><del>d</del>", "unskd"),
        ('<span class="tg-spoiler">sp</span> <tg-spoiler>x</tg-spoiler>', "sp x"),
        ('<a href="https://e.org/?a=1&amp;b=2">link</a>', "link"),
        ('<code>a &lt; b</code> <pre><code class="language-py">x</code></pre>', "a < b x"),
        ("<blockquote expandable>q</blockquote>", "q"),
        ('<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>', "👍"),
        ("&lt;&gt;&amp;&quot;&#39;&#x41;", "<>&\"'A"),
        ("fish & chips &nbsp; a > b", "fish & chips &nbsp; a > b"),
        ("<B>upper</B>", "upper"),
    ],
)
def test_html_visible_text(text: str, visible: str) -> None:
    assert visible_text(text, parse_mode=HTML) == visible


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("<b>open", 'end tag corresponding to start tag "b"'),
        ("<b><i>x</b></i>", 'expected "</i>", found "</b>"'),
        ("x</b>", "unexpected end tag"),
        ("<div>x</div>", 'unsupported start tag "div"'),
        ("a < b > c", "empty tag name"),
        ("a < b", "unclosed start tag"),
        ("<b", "unclosed start tag"),
        ("<span>x</span>", "tg-spoiler"),
        ("<br/>", 'unsupported start tag "br"'),
    ],
)
def test_html_errors_look_like_telegram(text: str, needle: str) -> None:
    with pytest.raises(TemplateError) as info:
        visible_length(text, parse_mode=HTML)
    assert str(info.value).startswith("can't parse entities: ")
    assert needle in str(info.value)
    assert "byte offset" in str(info.value)


@pytest.mark.parametrize(
    ("text", "visible"),
    [
        (r"*bold \*text*", "bold *text"),
        (r"_italic_ __under__ ~strike~ ||spoiler||", "italic under strike spoiler"),
        (r"*bold _italic bold ~x~ __u i b___ bold*", "bold italic bold x u i b bold"),
        ("___ui_**__", "ui"),
        ("[inline URL](http://www.example.com/)", "inline URL"),
        (r"[t](http://e.org/a\)b)", "t"),
        ("![👍](tg://emoji?id=5368324170671202286)", "👍"),
        (r"`code with \` and \\ and *`", "code with ` and \\ and *"),
        ("```python\nprint(1)\n```", "print(1)\n"),
        ("```plain block```", "plain block"),
        (">quote line\n>second", "quote line\nsecond"),
        ("**>expandable\n>last||", "expandable\nlast"),
        (r"1\.5 \- a\+b\=c \#tag \{x\} \!", "1.5 - a+b=c #tag {x} !"),
        ("путь \\ü", "путь \\ü"),
    ],
)
def test_markdownv2_visible_text(text: str, visible: str) -> None:
    assert visible_text(text, parse_mode=MD) == visible


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("Price 1.5", "character '.' is reserved"),
        ("Hello!", "character '!' is reserved"),
        ("*bold", "end of bold entity"),
        ("_it *b_ x*", "end of bold entity"),
        ("`code", "end of code entity"),
        ("```pre", "end of pre entity"),
        ("[text](http://e.org", "end of a url"),
        ("a | b", "character '|' is reserved"),
        ("x > y", "character '>' is reserved"),
        ("a]b", "character ']' is reserved"),
    ],
)
def test_markdownv2_errors_look_like_telegram(text: str, needle: str) -> None:
    with pytest.raises(TemplateError) as info:
        visible_length(text, parse_mode=MD)
    assert str(info.value).startswith("can't parse entities: ")
    assert needle in str(info.value)


def test_an_empty_value_between_underscores_keeps_the_italic_valid() -> None:
    text = render("_{first_name}_ x", {"first_name": ""}, parse_mode=MD)
    assert visible_text(text, parse_mode=MD) == " x"


def test_byte_offset_counts_utf8_bytes() -> None:
    with pytest.raises(TemplateError) as info:
        visible_length("ééé.", parse_mode=MD)
    assert "byte offset 6" in str(info.value)


def test_visible_length_counts_utf16_code_units() -> None:
    assert visible_length("a😀é", parse_mode="plain") == 4  # the emoji is a surrogate pair
    assert visible_length("<b>😀</b>&amp;", parse_mode=HTML) == 3
    assert visible_length(r"*😀*\.", parse_mode=MD) == 3


def test_validate_checks_variables_markup_and_length() -> None:
    validate("<b>Hi {first_name}</b>", parse_mode=HTML, sample_values={"first_name": "Ann"})
    with pytest.raises(TemplateError, match="unknown variable"):
        validate("{plan}", parse_mode=HTML)
    validate("{plan}", parse_mode=HTML, known_fields=["plan"])
    with pytest.raises(TemplateError, match="can't parse entities"):
        validate("Hi {first_name}.", parse_mode=MD)
    long = "x" * 1000 + "{first_name}"
    validate(long, parse_mode=MD, sample_values={"first_name": "a" * 24}, limit=CAPTION_LIMIT)
    with pytest.raises(TemplateError, match="1025 characters"):
        validate(long, parse_mode=MD, sample_values={"first_name": "a" * 25}, limit=CAPTION_LIMIT)
    # Escaping adds backslashes but no visible characters.
    validate("{first_name}", parse_mode=MD, sample_values={"first_name": "." * 4096})


# Text a value may contain: anything Telegram accepts (no lone surrogates).
values = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)

TEMPLATES = {
    HTML: [
        "{v}",
        "<b>Hi {v}</b>, <i>{v}</i>!",
        '<a href="https://e.org/?q={v}">{v}</a>',
        "<code>{v}</code> <blockquote>{v}</blockquote>",
    ],
    MD: [
        "{v}",
        r"*Hi {v}*, _{v}_\!",
        "[{v}](https://e.org/?q={v})",
        "`{v}` ||{v}|| ~__{v}__~",
        ">{v}\n>{v}",
    ],
    ParseMode.PLAIN: ["{v}", "Hi {v}!"],
}


@given(value=values, mode=st.sampled_from(list(TEMPLATES)), index=st.integers(0, 10))
def test_any_value_keeps_the_markup_valid_and_shows_verbatim(
    value: str, mode: ParseMode, index: int
) -> None:
    template = TEMPLATES[mode][index % len(TEMPLATES[mode])]
    text = render(template, {"v": value}, parse_mode=mode)
    shown = visible_text(text, parse_mode=mode)
    assert value in shown
    empty = visible_text(render(template, {"v": ""}, parse_mode=mode), parse_mode=mode)
    assert visible_length(text, parse_mode=mode) >= len(empty)


@pytest.mark.parametrize(
    ("text", "mode"),
    [
        ("Spring sale: 20% off {{everything}}", "plain"),
        ("<b>Sale</b> &amp; more", "html"),
        ("*Sale* \\- 20% off", "markdownv2"),
    ],
)
def test_a_text_without_variables_is_rendered_once_per_campaign(text: str, mode: str) -> None:
    from botdesk.delivery.worker import CampaignCtx

    ctx = CampaignCtx(
        id=1, state="running", text=text, parse_mode=mode, media_kind=None, media_path=None,
        file_id=None, buttons=(), paid=False,
    )  # fmt: skip
    assert ctx.static_text == render(text, {"first_name": "Ann"}, parse_mode=mode)
    with_var = CampaignCtx(
        id=2, state="running", text="Hi {first_name}", parse_mode=mode, media_kind=None,
        media_path=None, file_id=None, buttons=(), paid=False,
    )  # fmt: skip
    assert with_var.static_text is None
