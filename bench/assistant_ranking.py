"""Ranking alternatives of the offline answerer, top-1 per knowledge base (issue 12).

Usage: OMP_NUM_THREADS=2 PYTHONPATH=src .venv/bin/python bench/assistant_ranking.py
       [--cache DIR] [--bases trailhead,telegram,...]

Measures only the ranking (which entry comes first), not the answer/handoff decision: every
alternative is a different function of the same per-entry signals, computed once per question
with the service's e5 embedder and the shipped ``Retriever`` (spelling correction included):

- ``phrasing`` / ``passage`` / ``bm25`` / ``char``: the shipped signals (``Retriever.signals``);
- ``sent``: best cosine against answer passages *not* led by the entry's question ("passage: ");
- ``phr_pass``: the phrasings embedded with "passage: " instead of "query: ";
- ``phr_unlabelled``: the phrasings with a leading "Q:" label removed ("Q: How old is ...").

Per base and alternative it prints top-1 of the answerable questions in the base's language
(``nat``), in other languages (``x``) and the mean reciprocal rank of the right entry (``mrr``),
trailhead (the tune base) first. How often the right entry is 2nd-5th under the shipped fusion
is printed per base too. The embeddings are cached under ``--cache`` (default: a directory in
the system temp dir), so a second run costs only the query embeddings.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
from kb_suite import KnowledgeBase, load_suite

from botdesk.assistant.embeddings import Embedder, load_default_embedder
from botdesk.assistant.retrieval import DEFAULT_WEIGHTS, Retriever, _passages

Signals = dict[str, np.ndarray]
Fusion = Callable[[Signals], np.ndarray]
_LABEL = re.compile(r"^\s*q\s*[:.]\s*", re.IGNORECASE)


def _best(n: int, owner: list[int], cosines: np.ndarray) -> np.ndarray:
    out = np.full(n, -1.0)
    np.maximum.at(out, np.asarray(owner, dtype=np.int64), cosines.astype(np.float64))
    return out


def base_signals(kb: KnowledgeBase, embedder: Embedder) -> list[Signals]:
    r = Retriever.build(kb.entries, embedder=embedder)
    n = len(r.entries)
    sent: list[str] = []
    sent_owner: list[int] = []
    for i, e in enumerate(r.entries):
        for answer in (e.answer, *(t.answer for t in e.translations)):
            for p in _passages("", answer, 300):
                if p.strip():
                    sent.append(p.strip())
                    sent_owner.append(i)
    phrasings = [p for e in r.entries for p in e.all_phrasings]
    owner = [i for i, e in enumerate(r.entries) for _ in e.all_phrasings]
    sent_vecs = embedder.embed_passages(sent)
    as_passage = embedder.embed_passages(phrasings)
    unlabelled = embedder.embed([_LABEL.sub("", p) for p in phrasings])
    rows = []
    for q in kb.questions:
        text, qvec = r._prepare(q.text)
        assert qvec is not None
        s = r._signals(text, qvec)
        s["sent"] = _best(n, sent_owner, sent_vecs @ qvec)
        s["phr_pass"] = _best(n, owner, as_passage @ qvec)
        s["phr_unlabelled"] = _best(n, owner, unlabelled @ qvec)
        rows.append(s)
    return rows


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(-x, kind="stable")
    out = np.empty(len(x))
    out[order] = np.arange(len(x))
    return out


def _z(x: np.ndarray) -> np.ndarray:
    sd = float(x.std())
    return (x - x.mean()) / (sd if sd > 0 else 1.0)


def linear(**w: float) -> Fusion:
    total = sum(w.values())
    return lambda s: sum(v * s[k] for k, v in w.items()) / total


def shipped() -> Fusion:
    d = DEFAULT_WEIGHTS
    return linear(phrasing=d.phrasing, passage=d.passage, bm25=d.bm25, char=d.char)


def best_of(*names: str, bm25: float = 0.05, char: float = 0.02) -> Fusion:
    def f(s: Signals) -> np.ndarray:
        m = np.maximum.reduce([s[n] for n in names])
        return (m + bm25 * s["bm25"] + char * s["char"]) / (1 + bm25 + char)

    return f


def rrf(k: int, *names: str) -> Fusion:
    return lambda s: sum(1.0 / (k + 1 + _ranks(s[n])) for n in names)


def zmix(**w: float) -> Fusion:
    return lambda s: sum(v * _z(s[k]) for k, v in w.items())


def rerank(weight: float, signal: str, k: int = 5) -> Fusion:
    """The shipped fusion's top ``k`` re-scored with ``weight`` x ``signal`` added."""
    base = shipped()

    def f(s: Signals) -> np.ndarray:
        v = base(s)
        top = np.argsort(-v, kind="stable")[:k]
        out = np.full_like(v, -9.0)
        out[top] = v[top] + weight * s[signal][top]
        return out

    return f


