"""Retrieval quality on the held-out questions: top-1 accuracy and handoff rates.

Usage: .venv/bin/python bench/assistant_quality.py [--split test|tune] [--no-embeddings]

For each method (BM25 alone, char n-gram TF-IDF alone, embeddings alone, hybrid) the handoff
threshold is chosen on the *tune* split (maximising correct decisions: right answer for an
in-scope question, handoff for an out-of-scope one) and then applied unchanged to --split.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from botdesk.assistant.embeddings import load_default_embedder
from botdesk.assistant.knowledge import parse_knowledge
from botdesk.assistant.retrieval import DEFAULT_CONFIDENCE_THRESHOLD, DEFAULT_WEIGHTS, Retriever

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
            s = retriever.signals(q["q"])[method]
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


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--split", default="test", choices=["test", "tune"])
    parser.add_argument("--no-embeddings", action="store_true")
    args = parser.parse_args()
    entries, questions = load()
    embedder = None if args.no_embeddings else load_default_embedder()
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
