"""Answers in the subscriber's language: versions in the three formats, the language choice
(Telegram's language_code, else the question's detected language) and the version picked."""

from __future__ import annotations

import pytest

from botdesk.assistant.knowledge import KnowledgeEntry, Translation, parse_knowledge
from botdesk.assistant.language import answer_languages, detect_language
from botdesk.assistant.providers.offline import OfflineProvider
from botdesk.assistant.retrieval import Retriever
from botdesk.assistant.service import AssistantService

MD = """# Shop FAQ

## How do I reset my password?
id: reset
also: forgot my password
Open Settings, then Account, then Reset password.

### Note: the link is valid for one day
(this sub-heading is answer text: "Note" is no language code)

### ru: Как сбросить пароль?
also: забыл пароль
Откройте Настройки, затем Аккаунт, затем Сброс пароля.

### es: ¿Cómo restablezco mi contraseña?
Abre Ajustes, luego Cuenta, luego Restablecer contraseña.

## Do you ship to Canada?
Yes, parcels to Canada take 5 to 8 working days.
"""

CSV = """id,question,answer,question_ru,answer_ru,variants_ru
reset,Reset my password?,Open Settings.,Сброс пароля?,Откройте Настройки.,забыл пароль|сброс
ship,Do you ship to Canada?,Yes.,,,
"""

YAML = """- id: reset
  question: How do I reset my password?
  answer: Open Settings.
  translations:
    ru:
      question: Как сбросить пароль?
      variants: [забыл пароль]
      answer: Откройте Настройки.
    pt-BR: Abra as Configurações.
"""


def test_markdown_versions_are_read_and_other_sub_headings_stay_answer_text() -> None:
    report = parse_knowledge(MD, filename="faq.md", bot="shop")
    assert not report.problems
    reset, ship = report.entries
    assert [t.language for t in reset.translations] == ["ru", "es"]
    ru = reset.translations[0]
    assert ru == Translation(
        "ru",
        "Как сбросить пароль?",
        ("забыл пароль",),
        "Откройте Настройки, затем Аккаунт, затем Сброс пароля.",
    )
    assert "### Note: the link is valid for one day" in reset.answer
    assert "Откройте" not in reset.answer and ship.translations == ()
    assert "забыл пароль" in reset.all_phrasings and "forgot my password" in reset.all_phrasings


def test_csv_version_columns_and_empty_cells() -> None:
    report = parse_knowledge(CSV, filename="faq.csv", bot=None)
    assert not report.problems
    reset, ship = report.entries
    assert reset.translations == (
        Translation("ru", "Сброс пароля?", ("забыл пароль", "сброс"), "Откройте Настройки."),
    )
    assert ship.translations == ()  # empty cells: no Russian version


def test_yaml_translations_long_and_short_form() -> None:
    (entry,) = parse_knowledge(YAML, filename="faq.yaml", bot=None).entries
    assert [(t.language, t.question, t.answer) for t in entry.translations] == [
        ("ru", "Как сбросить пароль?", "Откройте Настройки."),
        ("pt-br", "", "Abra as Configurações."),
    ]


@pytest.mark.parametrize(
    ("text", "filename", "reason"),
    [
        ("- question: Q?\n  answer: A\n  translations: {xx: A}\n", "f.yaml", "not a language code"),
        ("- question: Q?\n  answer: A\n  translations: [ru]\n", "f.yaml", "must map language"),
        ("id,question,answer,question_ru\na,Q?,A,В?\n", "f.csv", "'ru' version has no answer"),
        ("## Q?\nA\n### ru: В?\ntags: x\nО\n", "f.md", "only 'also:' may follow"),
        ("## Q?\nA\n### ru: В?\nО\n### ru: В2?\nО2\n", "f.md", "a second 'ru' version"),
    ],
)
def test_bad_versions_are_reported_with_their_entry(text: str, filename: str, reason: str) -> None:
    report = parse_knowledge(text, filename=filename, bot=None)
    assert not report.entries
    assert len(report.problems) == 1 and reason in report.problems[0].reason


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("how do I reset my password", "en"),
        ("как сбросить пароль", "ru"),
        ("як змінити пароль і пошту", "uk"),
        ("¿cómo cambio mi contraseña?", "es"),
        ("como faço para mudar a senha", "pt"),
        ("wie kann ich mein Passwort ändern", "de"),
        ("comment changer mon mot de passe", "fr"),
        ("şifremi nasıl değiştiririm", "tr"),
        ("bagaimana cara mengganti kata sandi", "id"),
        ("چگونه رمز عبور را تغییر دهم", "fa"),
        ("كيف أغير كلمة المرور", "ar"),
        ("पासवर्ड कैसे बदलें", "hi"),
        ("ok thx", None),
        ("12345 ?!", None),
    ],
)
def test_detect_language(text: str, expected: str | None) -> None:
    assert detect_language(text) == expected


