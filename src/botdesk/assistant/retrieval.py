"""Retrieval over a knowledge base: hybrid lexical + semantic scoring, and its confidence.

Owns ``Retriever`` (built once per knowledge-base version, then read-only: ``search`` is pure
CPU and thread-safe) and ``Hit``. Three signals are fused per entry:

- character n-gram TF-IDF (3-5 grams inside word boundaries) against each phrasing of the
  question: robust to typos and word forms ("retrun", "packages");
- BM25 over words of the entry (phrasings, tags and answer): rewards rare shared words;
- optional sentence embeddings (``embeddings.Embedder``) against each phrasing and the answer:
  matches paraphrases that share no words ("money back when" ~ "When will I get my refund?").

The fused score is a weighted sum of the three (weights and threshold tuned on the "tune" split
of ``tests/assistant/data/kb_eval_questions.yaml``, never on its "test" split). ``confidence``
maps the top score and its margin over the runner-up to [0, 1]; the service hands off below its
threshold.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from botdesk.assistant.embeddings import Embedder
from botdesk.assistant.knowledge import KnowledgeEntry

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_SENTENCE = re.compile(r"(?<=[.!?])\s+")
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
    ``answer`` = against the whole answer, ``answer_sentence`` = best single answer sentence,
    ``question_answer`` = against "question answer" embedded together. Without an embedder
    only ``char`` and ``bm25`` count, with the ``lexical_*`` weights.
    """

    phrasing: float = 1.0
    answer: float = 0.4
    answer_sentence: float = 0.2
    question_answer: float = 0.5
    char: float = 0.1
    bm25: float = 0.15
    lexical_char: float = 0.6
    lexical_bm25: float = 0.4


DEFAULT_WEIGHTS = Weights()


@dataclass(frozen=True)
class Hit:
    entry: KnowledgeEntry
    score: float
    confidence: float


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
        for t, w in weights.items():
            ids, ws = self._post[t]
            scores[ids] += ws * (w / norm)
        return scores


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


class Retriever:
    """Search one knowledge base. Build with ``Retriever.build``; ``search`` is thread-safe."""

    def __init__(
        self,
        entries: Sequence[KnowledgeEntry],
        *,
        embedder: Embedder | None,
        weights: Weights = DEFAULT_WEIGHTS,
    ) -> None:
        self.entries = tuple(entries)
        self.weights = weights
        self.embedder = embedder
        phrasings: list[str] = []
        owner: list[int] = []
        for i, e in enumerate(self.entries):
            for p in e.phrasings:
                phrasings.append(p)
                owner.append(i)
        self._owner = np.asarray(owner, dtype=np.int64)
        self._chars = _SparseIndex([_char_grams(p) for p in phrasings], sublinear=True)
        self._bm25 = _BM25(
            [
                [_stem(w) for w in _content_words(" ".join((*e.phrasings, *e.tags, e.answer)))]
                for e in self.entries
            ]
        )
        self._vecs: dict[str, npt.NDArray[np.float32]] = {}
        if embedder is not None and self.entries:
            sentences: list[str] = []
            sentence_owner: list[int] = []
            for i, e in enumerate(self.entries):
                for sentence in _SENTENCE.split(e.answer):
                    if sentence.strip():
                        sentences.append(sentence)
                        sentence_owner.append(i)
            self._sentence_owner = np.asarray(sentence_owner, dtype=np.int64)
            # One embed() call: the embedder batches by length and caches by content hash.
            texts = [
                *phrasings,
                *(e.answer for e in self.entries),
                *sentences,
                *(f"{e.question} {e.answer}" for e in self.entries),
            ]
            vecs = embedder.embed(texts)
            n_p, n_e, n_s = len(phrasings), len(self.entries), len(sentences)
            self._vecs = {
                "phrasing": vecs[:n_p],
                "answer": vecs[n_p : n_p + n_e],
                "answer_sentence": vecs[n_p + n_e : n_p + n_e + n_s],
                "question_answer": vecs[n_p + n_e + n_s :],
            }

    @classmethod
    def build(
        cls,
        entries: Sequence[KnowledgeEntry],
        *,
        embedder: Embedder | None,
        weights: Weights = DEFAULT_WEIGHTS,
    ) -> Retriever:
        return cls(entries, embedder=embedder, weights=weights)

    @property
    def semantic(self) -> bool:
        return bool(self._vecs)

    def signals(self, query: str) -> dict[str, FloatArray]:
        """Per-entry scores of each signal (for tuning and the quality benchmark)."""
        n = len(self.entries)
        char = np.zeros(n, dtype=np.float64)
        np.maximum.at(char, self._owner, self._chars.cosine(_char_grams(query)))
        out = {
            "char": char,
            "bm25": self._bm25.normalized([_stem(w) for w in _content_words(query)]),
        }
        if self._vecs:
            assert self.embedder is not None
            # The model never saw chat shorthand; the expanded form embeds better.
            text = normalize(query)
            embed_query = getattr(self.embedder, "embed_query", None)
            q = embed_query(text) if embed_query else self.embedder.embed([text])[0]
            for name, owner in (
                ("phrasing", self._owner),
                ("answer_sentence", self._sentence_owner),
            ):
                best = np.full(n, -1.0, dtype=np.float64)
                np.maximum.at(best, owner, (self._vecs[name] @ q).astype(np.float64))
                out[name] = best
            out["answer"] = (self._vecs["answer"] @ q).astype(np.float64)
            out["question_answer"] = (self._vecs["question_answer"] @ q).astype(np.float64)
        return out

    def fuse(self, signals: dict[str, FloatArray]) -> FloatArray:
        w = self.weights
        if "phrasing" in signals:
            parts = {
                "phrasing": w.phrasing,
                "answer": w.answer,
                "answer_sentence": w.answer_sentence,
                "question_answer": w.question_answer,
                "char": w.char,
                "bm25": w.bm25,
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
        fused = self.fuse(self.signals(query))
        top = np.argsort(-fused, kind="stable")[: max(k, 2)]
        runner_up = float(fused[top[1]]) if len(top) > 1 else 0.0
        hits = []
        for rank, i in enumerate(top[:k]):
            score = float(fused[i])
            margin = score - (runner_up if rank == 0 else float(fused[top[0]]))
            hits.append(
                Hit(self.entries[int(i)], score, _confidence(score, margin, semantic=self.semantic))
            )
        return hits


# (centre, margin weight) of the confidence logistic, per mode, fitted on the tune split: the
# decision "answer vs hand off" is best at fused score + beta * margin = centre, which maps to
# confidence 0.5 (the service's default threshold).
_CALIBRATION = {True: (0.38, 1.0), False: (0.32, 0.5)}
_STEEPNESS = 10.0
DEFAULT_CONFIDENCE_THRESHOLD = 0.5


def _confidence(score: float, margin: float, *, semantic: bool) -> float:
    centre, beta = _CALIBRATION[semantic]
    return 1.0 / (1.0 + math.exp(-_STEEPNESS * (score + beta * margin - centre)))
