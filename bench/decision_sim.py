"""How the answer/handoff decision was chosen on the tune base alone (trailhead).

Usage: OMP_NUM_THREADS=2 PYTHONPATH=src .venv/bin/python bench/decision_sim.py

One tune base cannot show whether a decision transfers to other bases, so this simulates
smaller ones from it: a simulated base is one to three of trailhead's topic groups (shipping,
returns, payment, ... by entry-id prefix); its questions are trailhead's questions for those
entries (answerable) plus, as out-of-scope, a sample of the other topics' questions (a quarter
of the questions, as in the held-out sets) and trailhead's own out-of-scope questions. The
groups are split in two halves twice (4 train/test pairs); a centre is chosen on 150 bases
of one half and scored on 150 of the other. Score = right & answered + out-of-scope handed
off - answered wrong - out-of-scope answered (a wrong answer costs as much as a right one
gains; a handoff of an answerable question costs nothing).

Decision values compared (all against the hybrid's fused scores, ranking unchanged):
``s1 + m`` (top score + margin: the constant calibration), ``- impostor median`` (how the
base's own entries compete), ``- query offset`` (the question's mean cosine to the
domain-free background questions: the "query" calibration), language-aware variants. Nothing
here reads a held-out base. Also prints the full trailhead (all 292 questions) at the chosen
centre next to the constant.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np
from kb_suite import load_suite

from botdesk.assistant.embeddings import load_default_embedder
from botdesk.assistant.language import detect_language
from botdesk.assistant.retrieval import (
    BACKGROUND_QUESTIONS,
    DEFAULT_WEIGHTS,
    Retriever,
    normalize,
)

SIGNALS = ("phrasing", "passage", "bm25", "char")
_MERGE = {
    "gift": "giftcard", "news": "acc", "privacy": "acc", "phishing": "acc",
    "repairs": "warranty", "contact": "store", "company": "store",
}  # fmt: skip
_GROUPS = set("ship ret pay promo giftcard order acc size prod warranty loyalty store".split())


def _group(key: str) -> str:
    p = key.split("-")[0]
    p = _MERGE.get(p, p)
    return p if p in _GROUPS else "misc"


class Tune:
    """Trailhead's signals for every question and every entry's own question, computed once."""

    def __init__(self) -> None:
        embedder = load_default_embedder().embedder
        if embedder is None:
            raise SystemExit("needs the embeddings extra")
        kb = next(b for b in load_suite()[0] if b.role == "tune")
        r = Retriever.build(kb.entries, embedder=embedder)
        self.keys = [e.key for e in r.entries]
        index = {k: i for i, k in enumerate(self.keys)}
        self.groups = np.asarray([_group(k) for k in self.keys])
        self.expect = [
            None if q.expect is None else {index[k] for k in q.expect} for q in kb.questions
        ]
        self.foreign = np.asarray(
            [(d := detect_language(q.text)) is not None and d != kb.lang for q in kb.questions]
        )
        background = embedder.embed(BACKGROUND_QUESTIONS)
        sig, offset = [], []
        for q in kb.questions:
            text, qvec = r._prepare(q.text)
            sig.append(r._signals(text, qvec))
            offset.append(float(np.mean(background @ qvec)))
        self.sig = {s: np.asarray([x[s] for x in sig]) for s in SIGNALS}
        self.offset = np.asarray(offset)
        first = np.searchsorted(r._owner, np.arange(len(r.entries)))
        imp = [
            r._signals(normalize(e.question), r._vecs["phrasing"][first[i]])
            for i, e in enumerate(r.entries)
        ]
        self.imp = {s: np.asarray([x[s] for x in imp]) for s in SIGNALS}

    def base(self, mask: np.ndarray, rng: np.random.Generator | None) -> dict[str, np.ndarray]:
        """Per question of a simulated base (entries ``mask``): decision inputs and outcome."""
        idx = np.flatnonzero(mask)
        w = DEFAULT_WEIGHTS
        parts = {"phrasing": w.phrasing, "passage": w.passage, "bm25": w.bm25, "char": w.char}
        total = sum(parts.values())
        f = sum(parts[s] / total * self.sig[s][:, idx] for s in SIGNALS)
        order = np.argsort(-f, axis=1)
        rows = np.arange(len(f))
        s1, s2 = f[rows, order[:, 0]], f[rows, order[:, 1]]
        top = idx[order[:, 0]]
        fi = sum(parts[s] / total * self.imp[s][np.ix_(idx, idx)] for s in SIGNALS)
        np.fill_diagonal(fi, -np.inf)
        srt = np.sort(fi, axis=1)
        impostor = srt[:, -1] + (srt[:, -1] - srt[:, -2])
        inscope = np.asarray([e is not None and any(mask[j] for j in e) for e in self.expect])
        right = np.asarray(
            [e is not None and t in e for e, t in zip(self.expect, top, strict=True)]
        )
        if rng is None:  # the whole base: its own out-of-scope questions
            keep = inscope | np.asarray([e is None for e in self.expect])
        else:  # out-of-scope: a sample of the other topics' and the real out-of-scope questions
            keep = inscope.copy()
            other = np.flatnonzero(~inscope)
            want = int(0.25 / 0.75 * inscope.sum())
            keep[rng.choice(other, size=min(want, len(other)), replace=False)] = True
        return {
            "s1": s1[keep], "m": (s1 - s2)[keep], "offset": self.offset[keep],
            "impostor": np.full(keep.sum(), np.median(impostor)), "foreign": self.foreign[keep],
            "inscope": inscope[keep], "right": right[keep],
        }  # fmt: skip


def score(bases: list[dict[str, np.ndarray]], fn: Callable[..., np.ndarray], c: float) -> int:
    total = 0
    for b in bases:
        a = fn(b) >= c
        ins, right = b["inscope"], b["right"]
        total += int((a & ins & right).sum() + (~a & ~ins).sum())
        total -= int((a & ins & ~right).sum() + (a & ~ins).sum())
    return total


CANDIDATES: dict[str, Callable[..., np.ndarray]] = {
    "constant: s1 + m": lambda b: b["s1"] + b["m"],
    "s1 + m - impostor median": lambda b: b["s1"] + b["m"] - b["impostor"],
    "s1 + m - 0.5 impostor median": lambda b: b["s1"] + b["m"] - 0.5 * b["impostor"],
    "query: s1 + m - query offset": lambda b: b["s1"] + b["m"] - b["offset"],
    "s1 + 0.5 m - query offset": lambda b: b["s1"] + 0.5 * b["m"] - b["offset"],
    "s1 + 2 m - query offset": lambda b: b["s1"] + 2 * b["m"] - b["offset"],
    "query offset, +0.01 if foreign":
        lambda b: b["s1"] + b["m"] - b["offset"] + 0.01 * b["foreign"],
}  # fmt: skip


def _sim_bases(t: Tune, pool: np.ndarray, seed: int, n: int = 150) -> list[dict[str, np.ndarray]]:
    rng, sample = np.random.default_rng(seed), np.random.default_rng(1)
    out = []
    for _ in range(n):
        chosen = rng.choice(pool, size=min(int(rng.integers(1, 4)), len(pool)), replace=False)
        mask = np.isin(t.groups, chosen)
        if mask.sum() >= 6:
            out.append(t.base(mask, sample))
    return out


def main() -> int:
    t = Tune()
    groups = np.asarray(sorted(set(t.groups)))
    pairs = []
    for split_seed, seeds in ((5, (2, 3)), (11, (4, 6))):
        perm = np.random.default_rng(split_seed).permutation(groups)
        a, b = _sim_bases(t, perm[:7], seeds[0]), _sim_bases(t, perm[7:], seeds[1])
        pairs += [(a, b), (b, a)]
    full = [t.base(np.ones(len(t.keys), dtype=bool), None)]
    print(f"trailhead: {len(t.keys)} entries in {len(groups)} topic groups; 4 train/test pairs")
    for name, fn in CANDIDATES.items():
        total, centres = 0, []
        for train, test in pairs:
            values = np.concatenate([fn(x) for x in train])
            grid = np.quantile(values, np.linspace(0.05, 0.95, 91))
            c = float(max(grid, key=lambda c: score(train, fn, c)))
            total += score(test, fn, c)
            centres.append(f"{c:.3f}")
        print(f"  {name:34} held-out-half score {total:6d}  centres {' '.join(centres)}")
    for name, c in (("constant: s1 + m", 0.83), ("query: s1 + m - query offset", 0.073)):
        print(f"full trailhead, {name} >= {c}: score {score(full, CANDIDATES[name], c)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
