"""Every text the assistant itself shows a subscriber, in English and other languages.

Owns the wording and the language choice: ``text_for(key, language_code)`` picks the
subscriber's language (Telegram's ``language_code`` such as "de" or "pt-br"; the part before the
dash is used) and falls back to English. No text here contains an internal detail.
"""

from __future__ import annotations

from typing import Literal

TextKey = Literal[
    "timeout",
    "rate_limited",
    "auth",
    "safety",
    "not_found",
    "server",
    "unknown",
    "handoff_requested",
    "handoff_low_confidence",
    "handoff_unavailable",
    "subscriber_limit",
]

TEXTS: dict[str, dict[TextKey, str]] = {
    "en": {
        "timeout": "Sorry, I couldn't answer in time. Please try again later.",
        "rate_limited": "I'm busy right now. Please try again in a few moments.",
        "auth": "The assistant is temporarily unavailable.",
        "safety": "Sorry, I can't answer that as written. Could you rephrase your question?",
        "not_found": "The assistant is temporarily unavailable.",
        "server": "The assistant is temporarily unavailable.",
        "unknown": "Sorry, I encountered an error. Please try again.",
        "handoff_requested": (
            "Sure, I'm passing you to a person. Someone from the team will reply here."
        ),
        "handoff_low_confidence": (
            "I'm not sure about that one, so I've asked a person from the team to reply here."
        ),
        "handoff_unavailable": (
            "The assistant is temporarily unavailable. A person from the team will reply here."
        ),
        "subscriber_limit": "You're sending questions very quickly. Please wait a minute.",
    },
    "de": {
        "timeout": (
            "Entschuldigung, ich konnte nicht rechtzeitig antworten."
            " Bitte versuche es später noch einmal."
        ),
        "rate_limited": (
            "Ich bin gerade ausgelastet. Bitte versuche es in ein paar Augenblicken erneut."
        ),
        "auth": "Der Assistent ist vorübergehend nicht verfügbar.",
        "safety": "Darauf kann ich so nicht antworten. Kannst du deine Frage anders formulieren?",
        "not_found": "Der Assistent ist vorübergehend nicht verfügbar.",
        "server": "Der Assistent ist vorübergehend nicht verfügbar.",
        "unknown": "Entschuldigung, es ist ein Fehler aufgetreten. Bitte versuche es erneut.",
        "handoff_requested": (
            "Gern, ich gebe dich an einen Menschen weiter. Jemand aus dem Team antwortet hier."
        ),
        "handoff_low_confidence": (
            "Da bin ich mir nicht sicher, deshalb habe ich jemanden aus dem Team gebeten,"
            " hier zu antworten."
        ),
        "handoff_unavailable": (
            "Der Assistent ist vorübergehend nicht verfügbar. Jemand aus dem Team antwortet hier."
        ),
        "subscriber_limit": "Du sendest sehr schnell Fragen. Bitte warte eine Minute.",
    },
    "es": {
        "timeout": "Lo siento, no pude responder a tiempo. Inténtalo de nuevo más tarde.",
        "rate_limited": "Estoy ocupado ahora mismo. Inténtalo de nuevo en unos momentos.",
        "auth": "El asistente no está disponible temporalmente.",
        "safety": "No puedo responder a eso tal como está escrito. ¿Puedes reformular tu pregunta?",
        "not_found": "El asistente no está disponible temporalmente.",
        "server": "El asistente no está disponible temporalmente.",
        "unknown": "Lo siento, se produjo un error. Inténtalo de nuevo.",
        "handoff_requested": "Claro, te paso con una persona. Alguien del equipo responderá aquí.",
        "handoff_low_confidence": (
            "No estoy seguro de eso, así que he pedido a una persona del equipo que responda aquí."
        ),
        "handoff_unavailable": (
            "El asistente no está disponible temporalmente. Una persona del equipo responderá aquí."
        ),
        "subscriber_limit": "Estás enviando preguntas muy rápido. Espera un minuto, por favor.",
    },
    "uk": {
        "timeout": "Вибачте, я не встиг відповісти. Спробуйте, будь ласка, пізніше.",
        "rate_limited": "Я зараз зайнятий. Спробуйте ще раз за кілька хвилин.",
        "auth": "Асистент тимчасово недоступний.",
        "safety": "Я не можу відповісти на це в такому формулюванні. Перефразуйте, будь ласка.",
        "not_found": "Асистент тимчасово недоступний.",
        "server": "Асистент тимчасово недоступний.",
        "unknown": "Вибачте, сталася помилка. Спробуйте ще раз.",
        "handoff_requested": "Звісно, передаю вас людині. Хтось із команди відповість тут.",
        "handoff_low_confidence": (
            "Я не впевнений у відповіді, тому попросив людину з команди відповісти тут."
        ),
        "handoff_unavailable": ("Асистент тимчасово недоступний. Людина з команди відповість тут."),
        "subscriber_limit": "Ви надсилаєте запитання дуже швидко. Зачекайте, будь ласка, хвилину.",
    },
}

SUPPORTED_LANGUAGES = tuple(TEXTS)


def language_of(code: str | None) -> str:
    base = (code or "").replace("_", "-").split("-")[0].strip().lower()
    return base if base in TEXTS else "en"


def text_for(key: TextKey, language: str | None) -> str:
    return TEXTS[language_of(language)][key]