def test_answer_languages_put_telegram_first_then_the_detected_one() -> None:
    assert answer_languages("pt-BR", "как сбросить пароль") == ["pt-br", "ru"]
    assert answer_languages(None, "как сбросить пароль") == ["ru"]
    assert answer_languages("ru", "как сбросить пароль") == ["ru"]
    assert answer_languages(None, "ok thx") == []


def test_version_pick() -> None:
    (entry,) = parse_knowledge(YAML, filename="faq.yaml", bot=None).entries
    assert entry.language == "en"
    assert entry.answer_in(["ru"]) == "Откройте Настройки."
    assert entry.answer_in(["pt"]) == "Abra as Configurações."  # pt takes pt-br
    assert entry.answer_in(["fr", "ru"]) == "Откройте Настройки."  # first language that has one
    assert entry.answer_in(["fr"]) == "Open Settings."  # none: the knowledge base's language
    # Telegram says English (the entry's own language) though the question looks Russian.
    assert entry.answer_in(["en", "ru"]) == "Open Settings."
    assert entry.question_in(["ru"]) == "Как сбросить пароль?"
    assert entry.question_in(["pt"]) == "How do I reset my password?"  # the version has none


@pytest.fixture
def service() -> AssistantService:
    entries = parse_knowledge(MD, filename="faq.md", bot="shop").entries
    retriever = Retriever.build(entries, embedder=None)
    return AssistantService(provider=OfflineProvider(), retriever_for=lambda bot: retriever)


@pytest.mark.parametrize(
    ("language", "question", "answer_starts", "answer_language"),
    [
        ("ru", "забыл пароль", "Откройте Настройки", "ru"),
        (None, "забыл пароль, что делать", "Откройте Настройки", "ru"),  # detected
        ("es", "forgot my password", "Abre Ajustes", "es"),  # Telegram's code first
        ("fr", "forgot my password", "Open Settings", None),  # no French version
        ("en", "forgot my password", "Open Settings", None),
        ("ru", "ship to canada", "Yes, parcels", None),  # the entry has no Russian version
    ],
)
async def test_offline_answer_is_the_version_in_the_subscribers_language(
    service: AssistantService,
    language: str | None,
    question: str,
    answer_starts: str,
    answer_language: str | None,
) -> None:
    reply = await service.respond(
        bot="shop", chat_id=1, text=question, language=language, history=[]
    )
    assert not reply.handoff, reply
    assert reply.text.startswith(answer_starts)
    assert reply.language == answer_language
    assert reply.sources in (["reset"], ["do you ship to canada"])


async def test_the_bots_language_is_the_last_choice(service: AssistantService) -> None:
    reply = await service.respond(
        bot="shop", chat_id=1, text="reset password", language=None, history=[],
        default_language="es",
    )  # fmt: skip
    assert reply.text.startswith("Abre Ajustes") and reply.language == "es"


def test_a_russian_question_finds_the_entry_by_its_russian_version() -> None:
    entries = [
        KnowledgeEntry(
            "reset", "How do I reset my password?", (), "Open Settings.",
            translations=(Translation("ru", "Как сбросить пароль?", (), "Откройте Настройки."),),
        ),
        KnowledgeEntry("ship", "Do you ship to Canada?", (), "Yes."),
    ]  # fmt: skip
    hits = Retriever.build(entries, embedder=None).search("как сбросить пароль", 2)
    assert hits[0].entry.key == "reset" and hits[0].score > hits[1].score
