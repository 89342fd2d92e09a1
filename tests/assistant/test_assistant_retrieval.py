"""Retrieval: the numpy encoder, and quality floors on the held-out test split.

The floors are the figures measured with ``bench/assistant_quality.py --split test`` minus a
margin; weights and thresholds were chosen on the tune split only.
"""

from __future__ import annotations

import numpy as np

from botdesk.assistant.embeddings import MiniLMEmbedder
from botdesk.assistant.knowledge import KnowledgeEntry
from botdesk.assistant.retrieval import DEFAULT_CONFIDENCE_THRESHOLD, Retriever

Questions = dict[str, list[dict[str, str | None]]]


def _rates(retriever: Retriever, questions: list[dict[str, str | None]]) -> tuple[float, float]:
    inscope = [q for q in questions if q["expect"] is not None]
    oos = [q for q in questions if q["expect"] is None]
    top1 = sum(retriever.search(str(q["q"]), k=1)[0].entry.key == q["expect"] for q in inscope)
    handed_off = sum(
        retriever.search(str(q["q"]), k=1)[0].confidence < DEFAULT_CONFIDENCE_THRESHOLD for q in oos
    )
    return top1 / len(inscope), handed_off / len(oos)


def test_embeddings_are_normalised_and_independent_of_batch_padding(
    embedder: MiniLMEmbedder,
) -> None:
    texts = ["How do I return an item?", "a much longer sentence about shipping to canada fast"]
    batch = embedder._encode(texts)
    alone = np.stack([embedder._encode([t])[0] for t in texts])
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    assert np.allclose(batch, alone, atol=1e-5)
    same, other = embedder.embed(["how to send stuff back", "the cat sleeps on the sofa"])
    assert float(batch[0] @ same) > 0.5 > float(batch[0] @ other) + 0.3


def test_hybrid_quality_floor_on_held_out_test_split(
    hybrid: Retriever, eval_questions: Questions
) -> None:
    top1, oos_handoff = _rates(hybrid, eval_questions["test"])
    # Measured: 83.6% top-1, 75% of out-of-scope questions handed off.
    assert top1 >= 0.78
    assert oos_handoff >= 0.6


def test_lexical_only_quality_floor(lexical: Retriever, eval_questions: Questions) -> None:
    top1, _ = _rates(lexical, eval_questions["test"])
    assert top1 >= 0.65  # measured 71.1% without the embeddings extra


def test_typos_and_paraphrases_reach_the_right_entry(hybrid: Retriever) -> None:
    assert hybrid.search("how do i retrun an item", k=1)[0].entry.key == "ret-how"
    assert hybrid.search("shiping cost", k=1)[0].entry.key == "ship-cost"
    # Known weakness: a two-word query with a typo is not recovered, but it is handed off
    # (low confidence) rather than answered wrongly.
    assert hybrid.search("how to retrun", k=1)[0].confidence < DEFAULT_CONFIDENCE_THRESHOLD
    assert hybrid.search("forgot my pasword", k=1)[0].entry.key == "acc-password-reset"
    hit = hybrid.search("can u ship to norway", k=1)[0]
    assert hit.entry.key == "ship-international"
    assert hit.confidence >= DEFAULT_CONFIDENCE_THRESHOLD


def test_out_of_scope_question_has_low_confidence(hybrid: Retriever) -> None:
    assert hybrid.search("what is the capital of peru", k=1)[0].confidence < 0.5


def test_empty_inputs(eval_entries: list[KnowledgeEntry]) -> None:
    assert Retriever.build([], embedder=None).search("anything") == []
    assert Retriever.build(eval_entries, embedder=None).search("  ?!  ") == []
