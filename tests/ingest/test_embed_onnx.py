"""The ONNX backend (fp32 is the default): exported locally from the packaged model, it gives the torch vectors."""

from __future__ import annotations

import numpy as np
import pytest

from ingest.onnx_embed import OnnxSentenceEncoder

try:  # the shared helper in tests/conftest.py, under either pytest import mode (prepend / importlib)
    from conftest import SAMPLE_DIR
except ImportError:
    from tests.conftest import SAMPLE_DIR


@pytest.mark.slow
def test_onnx_backend_gives_the_torch_vectors(embedder):
    from ingest.embed import Embedder

    long_text = (SAMPLE_DIR / "003_67a1953511426527.txt").read_text(encoding="utf-8")  # far over 256 tokens
    texts = ["When does the ICO handle rectification?", "Council tax reduction", long_text,
             "The Council will pay Miss X £300 to acknowledge the distress caused."]
    onnx = Embedder(backend="onnx")
    got, want = onnx.embed(texts), embedder.embed(texts)
    assert onnx.backend == "onnx" and onnx.dim == embedder.dim == 384
    assert got.shape == want.shape and got.dtype == np.float32
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert (got * want).sum(axis=1).min() > 0.9999  # same model, same truncation, same pooling
    assert onnx._onnx.path.parent.parent == onnx.cache_dir  # exported into the cache, not next to the model


@pytest.mark.slow
def test_q8_backend_stays_within_a_hair_of_the_fp32_vectors(embedder, tmp_path):
    from core.settings import load_settings
    from ingest.embed import Embedder

    # the default is exact fp32 on every CPU; 8-bit is opt-in (ingest/cpu.py says why)
    assert load_settings().embedding_backend == "auto" and Embedder(backend="auto").backend == "onnx"
    texts = [p.read_text(encoding="utf-8") for p in sorted(SAMPLE_DIR.glob("*.txt"))] + [
        "When does the ICO handle rectification?", "The Council will pay Miss X £300 for the distress caused."]
    q8 = Embedder(backend="onnx-q8", cache_dir=tmp_path / "models")
    got, want = q8.embed(texts), embedder.embed(texts)
    assert q8.backend == "onnx-q8" and q8._onnx.path.name == "model_q8.onnx"
    ops = {n.op_type for n in __import__("onnx").load(str(q8._onnx.path)).graph.node}
    assert {"MatMulNBits", "QAttention"} <= ops and "MatMul" not in ops  # quantised, not a copy of fp32
    cosine = (got * want).sum(axis=1)
    assert cosine.min() > 0.995 and cosine.mean() > 0.998, cosine  # bench/NOTES.md: 0.9980 min, 0.9987 mean
    assert not np.allclose(got, want, atol=1e-6)


def test_q8_without_its_quantiser_package_falls_back_to_fp32_with_a_warning(tmp_path, monkeypatch, caplog):
    import builtins

    from ingest.embed import Embedder

    real_import = builtins.__import__

    def no_onnx_ir(name, *args, **kwargs):
        if name == "onnx_ir" or name.startswith("onnxruntime.quantization.matmul_nbits"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnx_ir)
    e = Embedder(backend="onnx-q8", cache_dir=tmp_path / "models")
    with caplog.at_level("WARNING"):
        assert e.dim == 384
    assert e.backend == "onnx" and e._onnx.path.name == "model.onnx"
    assert "onnx-ir" in caplog.text and "fp32 ONNX model instead" in caplog.text
    assert not (e._onnx.path.parent / "model_q8.onnx").exists()


def test_batches_keep_chunks_together_and_split_sentences_by_length():
    chunks = np.array([256, 256, 250, 240, 256, 230] * 20)
    batches = OnnxSentenceEncoder.batches(chunks, 64)
    assert [len(b) for b in batches] == [64, 56]  # near-equal lengths: full batches
    sentences = np.array([120, 90, 80, 40, 38, 35, 33, 30, 22, 20, 18, 15, 12])
    batches = OnnxSentenceEncoder.batches(sentences, 64)
    assert sorted(i for b in batches for i in b) == list(range(len(sentences)))  # each text exactly once
    for b in batches:
        assert list(sentences[b]) == sorted(sentences[b], reverse=True)
    padded = sum(len(b) * sentences[b].max() for b in batches)
    assert padded < 0.75 * len(sentences) * sentences.max()  # far less padding than one batch of 64
