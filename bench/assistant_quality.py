"""Retrieval quality on the held-out questions: top-1 accuracy and handoff rates.

Usage: .venv/bin/python bench/assistant_quality.py [--split test|tune] [--no-embeddings]
       .venv/bin/python bench/assistant_quality.py --cv   (tune split only)
       .venv/bin/python bench/assistant_quality.py --kbs [--no-embeddings | --embedder minilm]

The embedder is the service's (multilingual e5, the ``embeddings`` extra) unless
``--embedder minilm`` asks for the former all-MiniLM-L6-v2, installed by hand.

``--kbs`` is the generalisation suite (bench/kb_suite.py, bench/data/kb/): every figure per
knowledge base, for the held-out bases only; the single methods' thresholds are chosen on the
tune bases' questions, the hybrid runs as shipped.

For each method (BM25 alone, char n-gram TF-IDF alone, embeddings alone, hybrid) the handoff
threshold is chosen on the *tune* split (maximising correct decisions: right answer for an
in-scope question, handoff for an out-of-scope one) and then applied unchanged to --split.
The single methods see the query as typed (shorthand expanded, no spelling correction); the
hybrid is ``Retriever.search``, the offline answerer itself.

``bench/decision_sim.py`` is how the "query" calibration's centre was chosen (trailhead only).

``--cv`` is how the hybrid's weights and calibration were chosen, on the tune split only:
repeated 5-fold cross-validation of the weight grid inside the tune split (choose on four
folds, score on the fifth), the accuracy landscape around the shipped weights, and the
interval of confidence centres that maximise correct decisions on the tune split.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from kb_suite import KnowledgeBase, Question, load_suite

from botdesk.assistant.embeddings import Embedder, load_default_embedder, load_minilm_embedder
from botdesk.assistant.knowledge import parse_knowledge
from botdesk.assistant.retrieval import (
    CALIBRATIONS,
    DEFAULT_CALIBRATION,
    DEFAULT_CONFIDENCE_THRESHOLD,
    DEFAULT_WEIGHTS,
    Retriever,
)

DATA = Path(__file__).resolve().parents[1] / "tests" / "assistant" / "data"


@dataclass
class Scored:
    expect: str | None
    top_key: str
    confidence: float


def load() -> tuple[list, dict[str, list[dict]]]:
    kb = parse_knowledge((DATA / "kb_eval.yaml").read_text(), filename="kb.yaml", bot=None)
    assert not kb.problems, kb.problems
    questions = yaml.safe_load((DATA / "kb_eval_questions.yaml").read_text())
    return kb.entries, questions


def score_split(retriever: Retriever, qs: list[dict], method: str) -> list[Scored]:
    out = []
    for q in qs:
        if method == "hybrid":
            hit = retriever.search(q["q"], k=1)[0]
            out.append(Scored(q["expect"], hit.entry.key, hit.confidence))
        else:
            s = retriever.signals(q["q"], correct_typos=False)[method]
            i = int(np.argmax(s))
            out.append(Scored(q["expect"], retriever.entries[i].key, float(s[i])))
    return out


def decisions(scored: list[Scored], threshold: float) -> dict[str, float]:
    inscope = [s for s in scored if s.expect is not None]
    oos = [s for s in scored if s.expect is None]
    top1 = sum(s.top_key == s.expect for s in inscope) / len(inscope)
    answered_right = sum(s.top_key == s.expect and s.confidence >= threshold for s in inscope)
    answered_wrong = sum(s.top_key != s.expect and s.confidence >= threshold for s in inscope)
    handoff_in = sum(s.confidence < threshold for s in inscope)
    handoff_oos = sum(s.confidence < threshold for s in oos)
    return {
        "top1": top1,
        "answered_right": answered_right / len(inscope),
        "answered_wrong": answered_wrong / len(inscope),
        "handoff_inscope": handoff_in / len(inscope),
        "handoff_oos": handoff_oos / len(oos) if oos else 0.0,
        "correct_decisions": (answered_right + handoff_oos) / len(scored),
    }


def tune_threshold(scored: list[Scored]) -> float:
    candidates = sorted({s.confidence for s in scored} | {0.0})
    # Prefer the lowest threshold among the best: handing off is the safe failure, but an
    # assistant that hands everything off is useless.
    best = max(candidates, key=lambda t: (decisions(scored, t)["correct_decisions"], -t))
    return best


SEMANTIC = ("phrasing", "passage", "bm25", "char")
GRID = {
    "passage": (0.0, 0.25, 0.5, 0.75, 1.0),
    "bm25": (0.0, 0.02, 0.05, 0.1, 0.2),
    "char": (0.0, 0.02, 0.05, 0.1, 0.2),
}


def cross_validate(retriever: Retriever, tune: list[dict], folds: int = 5, reps: int = 20) -> None:
    """Weights by repeated k-fold CV inside the tune split, then the calibration interval."""
    inscope = [q for q in tune if q["expect"] is not None]
    keys = [e.key for e in retriever.entries]
    y = np.asarray([keys.index(q["expect"]) for q in inscope])
    # signals[q, s, e]; the hybrid's signals see the spelling-corrected query
    x = np.asarray([[retriever.signals(q["q"])[n] for n in SEMANTIC] for q in inscope])
    combos = np.asarray(
        [(1.0, *c) for c in itertools.product(*(GRID[n] for n in SEMANTIC[1:]))], dtype=np.float64
    )
    scores = np.einsum("cs,qse->cqe", combos / combos.sum(1, keepdims=True), x)
    correct = scores.argmax(2) == y[None, :]
    true = scores[:, np.arange(len(y)), y]
    mrr = 1.0 / (1.0 + (scores > true[:, :, None]).sum(2))
    rng = np.random.default_rng(0)
    accs = []
    for _ in range(reps):
        parts = np.array_split(rng.permutation(len(y)), folds)
        hits = 0.0
        for k in range(folds):
            train = np.concatenate([parts[j] for j in range(folds) if j != k])
            objective = correct[:, train].mean(1) + 0.01 * mrr[:, train].mean(1)
            best = np.flatnonzero(objective >= objective.max() - 1e-12)
            hits += correct[best][:, parts[k]].mean(1).mean() * len(parts[k])  # ties averaged
        accs.append(hits / len(y))
    print(
        f"tune split, {len(y)} in-scope questions, {folds}-fold CV x {reps}:"
        f" hybrid weights chosen on 4 folds, top-1 on the 5th: {np.mean(accs):.1%}"
        f" (sd {np.std(accs):.1%} over repetitions)"
    )
    w = DEFAULT_WEIGHTS
    shipped = np.asarray([w.phrasing, w.passage, w.bm25, w.char])
    print(f"shipped weights {dict(zip(SEMANTIC, shipped.tolist(), strict=True))}; top-1 on tune:")
    for name, alt in (
        ("shipped", shipped),
        ("phrasing only", np.asarray([1.0, 0, 0, 0])),
        ("without lexical", np.asarray([w.phrasing, w.passage, 0, 0])),
        ("without passage", np.asarray([w.phrasing, 0, w.bm25, w.char])),
    ):
        fused = np.einsum("s,qse->qe", alt / alt.sum(), x)
        print(f"  {name:26} {(fused.argmax(1) == y).mean():.1%}")
    print("landscape (top-1 count out of", len(y), ") rows passage, columns bm25:")
    for qa in GRID["passage"]:
        row = []
        for b in GRID["bm25"]:
            alt = np.asarray([w.phrasing, qa, b, w.char])
            row.append(int((np.einsum("s,qse->qe", alt / alt.sum(), x).argmax(1) == y).sum()))
        print(f"  qa {qa:4}: " + " ".join(f"{v:3d}" for v in row))
    calibrate(retriever, tune)


def calibrate(retriever: Retriever, tune: list[dict]) -> None:
    """Centres c (per margin weight beta) maximising correct decisions on the tune split."""
    rows = []
    for q in tune:
        fused = retriever.fuse(retriever.signals(q["q"]))
        top = np.argsort(-fused, kind="stable")[:2]
        margin = float(fused[top[0]] - fused[top[1]])
        rows.append((q["expect"], retriever.entries[int(top[0])].key, float(fused[top[0]]), margin))
    for beta in (0.0, 0.5, 1.0):
        centres = np.round(np.arange(0.10, 1.0, 0.005), 3)
        ok = [
            sum(
                (e is not None and e == k and f + beta * m >= c) or (e is None and f + beta * m < c)
                for e, k, f, m in rows
            )
            for c in centres
        ]
        best = [c for c, o in zip(centres, ok, strict=True) if o == max(ok)]
        print(
            f"calibration beta {beta}: {max(ok)}/{len(rows)} correct decisions for centre"
            f" {best[0]:.3f}..{best[-1]:.3f} (midpoint {(best[0] + best[-1]) / 2:.3f})"
        )


@dataclass
class Asked:
    question: Question
    top_key: str
    confidence: float
    seconds: float


def ask_all(retriever: Retriever, kb: KnowledgeBase, method: str) -> list[Asked]:
    out = []
    for q in kb.questions:
        started = time.perf_counter()
        if method == "hybrid":
            hit = retriever.search(q.text, k=1)[0]
            key, conf = hit.entry.key, hit.confidence
        elif method == "fused":
            # the hybrid's ranking with its raw fused score, thresholded like the single methods
            f = retriever.fuse(retriever.signals(q.text))
            i = int(np.argmax(f))
            key, conf = retriever.entries[i].key, float(f[i])
        else:
            s = retriever.signals(q.text, correct_typos=False)[method]
            i = int(np.argmax(s))
            key, conf = retriever.entries[i].key, float(s[i])
        out.append(Asked(q, key, conf, time.perf_counter() - started))
    return out


def suite_figures(kb: KnowledgeBase, asked: list[Asked], threshold: float) -> dict[str, str]:
    def pct(part: list[Asked], ok: Callable[[Asked], bool]) -> str:
        return f"{sum(map(ok, part))}/{len(part)}" if part else "-"

    def right(a: Asked) -> bool:
        return a.question.expect is not None and a.top_key in a.question.expect

    native = [a for a in asked if a.question.expect is not None and a.question.lang == kb.lang]
    foreign = [a for a in asked if a.question.expect is not None and a.question.lang != kb.lang]
    oos = [a for a in asked if a.question.expect is None]
    answerable = native + foreign
    ms = sorted(a.seconds * 1000 for a in asked)
    return {
        "top-1 (any threshold)": pct(native, right),
        "right & answered": pct(native, lambda a: right(a) and a.confidence >= threshold),
        "OOS handed off": pct(oos, lambda a: a.confidence < threshold),
        "answerable handed off": pct(answerable, lambda a: a.confidence < threshold),
        "cross-lingual right": pct(foreign, lambda a: right(a) and a.confidence >= threshold),
        "p95 ms": f"{ms[int(0.95 * (len(ms) - 1))]:.1f}",
    }


def _as_scored(asked: list[Asked]) -> list[Scored]:
    # decisions() takes one expected key; a question answered by several entries counts the one
    # the method picked when it is among them.
    return [
        Scored(
            None
            if a.question.expect is None
            else (a.top_key if a.top_key in a.question.expect else min(a.question.expect)),
            a.top_key,
            a.confidence,
        )
        for a in asked
    ]


def impostor_scores(retriever: Retriever) -> np.ndarray:
    """Per entry: the best embedding score its own question gets from any *other* entry.

    How high an in-domain question scores against entries that do not answer it: the base's
    own competition, the reference for a per-base handoff threshold.
    """
    out = []
    for i, e in enumerate(retriever.entries):
        s = retriever.signals(e.question, correct_typos=False)["phrasing"].copy()
        s[i] = -1.0
        out.append(float(s.max()))
    return np.asarray(out)


QUANTILES = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.99)


def per_base_quantile(bases: list[KnowledgeBase], retrievers: dict[str, Retriever]) -> float:
    """The impostor quantile that maximises correct decisions on the tune bases."""
    best, best_ok = QUANTILES[0], -1.0
    for qt in QUANTILES:
        ok = 0.0
        for kb in bases:
            if kb.role != "tune":
                continue
            r = retrievers[kb.name]
            thr = float(np.quantile(impostor_scores(r), qt))
            ok += decisions(_as_scored(ask_all(r, kb, "phrasing")), thr)["correct_decisions"]
        if ok > best_ok:
            best, best_ok = qt, ok
    return best


BASE_QUANTILES = (0.25, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0)


def choose_base_quantile(bases: list[KnowledgeBase], retrievers: dict[str, Retriever]) -> None:
    """Background calibration: correct decisions of the hybrid on the tune bases for each
    quantile of the base's background values taken as the centre (the shipped quantile is
    retrieval._BACKGROUND_QUANTILE)."""
    for kb in bases:
        if kb.role != "tune":
            continue
        r = retrievers[kb.name]
        values = r.background_values()
        saved = r.centre
        print(f"{kb.name}: background values p50 {np.median(values):.3f}")
        for qt in BASE_QUANTILES:
            r.centre = float(np.quantile(values, qt))
            d = decisions(_as_scored(ask_all(r, kb, "hybrid")), DEFAULT_CONFIDENCE_THRESHOLD)
            print(
                f"  quantile {qt:5.3f} centre {r.centre:.3f}: correct decisions"
                f" {d['correct_decisions']:.1%}, answered right {d['answered_right']:.1%},"
                f" OOS handed off {d['handoff_oos']:.1%}"
            )
        r.centre = saved
        print(f"  shipped centre {saved:.3f} ({r.calibration})")


def generalisation(embedder: object | None, *, choose_quantile: bool = False) -> int:
    bases, skipped = load_suite()
    for line in skipped:
        print(line)
    methods = ["bm25"] + (["phrasing", "fused"] if embedder else []) + ["hybrid"]
    names = {
        "bm25": "BM25 alone",
        "phrasing": "embedding alone",
        "fused": "hybrid, tune thr.",
        "hybrid": "hybrid (shipped)",
    }
    retrievers = {
        kb.name: Retriever.build(kb.entries, embedder=embedder, weights=DEFAULT_WEIGHTS)  # type: ignore[arg-type]
        for kb in bases
    }
    if choose_quantile:
        choose_base_quantile(bases, retrievers)
        return 0
    thresholds = {"hybrid": DEFAULT_CONFIDENCE_THRESHOLD}
    for m in methods[:-1]:
        tuned = [
            a for kb in bases if kb.role == "tune" for a in ask_all(retrievers[kb.name], kb, m)
        ]
        thresholds[m] = tune_threshold(_as_scored(tuned))
    print(
        f"embedder: {getattr(embedder, 'name', 'none')}; thresholds chosen on the tune bases:"
        + ", ".join(f" {names[m]} {t:.3f}" for m, t in thresholds.items())
    )
    quantile = per_base_quantile(bases, retrievers) if embedder else None
    if quantile is not None:
        print(f"per-base calibration: impostor quantile {quantile} (chosen on the tune bases)")
    columns = [
        "top-1 (any threshold)",
        "right & answered",
        "OOS handed off",
        "answerable handed off",
        "cross-lingual right",
        "p95 ms",
    ]
    for kb in bases:
        if kb.role != "held-out":
            continue
        print(
            f"\n{kb.name} ({kb.lang}, {len(kb.entries)} entries,"
            f" {len(kb.questions)} questions): {kb.shape}"
        )
        print(f"  {'method':18}" + "".join(f"{c:>23}" for c in columns))
        for m in methods:
            r = suite_figures(kb, ask_all(retrievers[kb.name], kb, m), thresholds[m])
            print(f"  {names[m]:18}" + "".join(f"{_with_pct(r[c]):>23}" for c in columns))
        if embedder is not None:
            # The calibrations side by side (the shipped one is the "hybrid (shipped)" row).
            for cal in CALIBRATIONS:
                if cal == DEFAULT_CALIBRATION:
                    continue
                other = Retriever.build(kb.entries, embedder=embedder, calibration=cal)  # type: ignore[arg-type]
                r = suite_figures(kb, ask_all(other, kb, "hybrid"), DEFAULT_CONFIDENCE_THRESHOLD)
                label = f"hybr. {cal[:5]} {other.centre:.3f}"
                print(f"  {label:18}" + "".join(f"{_with_pct(r[c]):>23}" for c in columns))
            print(f"  (shipped: {DEFAULT_CALIBRATION}, centre {retrievers[kb.name].centre:.3f})")
            # The previous design: the whole answer as one passage (question + answer).
            whole = Retriever.build(kb.entries, embedder=embedder, passage_chars=None)  # type: ignore[arg-type]
            r = suite_figures(kb, ask_all(whole, kb, "hybrid"), DEFAULT_CONFIDENCE_THRESHOLD)
            print(
                f"  {'hybrid, whole ans.':18}" + "".join(f"{_with_pct(r[c]):>23}" for c in columns)
            )
        if quantile is not None:
            thr = float(np.quantile(impostor_scores(retrievers[kb.name]), quantile))
            r = suite_figures(kb, ask_all(retrievers[kb.name], kb, "phrasing"), thr)
            label = f"emb. per-base {thr:.2f}"
            print(f"  {label:18}" + "".join(f"{_with_pct(r[c]):>23}" for c in columns))
    return 0


def _with_pct(cell: str) -> str:
    if "/" not in cell:
        return cell
    a, b = map(int, cell.split("/"))
    return f"{cell} ({a / b:.0%})"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--split", default="test", choices=["test", "tune"])
    parser.add_argument("--no-embeddings", action="store_true")
    parser.add_argument("--cv", action="store_true", help="tune-split cross-validation only")
    parser.add_argument("--kbs", action="store_true", help="held-out knowledge bases, per base")
    parser.add_argument(
        "--choose-quantile",
        action="store_true",
        help="with --kbs: per-base calibration quantiles scored on the tune base only",
    )
    parser.add_argument(
        "--embedder",
        default="e5",
        choices=["e5", "minilm"],
        help="the service's e5 (default) or the former all-MiniLM-L6-v2, if installed by hand",
    )
    args = parser.parse_args()
    embedder: Embedder | None = None
    if not args.no_embeddings:
        embedder = (
            load_default_embedder().embedder if args.embedder == "e5" else load_minilm_embedder()
        )
        if embedder is None:
            print(f"embedder {args.embedder} is not installed")
            return 1
    if args.kbs:
        return generalisation(embedder, choose_quantile=args.choose_quantile)
    entries, questions = load()
    if args.cv:
        if embedder is None:
            print("--cv needs the embeddings extra")
            return 1
        cross_validate(Retriever.build(entries, embedder=embedder), questions["tune"])
        return 0
    started = time.perf_counter()
    retriever = Retriever.build(entries, embedder=embedder, weights=DEFAULT_WEIGHTS)
    build_s = time.perf_counter() - started
    n_in = sum(q["expect"] is not None for q in questions[args.split])
    n_oos = len(questions[args.split]) - n_in
    print(
        f"knowledge base: {len(entries)} entries; split '{args.split}': {n_in} in-scope,"
        f" {n_oos} out-of-scope questions; build {build_s:.1f} s"
        f" (embedder: {embedder.name if embedder else 'none'})"
    )
    methods = ["bm25", "char"] + (["phrasing"] if embedder else []) + ["hybrid"]
    names = {
        "bm25": "BM25 alone",
        "char": "TF-IDF char n-grams alone",
        "phrasing": "embeddings alone",
        "hybrid": "hybrid (offline answerer)",
    }
    print(
        f"{'method':28} {'top-1':>6} {'thresh':>7} {'answered ok':>11} {'answered wrong':>14}"
        f" {'handoff in-scope':>16} {'handoff OOS':>11}"
    )
    for m in methods:
        # The hybrid is reported with the threshold the service ships with.
        threshold = (
            DEFAULT_CONFIDENCE_THRESHOLD
            if m == "hybrid"
            else tune_threshold(score_split(retriever, questions["tune"], m))
        )
        r = decisions(score_split(retriever, questions[args.split], m), threshold)
        print(
            f"{names[m]:28} {r['top1']:6.1%} {threshold:7.3f} {r['answered_right']:11.1%}"
            f" {r['answered_wrong']:14.1%} {r['handoff_inscope']:16.1%} {r['handoff_oos']:11.1%}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
