"""Which language a subscriber writes in, and which languages an answer may be chosen in.

Owns ``detect_language`` (a small dependency-free heuristic: the script of the letters, then,
for Latin script, common function words and letters particular to one language) and
``answer_languages`` (the order in which an entry's versions are tried: Telegram's
``language_code`` first, then the question's detected language).

The detector answers only when it is fairly sure and returns None otherwise ("ok thanks" is
no language): a short question in Latin script without a telling word is left undetected,
and the knowledge base's own text is the answer then.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)

# Function words that are common in questions and rare in the other languages listed.
_STOPWORDS: dict[str, frozenset[str]] = {
    lang: frozenset(words.split())
    for lang, words in {
        "en": "the is are was what how when where why which who do does did can could would"
        " should my your i you it to of and with for this that have has there about",
        "es": "el la los las es está qué cómo cuándo dónde por qué para con una uno mi mis"
        " tu puedo puede hay del al pero también tengo quiero se lo le cuánto cuál",
        "pt": "o os as é está que como quando onde por para com uma um meu minha você"
        " posso pode tem não do da dos das no na ao mas também eu quero quanto qual",
        "de": "der die das ist sind was wie wann wo warum ich du sie es mit für und nicht"
        " ein eine kann können mein meine habe hat gibt auch auf bei zu",
        "fr": "le la les est sont que quoi comment quand où pourquoi je tu vous il avec pour"
        " et ne pas un une mon ma mes puis peut est-ce y des du au aux",
        "it": "il lo la gli le è sono che cosa come quando dove perché io tu con per e non"
        " un una mio mia posso può ho ha della del",
        "tr": "bir bu ne nasıl neden nerede ne zaman mi mı mu mü ve ile için ben sen var yok"
        " değil da de ama çok nedir",
        "id": "apa bagaimana kapan dimana di mana kenapa mengapa saya aku kamu anda yang dan"
        " dengan untuk ini itu tidak bisa ada ke dari akun",
        "nl": "de het een is zijn wat hoe wanneer waar waarom ik je jij mijn met voor en niet"
        " kan ik heb",
    }.items()
}
# Letters that point at one Latin-script language.
_LETTERS = {
    "es": "ñ¿¡",
    "pt": "ãõ",
    "de": "ßäöü",
    "fr": "èêëœàùû",
    "tr": "ğışİ",
}


def _script(ch: str) -> str | None:
    try:
        name = unicodedata.name(ch)
    except ValueError:
        return None
    for script in (
        "CYRILLIC", "ARABIC", "DEVANAGARI", "HEBREW", "GREEK", "HIRAGANA", "KATAKANA",
        "HANGUL", "CJK", "THAI", "BENGALI", "TAMIL", "GEORGIAN", "ARMENIAN", "LATIN",
    ):  # fmt: skip
        if name.startswith(script):
            return script
    return None


_SCRIPT_LANGUAGE = {
    "DEVANAGARI": "hi", "HEBREW": "he", "GREEK": "el", "HANGUL": "ko", "CJK": "zh",
    "THAI": "th", "BENGALI": "bn", "TAMIL": "ta", "GEORGIAN": "ka", "ARMENIAN": "hy",
}  # fmt: skip


def detect_language(text: str) -> str | None:
    """An ISO 639-1 code for ``text``, or None when the heuristic is not sure."""
    letters = [c for c in unicodedata.normalize("NFC", text) if c.isalpha()]
    if not letters:
        return None
    scripts = Counter(s for s in map(_script, letters) if s)
    if not scripts:
        return None
    script, _ = scripts.most_common(1)[0]
    if script in ("HIRAGANA", "KATAKANA"):
        return "ja"
    if script == "CJK":
        return "ja" if scripts["HIRAGANA"] + scripts["KATAKANA"] else "zh"
    if script == "CYRILLIC":
        if any(c in "іїєґІЇЄҐ" for c in letters):
            return "uk"
        return "ru"
    if script == "ARABIC":
        # Letters Persian has and Arabic does not (pe, che, zhe, gaf, Persian kaf and yeh).
        return "fa" if any(c in "پچژگکی" for c in letters) else "ar"
    if script != "LATIN":
        return _SCRIPT_LANGUAGE.get(script)
    lowered = unicodedata.normalize("NFC", text).casefold()
    words = _WORD.findall(lowered)
    votes: Counter[str] = Counter()
    for lang, stop in _STOPWORDS.items():
        votes[lang] = sum(1 for w in words if w in stop)
    for lang, marks in _LETTERS.items():
        if any(c in marks for c in lowered):
            votes[lang] += 2
    ranked = votes.most_common(2)
    best, score = ranked[0]
    runner_up = ranked[1][1] if len(ranked) > 1 else 0
    if score == 0 or score == runner_up:
        return None
    return best


def answer_languages(language_code: str | None, question: str) -> list[str]:
    """The languages to try for the answer, best first: Telegram's then the detected one."""
    out: list[str] = []
    for code in (language_code, detect_language(question)):
        if code:
            base = code.strip().casefold().replace("_", "-")
            if base and base not in out:
                out.append(base)
    return out
