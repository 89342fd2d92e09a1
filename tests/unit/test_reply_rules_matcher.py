"""The rules file and the matcher: priority, language pick, validation with places."""

from __future__ import annotations

from pathlib import Path

import pytest

from botdesk.reply_rules import (
    MENU_PREFIX,
    RulesFileError,
    command_of,
    parse_rules,
    stored_text,
)

RULES = """
rules:
  - name: price-regex
    regex: 'how much .* cost'
    reply: Prices are on the site.
  - name: shipping
    keyword: [shipping, delivery time]
    reply: Shipping takes 2 days.
  - name: shipping-de
    keyword: [shipping, versand]
    language: de
    reply: Versand dauert 2 Tage.
  - name: price
    command: /price
    reply:
      text: "<b>Shoes</b> from 49 EUR"
      parse_mode: html
      buttons:
        - {label: Shop, url: "https://example.com/shop"}
    tags: [asked-price]
  - name: price-pt
    command: price
    language: pt
    reply: Sapatos a partir de 49 EUR
  - name: price-ptbr
    command: price
    language: pt-br
    reply: Tênis a partir de 49 reais
  - name: interests
    keyword: interests
    reply:
      text: What interests you?
      menu:
        exclusive: true
        buttons:
          - {label: Shoes, tag: shoes}
          - {label: Bags, tag: bags}
commands:
  - {command: price, description: Prices}
  - {command: price, description: Preise, language: de}
"""


def name(rules, text: str, lang: str | None = None) -> str | None:  # type: ignore[no-untyped-def]
    rule = rules.match(text, lang)
    return rule.name if rule else None


def test_command_beats_keyword_and_regex() -> None:
    rules = parse_rules(RULES)
    # "/price" also contains no keyword; a text with a keyword and a command: the command wins.
    assert name(rules, "/price shipping how much does it cost") == "price"
    assert name(rules, "/PRICE@shop_bot") == "price"
    assert name(rules, "how much does shipping cost") == "shipping"  # keyword beats regex
    assert name(rules, "how much does it cost?") == "price-regex"
    assert name(rules, "hello") is None  # the assistant answers


def test_keywords_are_whole_words_any_case() -> None:
    rules = parse_rules(RULES)
    assert name(rules, "SHIPPING?") == "shipping"
    assert name(rules, "what is the Delivery Time") == "shipping"
    assert name(rules, "reshipping") is None
    assert name(rules, "shippings") is None
    assert name(rules, "delivery") is None  # a phrase matches only whole


def test_language_rule_wins_over_languageless_one() -> None:
    rules = parse_rules(RULES)
    assert name(rules, "shipping", "de") == "shipping-de"
    assert name(rules, "shipping", "de-AT") == "shipping-de"
    assert name(rules, "shipping", "en") == "shipping"
    assert name(rules, "shipping", None) == "shipping"
    assert name(rules, "versand", "en") is None  # a German rule does not answer others
    assert name(rules, "/price", "pt") == "price-pt"
    assert name(rules, "/price", "pt-BR") == "price-ptbr"  # the longer language tag wins
    assert name(rules, "/price", "fr") == "price"


def test_reply_menu_and_commands_are_read() -> None:
    rules = parse_rules(RULES)
    price = rules.match("/price", None)
    assert price is not None
    assert price.reply.parse_mode == "html"
    assert price.reply.links == (("Shop", "https://example.com/shop"),)
    assert price.tags == ("asked-price",)
    menu = rules.match("interests", None)
    assert menu is not None
    keys = [b.key for b in menu.reply.menu]
    assert all(k.startswith(MENU_PREFIX) and len(k.encode()) <= 64 for k in keys)
    assert len(set(keys)) == 2
    assert rules.button(keys[1]) is not None and rules.button(keys[1]).tag == "bags"  # type: ignore[union-attr]
    assert rules.button("m:000000000000") is None
    assert rules.button("shoes") is None
    by_lang = rules.commands_by_language()
    assert [c.description for c in by_lang[None]] == ["Prices"]
    assert [c.description for c in by_lang["de"]] == ["Preise"]


def test_stored_copy_matches_like_the_file() -> None:
    rules = parse_rules(RULES)
    again = parse_rules(stored_text(rules))
    assert again.rules == rules.rules
    assert again.commands == rules.commands
    for text, lang in (("shipping", "de"), ("/price", "pt-br"), ("how much is the cost", None)):
        assert name(again, text, lang) == name(rules, text, lang)


def problems(text: str) -> list[str]:
    with pytest.raises(RulesFileError) as info:
        parse_rules(text, filename="r.yaml")
    return info.value.problems


def test_bad_regex_is_one_error_with_line_and_name() -> None:
    found = problems(
        """rules:
  - name: ok
    keyword: hi
    reply: hello
  - name: broken
    regex: 'price ('
    reply: x
"""
    )
    assert len(found) == 1
    assert found[0].startswith("r.yaml:6: rule 'broken': invalid regular expression")


def test_every_problem_is_reported_with_its_place() -> None:
    found = problems(
        """rules:
  - name: a
    keyword: hi
    command: /hi
    reply: x
  - name: b
    command: /start
    reply: x
  - name: c
    keyword: x
    reply: {text: "<b>open", parse_mode: html}
  - name: c
    keyword: y
    reply: x
  - name: d
    keyword: z
    language: english
    tags: ["no spaces"]
    reply:
      text: pick
      menu: {buttons: [{label: A}]}
  - name: e
    keyword: q
extra: 1
"""
    )
    text = "\n".join(found)
    assert "r.yaml:2: rule 'a': needs exactly one of 'command', 'keyword' or 'regex'" in text
    assert "r.yaml:7: rule 'b': /start is answered by botdesk itself" in text
    assert "r.yaml:11: rule 'c':" in text  # the unclosed <b>
    assert "r.yaml:12: rule 'c': duplicate name (first at line 9)" in text
    assert "r.yaml:17: rule 'd': invalid language 'english'" in text
    assert "rule 'd': invalid tag 'no spaces'" in text
    assert "rule 'd': menu button 'A' needs a 'tag' and/or a 'timezone'" in text
    assert "r.yaml:22: rule 'e': needs a 'reply'" in text
    assert "r.yaml:24: unknown section 'extra'" in text
    assert all(line.count("\n") == 0 for line in found)


def test_yaml_syntax_error_names_the_line() -> None:
    found = problems("rules:\n  - name: a\n    keyword: [x\n")
    assert len(found) == 1 and found[0].startswith("r.yaml:")
    assert "YAML syntax error" in found[0]


def test_media_paths_resolve_against_the_file(tmp_path: Path) -> None:
    (tmp_path / "shoe.jpg").write_bytes(b"\xff\xd8")
    text = "rules:\n  - {name: p, keyword: photo, reply: {text: here, photo: shoe.jpg}}\n"
    rules = parse_rules(text, base=tmp_path)
    assert rules.rules[0].reply.photo == str((tmp_path / "shoe.jpg").resolve())
    with pytest.raises(RulesFileError, match=r"photo file not found: gone\.jpg"):
        parse_rules(text.replace("shoe.jpg", "gone.jpg"), base=tmp_path)


def test_command_of() -> None:
    assert command_of("/price@shop_bot now") == "price"
    assert command_of("price") is None
    assert command_of("/") is None