def alternatives() -> dict[str, Fusion]:
    d = DEFAULT_WEIGHTS
    w = {"phrasing": d.phrasing, "passage": d.passage, "bm25": d.bm25, "char": d.char}
    return {
        "shipped (weighted sum)": shipped(),
        "phrasings alone": linear(phrasing=1),
        "passages alone": linear(passage=1),
        "unled sentences alone": linear(sent=1),
        "best of phrasing, passage": best_of("phrasing", "passage"),
        "best of phr, passage, sentence": best_of("phrasing", "passage", "sent"),
        "shipped + 0.25 sentence": linear(**w, sent=0.25),
        "shipped + 0.5 sentence": linear(**w, sent=0.5),
        "shipped, passage 1.0": linear(**{**w, "passage": 1.0}),
        "shipped, passage 1.5": linear(**{**w, "passage": 1.5}),
        "shipped, bm25 0.1": linear(**{**w, "bm25": 0.1}),
        "shipped, bm25 0.2": linear(**{**w, "bm25": 0.2}),
        "phrasings as passage:": linear(**{**w, "phrasing": 0.0}, phr_pass=d.phrasing),
        "phrasings without 'Q:'": linear(**{**w, "phrasing": 0.0}, phr_unlabelled=d.phrasing),
        "RRF k=60 phr, pas, bm25": rrf(60, "phrasing", "passage", "bm25"),
        "RRF k=10 phr, pas, bm25": rrf(10, "phrasing", "passage", "bm25"),
        "RRF k=60 phr, pas": rrf(60, "phrasing", "passage"),
        "RRF k=60 phr, pas, sent, bm25": rrf(60, "phrasing", "passage", "sent", "bm25"),
        "z-mix phr, pas": zmix(phrasing=1, passage=1),
        "z-mix phr, pas, bm25": zmix(phrasing=1, passage=1, bm25=1),
        "z-mix phr, pas, 0.5 bm25": zmix(phrasing=1, passage=1, bm25=0.5),
        "z-mix phr, pas, .5 sent, .5 bm25": zmix(phrasing=1, passage=1, sent=0.5, bm25=0.5),
        "re-rank top-5 + 0.05 bm25": rerank(0.05, "bm25"),
        "re-rank top-5 + 0.1 bm25": rerank(0.1, "bm25"),
        "re-rank top-5 + 0.05 char": rerank(0.05, "char"),
        "re-rank top-5 + 0.1 sentence": rerank(0.1, "sent"),
        "re-rank top-5 + 0.2 sentence": rerank(0.2, "sent"),
    }


def score(kb: KnowledgeBase, rows: list[Signals], fusion: Fusion) -> str:
    keys = [e.key for e in kb.entries]
    nat = nat_ok = other = other_ok = 0
    rr = 0.0
    for q, s in zip(kb.questions, rows, strict=True):
        if q.expect is None:
            continue
        v = fusion(s)
        ok = keys[int(np.argmax(v))] in q.expect
        right = max(v[keys.index(k)] for k in q.expect)
        rr += 1.0 / (1 + int((v > right).sum()))
        if q.lang == kb.lang:
            nat, nat_ok = nat + 1, nat_ok + ok
        else:
            other, other_ok = other + 1, other_ok + ok
    return f"nat {nat_ok:3d}/{nat:<3d} x {other_ok:2d}/{other:<2d} mrr {rr / (nat + other):.2f}"


def rank_histogram(kb: KnowledgeBase, rows: list[Signals]) -> str:
    keys = [e.key for e in kb.entries]
    counts: Counter[str] = Counter()
    fused = shipped()
    for q, s in zip(kb.questions, rows, strict=True):
        if q.expect is None:
            continue
        v = fused(s)
        above = int((v > max(v[keys.index(k)] for k in q.expect)).sum())
        counts["1st" if above == 0 else "2nd-5th" if above < 5 else "lower"] += 1
    return ", ".join(f"{k} {counts[k]}" for k in ("1st", "2nd-5th", "lower"))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "kbrank")
    parser.add_argument("--bases", default="", help="comma-separated names (default: all)")
    args = parser.parse_args()
    status = load_default_embedder(cache_dir=args.cache)
    if status.embedder is None:
        print(status.describe())
        return 1
    bases, skipped = load_suite()
    for line in skipped:
        print(line)
    wanted = set(filter(None, args.bases.split(",")))
    bases = [kb for kb in bases if not wanted or kb.name in wanted]
    signals = {}
    for kb in bases:
        started = time.perf_counter()
        signals[kb.name] = base_signals(kb, status.embedder)
        print(
            f"{kb.name} ({kb.role}): {len(kb.entries)} entries, {len(kb.questions)} questions,"
            f" signals in {time.perf_counter() - started:.0f} s; shipped ranking puts the right"
            f" entry {rank_histogram(kb, signals[kb.name])}"
        )
    for name, fusion in alternatives().items():
        cells = [f"{kb.name[:9]:9} {score(kb, signals[kb.name], fusion)}" for kb in bases]
        print(f"{name:34}" + " | ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
