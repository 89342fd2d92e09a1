"""Retrieval over a knowledge base: hybrid lexical + semantic scoring, and its confidence.

Owns ``Retriever`` (built once per knowledge-base version, then read-only: ``search`` is pure
CPU and thread-safe) and ``Hit``. Per entry, with the optional embeddings extra:

- semantic score (dominant): the best cosine of the query against each phrasing of the question
  (question + variants, embedded separately), plus the best cosine against the entry's answer
  passages (``answer_passages``: the answer cut into sentence runs, each led by the question),
  so a long answer is found by what any part of it says ("money back when" ~ "When will I get
  my refund?", "is there a version for my linux laptop" ~ a sentence deep in the apps entry);
- lexical correction (small weights): BM25 over the words of the entry (rewards rare shared
  words, "klarna", "dhl") and character 3-5-gram TF-IDF against each phrasing (word forms,
  typos the speller leaves alone);
- before any of this the query is normalised (chat shorthand expanded) and, when the
  embedder knows a vocabulary, words that are neither in the knowledge base nor known to the
  model are corrected to a knowledge-base word one edit away ("retrun" -> "return") or split
  into two ("giftcard" -> "gift card").

Without the model (extra missing or broken) only the two lexical signals count (no spelling
correction: there is no vocabulary to tell a typo from a word the knowledge base does not
use). Weights and the confidence calibration were chosen on the "tune" split of the tune base
``tests/assistant/data/kb_eval_questions.yaml`` (``bench/assistant_quality.py --cv``), never on
the held-out bases of ``bench/data/kb``. ``confidence`` maps the top score and its margin over
the runner-up to [0, 1]; the service hands off below its threshold. ``decision_value`` is what
the decision compares with the centre; in the "query" calibration (not the default) it is
taken relative to the question's ``query_offset``.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import numpy.typing as npt

from botdesk.assistant.embeddings import Embedder
from botdesk.assistant.knowledge import KnowledgeEntry

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_WORD = re.compile(r"\w+", re.UNICODE)
# Generic chat shorthand, not tied to any knowledge base.
_SHORTHAND = {
    "u": "you", "ur": "your", "r": "are", "pls": "please", "plz": "please", "thx": "thanks",
    "pw": "password", "pwd": "password", "acct": "account", "bday": "birthday",
    "xmas": "christmas", "msg": "message", "info": "information", "tmrw": "tomorrow",
    "cant": "can not", "dont": "do not", "doesnt": "does not", "didnt": "did not",
    "wont": "will not", "isnt": "is not", "hasnt": "has not", "havent": "have not",
    "wasnt": "was not", "werent": "were not", "im": "i am", "ive": "i have", "whats": "what is",
    "wheres": "where is", "hows": "how is", "wanna": "want to", "gonna": "going to",
    "yr": "year", "yrs": "years", "yo": "year old", "yod": "year old",
}  # fmt: skip
_STOP = frozenset(
    "a an the i me my we our you your it its is are was were be been am do does did to of in on"
    " at for and or but so if with can could would should will shall may might this that these"
    " those there here have has had please hi hello hey thanks just get got any some what how"
    " when where which who why not no yes ok okay".split()
)


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold().replace("'", "").replace("’", "")
    return " ".join(_SHORTHAND.get(w, w) for w in _WORD.findall(text))


def _content_words(text: str) -> list[str]:
    words = normalize(text).split()
    kept = [w for w in words if w not in _STOP]
    return kept or words


def _stem(word: str) -> str:
    # A light suffix strip: enough for BM25 to meet "returns"/"returned"/"returning".
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def _char_grams(text: str) -> Counter[str]:
    grams: Counter[str] = Counter()
    for word in _content_words(text):
        padded = f" {word} "
        for n in (3, 4, 5):
            if len(padded) < n:
                continue
            grams.update(padded[i : i + n] for i in range(len(padded) - n + 1))
    return grams


@dataclass(frozen=True)
class Weights:
    """How the signals add up (normalised by their sum); the defaults are the tuned hybrid.

    Semantic signals: ``phrasing`` = best cosine against the question and its variants,
    ``passage`` = best cosine against the entry's answer passages (``answer_passages``).
    Lexical corrections: ``bm25`` and ``char``. Without an embedder only ``char`` and
    ``bm25`` count, with the ``lexical_*`` weights.
    """

    phrasing: float = 1.0
    passage: float = 0.75
    bm25: float = 0.05
    char: float = 0.02
    lexical_char: float = 0.6
    lexical_bm25: float = 0.4


DEFAULT_WEIGHTS = Weights()


@dataclass(frozen=True)
class Hit:
    entry: KnowledgeEntry
    score: float
    confidence: float


# Passages of about this many characters: a sentence or two, what one embedding holds well.
PASSAGE_CHARS = 300
_PARAGRAPH = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?。？！])\s+")
_MARKUP = re.compile(r"^\s*(?:[-*+]|\d+[.)]|#+)\s+", re.MULTILINE)


def answer_passages(entry: KnowledgeEntry, *, max_chars: int | None = PASSAGE_CHARS) -> list[str]:
    """The answer of every version cut into passages (paragraphs, long ones into runs of
    whole sentences).

    Each passage starts with its version's question: a sentence deep in a long answer ("It is
    free.") means little without what it answers. ``max_chars=None``: one passage per version,
    the question and the whole answer (the previous design, kept for the bench's comparison).
    """
    out = _passages(entry.question, entry.answer, max_chars)
    for t in entry.translations:
        out.extend(_passages(t.question or entry.question, t.answer, max_chars))
    return out


def _passages(question: str, answer: str, max_chars: int | None) -> list[str]:
    if max_chars is None:
        return [f"{question} {' '.join(answer.split())}"]
    chunks: list[str] = []
    for paragraph in _PARAGRAPH.split(_MARKUP.sub("", answer)):
        text = " ".join(paragraph.split())
        if not text:
            continue
        current = ""
        for sentence in _SENTENCE_END.split(text):
            if current and len(current) + 1 + len(sentence) > max_chars:
                chunks.append(current)
                current = sentence
            else:
                current = f"{current} {sentence}" if current else sentence
        if current:
            chunks.append(current)
    return [f"{question} {c}" for c in chunks] or [question]


class _SparseIndex:
    """Inverted index of L2-normalised sparse vectors: cosine of a query against every doc."""

    def __init__(self, docs: Sequence[Counter[str]], *, sublinear: bool) -> None:
        self.n_docs = len(docs)
        df: Counter[str] = Counter()
        for doc in docs:
            df.update(doc.keys())
        self.idf = {t: math.log((1 + self.n_docs) / (1 + c)) + 1.0 for t, c in df.items()}
        postings: dict[str, tuple[list[int], list[float]]] = {}
        for i, doc in enumerate(docs):
            weights = {t: self._tf(c, sublinear) * self.idf[t] for t, c in doc.items()}
            norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
            for t, w in weights.items():
                ids, ws = postings.setdefault(t, ([], []))
                ids.append(i)
                ws.append(w / norm)
        self._post = {
            t: (np.asarray(ids, dtype=np.int64), np.asarray(ws, dtype=np.float64))
            for t, (ids, ws) in postings.items()
        }
        self._sublinear = sublinear

    @staticmethod
    def _tf(count: int, sublinear: bool) -> float:
        return 1.0 + math.log(count) if sublinear else float(count)

    def cosine(self, query: Counter[str]) -> FloatArray:
        weights = {
            t: self._tf(c, self._sublinear) * self.idf[t] for t, c in query.items() if t in self.idf
        }
        scores = np.zeros(self.n_docs, dtype=np.float64)
        if not weights:
            return scores
        # Unknown grams still count in the query norm: a query made mostly of words the KB has
        # never seen must not look like a perfect match on the few it shares.
        unknown = sum(c for t, c in query.items() if t not in self.idf)
        norm = math.sqrt(sum(w * w for w in weights.values()) + unknown * 4.0)
        return self._accumulate(weights, norm)

    def _accumulate(self, weights: dict[str, float], norm: float) -> FloatArray:
        """Sum of each query term's posting weights times ``w / norm``, per doc.

        One ``bincount`` over the concatenated postings instead of a fancy-indexed add per
        term: the products are the same and each doc's terms are added in the same order
        (the query's), so the scores are bit-for-bit those of the per-term loop.
        """
        posts = [self._post[t] for t in weights]
        ids = np.concatenate([p[0] for p in posts])
        factors = np.fromiter((w / norm for w in weights.values()), np.float64, len(posts))
        lengths = np.fromiter((len(p[0]) for p in posts), np.int64, len(posts))
        products = np.concatenate([p[1] for p in posts]) * np.repeat(factors, lengths)
        return cast(FloatArray, np.bincount(ids, weights=products, minlength=self.n_docs))


class _BM25:
    def __init__(self, docs: Sequence[list[str]], *, k1: float = 1.2, b: float = 0.75) -> None:
        self.n = len(docs)
        lengths = np.asarray([len(d) for d in docs], dtype=np.float64)
        avg = float(lengths.mean()) if self.n else 1.0
        df: Counter[str] = Counter()
        for d in docs:
            df.update(set(d))
        self.idf = {t: math.log(1 + (self.n - c + 0.5) / (c + 0.5)) for t, c in df.items()}
        self._post: dict[str, tuple[IntArray, FloatArray]] = {}
        tmp: dict[str, tuple[list[int], list[float]]] = {}
        for i, d in enumerate(docs):
            denom_base = k1 * (1 - b + b * lengths[i] / avg)
            for t, c in Counter(d).items():
                ids, ws = tmp.setdefault(t, ([], []))
                ids.append(i)
                ws.append(c * (k1 + 1) / (c + denom_base))
        self._post = {
            t: (np.asarray(ids, dtype=np.int64), np.asarray(ws, dtype=np.float64))
            for t, (ids, ws) in tmp.items()
        }
        self._max_idf = max(self.idf.values(), default=1.0)

    def normalized(self, terms: list[str]) -> FloatArray:
        """BM25 divided by what a doc matching every query term once would score (0..~1)."""
        scores = np.zeros(self.n, dtype=np.float64)
        ideal = 0.0
        for t in set(terms):
            idf = self.idf.get(t, self._max_idf)  # an unseen word is as telling as the rarest
            ideal += idf
            post = self._post.get(t)
            if post is not None:
                scores[post[0]] += idf * post[1]
        return scores / ideal if ideal > 0 else scores


class _Speller:
    """Corrects words that neither the knowledge base nor the model's vocabulary knows.

    A word is left alone when it is in the knowledge base, shorter than 4 letters, has a digit,
    or the model knows it (or a form of it: "soaks" because of "soaked"). Otherwise it becomes
    the most frequent knowledge-base word at edit distance 1 (insert, delete, substitute or swap
    two neighbours), else two knowledge-base words it is the concatenation of, else stays.
    Candidates come from a deletion index (SymSpell), so a lookup costs a few dict probes.
    """

    _FORMS = ("s", "es", "ed", "ing", "er", "d", "ly")

    def __init__(self, vocabulary: Counter[str], known: Callable[[str], bool]) -> None:
        self._vocab = vocabulary
        self._known = known
        self._deletes: dict[str, list[str]] = {}
        for word in vocabulary:
            for key in {word, *_deletions(word)}:
                self._deletes.setdefault(key, []).append(word)

    def correct(self, text: str) -> str:
        return " ".join(self._word(w) for w in text.split())

    def _is_word(self, word: str) -> bool:
        if word in self._vocab or self._known(word):
            return True
        for suffix in self._FORMS:
            base = word[: -len(suffix)]
            if word.endswith(suffix) and len(base) >= 3:
                for form in (base, *(base + s for s in ("e", *self._FORMS))):
                    if form in self._vocab or self._known(form):
                        return True
        return False

    def _word(self, word: str) -> str:
        if len(word) < 4 or any(c.isdigit() for c in word) or self._is_word(word):
            return word
        candidates: set[str] = set()
        for key in {word, *_deletions(word)}:
            candidates.update(self._deletes.get(key, ()))
        near = [c for c in candidates if _within_one_edit(word, c)]
        if near:
            return min(near, key=lambda c: (-self._vocab[c], c))
        for i in range(3, len(word) - 2):
            if word[:i] in self._vocab and word[i:] in self._vocab:
                return f"{word[:i]} {word[i:]}"
        return word


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


def _within_one_edit(a: str, b: str) -> bool:
    """Optimal-string-alignment distance <= 1 (one insert, delete, substitution or swap)."""
    if a == b:
        return True
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        return (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and a[diff[0]] == b[diff[1]]
            and a[diff[1]] == b[diff[0]]
        )
    if abs(len(a) - len(b)) != 1:
        return False
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    i = 0
    while i < len(short) and short[i] == long_[i]:
        i += 1
    return short[i:] == long_[i + 1 :]


# Per-base calibration (semantic mode), see docs/assistant.md:
# - "impostor": centre + (median impostor value of this base - the tune base's, 0.8850);
# - "background": the centre is this quantile of the base's background values, chosen on the
#   tune base (`bench/assistant_quality.py --kbs --choose-quantile`);
# - "query": per question, the decision value is taken relative to how close the question is
#   to domain-free questions (``query_offset``), centre ``QUERY_CENTRE``.
CALIBRATIONS = ("constant", "impostor", "background", "query")
DEFAULT_CALIBRATION = "constant"
# Chosen on the tune base only, by simulated bases made of its topic groups
# (`bench/decision_sim.py`): the same centre maximised correct decisions minus wrong answers on
# each of four train halves.
QUERY_CENTRE = 0.073
_TUNE_IMPOSTOR_MEDIAN = 0.8850
_BACKGROUND_QUANTILE = 0.9
# Questions no support knowledge base answers, in several languages, written for the
# background calibration before it was measured (none is from the bench's question sets).
BACKGROUND_QUESTIONS = (
    "what will the weather be like tomorrow",
    "tell me a joke",
    "who won the football match last night",
    "how do I cook rice",
    "what is the capital of Australia",
    "can you help me with my math homework",
    "what is the meaning of life",
    "recommend a good movie",
    "how tall is Mount Everest",
    "what time is it in Tokyo",
    "write me a poem about the sea",
    "who is the president of France",
    "how many calories are in a banana",
    "what should I name my cat",
    "is it going to rain this weekend",
    "how do I fix a flat tyre on my car",
    "какая завтра погода",
    "расскажи анекдот",
    "¿quién ganó el partido de ayer?",
    "receta de tortilla de patatas",
    "qual é a capital do Brasil",
    "wie spät ist es in New York",
    "raconte-moi une blague",
    "bugün hava nasıl olacak",
    "resep nasi goreng yang enak",
    "هوا فردا چطور است",
    "ما هي عاصمة مصر",
    "मौसम कैसा रहेगा",
)


def query_offset(
    question_vec: npt.NDArray[np.float32], background: npt.NDArray[np.float32]
) -> float:
    """Mean cosine of the question to the domain-free ``BACKGROUND_QUESTIONS``.

    e5's cosines depend on the question as much as on the match: a short, generic question sits
    close to everything, a long specific one to little. Subtracting how close the question is
    to questions no knowledge base answers turns its top score into a lead over "anything".
    """
    if background.size == 0:
        return 0.0
    return float(np.mean(background @ question_vec))


def decision_value(score: float, margin: float, *, beta: float, offset: float = 0.0) -> float:
    """What the answer/handoff decision compares with the centre: score + beta * margin,
    less the question's ``query_offset`` (0 except in the "query" calibration)."""
    return score + beta * margin - offset


def _entry_texts(entry: KnowledgeEntry) -> tuple[str, ...]:
    """Every text of an entry that lexical matching reads: all versions, tags."""
    return (
        *entry.all_phrasings,
        *entry.tags,
        entry.answer,
        *(t.answer for t in entry.translations),
    )


def _segment_starts(owner: IntArray, n: int) -> IntArray | None:
    """Where each entry's rows start in ``owner`` (entry index per row), for
    ``maximum.reduceat``; None unless every entry has rows and they are in entry order."""
    if n == 0 or len(owner) == 0 or bool(np.any(np.diff(owner) < 0)):
        return None
    if not np.bincount(owner, minlength=n).all():
        return None
    return np.searchsorted(owner, np.arange(n))


class Retriever:
    """Search one knowledge base. Build with ``Retriever.build``; ``search`` is thread-safe."""

    def __init__(
        self,
        entries: Sequence[KnowledgeEntry],
        *,
        embedder: Embedder | None,
        weights: Weights = DEFAULT_WEIGHTS,
        passage_chars: int | None = PASSAGE_CHARS,
        calibration: str = DEFAULT_CALIBRATION,
    ) -> None:
        self.entries = tuple(entries)
        self.weights = weights
        self.embedder = embedder
        phrasings: list[str] = []
        owner: list[int] = []
        for i, e in enumerate(self.entries):
            for p in e.all_phrasings:
                phrasings.append(p)
                owner.append(i)
        self._owner = np.asarray(owner, dtype=np.int64)
        self._chars = _SparseIndex([_char_grams(p) for p in phrasings], sublinear=True)
        self._bm25 = _BM25(
            [[_stem(w) for w in _content_words(" ".join(_entry_texts(e)))] for e in self.entries]
        )
        self._vecs: dict[str, npt.NDArray[np.float32]] = {}
        self._speller: _Speller | None = None
        self._passage_owner = np.zeros(0, dtype=np.int64)
        if embedder is not None and self.entries:
            # The embedder batches by length and caches by content hash.
            passages: list[str] = []
            passage_owner: list[int] = []
            for i, e in enumerate(self.entries):
                for p in answer_passages(e, max_chars=passage_chars):
                    passages.append(p)
                    passage_owner.append(i)
            self._passage_owner = np.asarray(passage_owner, dtype=np.int64)
            self._vecs = {
                "phrasing": embedder.embed(phrasings),
                "passage": embedder.embed_passages(passages),
            }
            known = getattr(embedder, "known_word", None)
            if known is not None:
                vocabulary: Counter[str] = Counter()
                for e in self.entries:
                    for text in _entry_texts(e):
                        vocabulary.update(normalize(text).split())
                self._speller = _Speller(vocabulary, known)
        self._starts = {
            "phrasing": _segment_starts(self._owner, len(self.entries)),
            "passage": _segment_starts(self._passage_owner, len(self.entries)),
        }
        # Where "answer vs hand off" is decided (fused score + beta * margin = centre).
        self.centre, self.beta = _CALIBRATION[self.semantic]
        self.calibration = calibration
        if calibration not in CALIBRATIONS:
            raise ValueError(f"calibration must be one of {CALIBRATIONS}, not {calibration!r}")
        self._background = np.zeros((0, 0), dtype=np.float32)
        if calibration == "query" and self.semantic:
            assert embedder is not None
            self._background = embedder.embed(BACKGROUND_QUESTIONS)  # cached like the phrasings
            self.centre = QUERY_CENTRE
        elif calibration != "constant" and self.semantic and len(self.entries) >= 3:
            if calibration == "impostor":
                # Shift the tune base's centre by how much more (or less) this base's entries
                # compete with each other than the tune base's did.
                shift = float(np.median(self.impostor_values())) - _TUNE_IMPOSTOR_MEDIAN
                self.centre += shift
            else:
                self.centre = float(np.quantile(self.background_values(), _BACKGROUND_QUANTILE))

    def background_values(self) -> FloatArray:
        """Decision values of fixed, domain-free questions (``BACKGROUND_QUESTIONS``) against
        this base: what a question the base was never meant to answer scores here."""
        assert self.embedder is not None
        vecs = self.embedder.embed(BACKGROUND_QUESTIONS)  # cached on disk like the phrasings
        out = np.zeros(len(BACKGROUND_QUESTIONS), dtype=np.float64)
        for j, text in enumerate(BACKGROUND_QUESTIONS):
            fused = self.fuse(self._signals(normalize(text), vecs[j]))
            top2 = np.sort(fused)[-2:] if len(fused) > 1 else np.array([0.0, fused[0]])
            out[j] = float(top2[1] + self.beta * (top2[1] - top2[0]))
        return out

    def impostor_values(self) -> FloatArray:
        """Per entry: the decision value (top fused score + beta * margin) its own question
        reaches when the entry itself is left out: how strongly this base's entries compete
        with each other, i.e. what an in-domain question the base does not answer scores.

        The question's vector is its stored phrasing vector (no model call), so this costs a
        few matrix products per entry at build time.
        """
        n = len(self.entries)
        first = np.searchsorted(self._owner, np.arange(n))
        beta = _CALIBRATION[self.semantic][1]
        out = np.zeros(n, dtype=np.float64)
        for i, e in enumerate(self.entries):
            qvec = self._vecs["phrasing"][first[i]] if self._vecs else None
            fused = self.fuse(self._signals(normalize(e.question), qvec))
            fused[i] = -np.inf
            top2 = np.partition(fused, n - 2)[n - 2 :]
            runner_up, top = float(top2.min()), float(top2.max())
            out[i] = top + beta * (top - runner_up)
        return out

    @classmethod
    def build(
        cls,
        entries: Sequence[KnowledgeEntry],
        *,
        embedder: Embedder | None,
        weights: Weights = DEFAULT_WEIGHTS,
        passage_chars: int | None = PASSAGE_CHARS,
        calibration: str = DEFAULT_CALIBRATION,
    ) -> Retriever:
        return cls(
            entries,
            embedder=embedder,
            weights=weights,
            passage_chars=passage_chars,
            calibration=calibration,
        )

    @property
    def semantic(self) -> bool:
        return bool(self._vecs)

    def confidence(self, score: float, margin: float, offset: float = 0.0) -> float:
        value = decision_value(score, margin, beta=self.beta, offset=offset)
        return 1.0 / (1.0 + math.exp(-_STEEPNESS * (value - self.centre)))

    def _offset(self, qvec: npt.NDArray[np.float32] | None) -> float:
        """The question's ``query_offset`` in the "query" calibration, else 0."""
        if qvec is None or self._background.size == 0:
            return 0.0
        return query_offset(qvec, self._background)

    def signals(self, query: str, *, correct_typos: bool = True) -> dict[str, FloatArray]:
        """Per-entry scores of each signal (for tuning and the quality benchmark).

        ``correct_typos=False`` skips the speller: the single-method baselines of the benchmark
        see the query as the user typed it (shorthand expanded).
        """
        return self._signals(*self._prepare(query, correct_typos=correct_typos))

    def _prepare(
        self, query: str, *, correct_typos: bool = True
    ) -> tuple[str, npt.NDArray[np.float32] | None]:
        """The normalised (and spelling-corrected) query and its vector, if semantic."""
        text = normalize(query)
        if correct_typos and self._speller is not None:
            text = self._speller.correct(text)
        qvec = None
        if self._vecs:
            assert self.embedder is not None
            # The model never saw chat shorthand; the expanded form embeds better.
            qvec = self.embedder.embed_query(text)
        return text, qvec

    def _signals(self, text: str, q: npt.NDArray[np.float32] | None) -> dict[str, FloatArray]:
        out = {
            "char": self._best_per_entry(self._chars.cosine(_char_grams(text)), "phrasing", 0.0),
            "bm25": self._bm25.normalized([_stem(w) for w in _content_words(text)]),
        }
        if self._vecs and q is not None:
            for name in ("phrasing", "passage"):
                cosines = (self._vecs[name] @ q).astype(np.float64)
                out[name] = self._best_per_entry(cosines, name, -1.0)
        return out

    def _best_per_entry(self, values: FloatArray, rows: str, floor: float) -> FloatArray:
        """Per entry, the largest of ``values`` over its rows (``rows``: "phrasing" or
        "passage"), and at least ``floor``: what ``maximum.at`` into an array of ``floor``
        gives, bit for bit (a maximum is exact), as one ``maximum.reduceat`` over the
        segment starts precomputed at build (each entry's rows are contiguous)."""
        starts = self._starts[rows]
        if starts is None:
            best = np.full(len(self.entries), floor, dtype=np.float64)
            np.maximum.at(best, self._owner if rows == "phrasing" else self._passage_owner, values)
            return best
        return np.maximum(np.maximum.reduceat(values, starts), floor)

    def fuse(self, signals: dict[str, FloatArray]) -> FloatArray:
        w = self.weights
        if "phrasing" in signals:
            parts = {
                "phrasing": w.phrasing,
                "passage": w.passage,
                "bm25": w.bm25,
                "char": w.char,
            }
        else:
            parts = {"char": w.lexical_char, "bm25": w.lexical_bm25}
        total = sum(parts.values()) or 1.0
        fused = np.zeros(len(self.entries), dtype=np.float64)
        for name, weight in parts.items():
            fused += (weight / total) * signals[name]
        return fused

    def search(self, query: str, k: int = 5) -> list[Hit]:
        if not self.entries or not normalize(query):
            return []
        text, qvec = self._prepare(query)
        fused = self.fuse(self._signals(text, qvec))
        offset = self._offset(qvec)
        top = np.argsort(-fused, kind="stable")[: max(k, 2)]
        runner_up = float(fused[top[1]]) if len(top) > 1 else 0.0
        hits = []
        for rank, i in enumerate(top[:k]):
            score = float(fused[i])
            margin = score - (runner_up if rank == 0 else float(fused[top[0]]))
            hits.append(Hit(self.entries[int(i)], score, self.confidence(score, margin, offset)))
        return hits


# (centre, margin weight) of the confidence logistic, per mode, fitted on the tune split of the
# tune base (trailhead): the decision "answer vs hand off" is made at fused score + beta * margin
# = centre, which maps to confidence 0.5 (the service's default threshold). Semantic mode (e5,
# whose cosines sit between 0.7 and 1): with beta 1 the centres 0.825..0.830 give the most
# correct decisions (`assistant_quality.py --cv`); the upper end is taken, a wrong answer costs
# more than a handoff. Lexical mode: unchanged.
_CALIBRATION = {True: (0.83, 1.0), False: (0.32, 0.5)}
_STEEPNESS = 10.0
DEFAULT_CONFIDENCE_THRESHOLD = 0.5
