"""The embedding model run by ONNX Runtime, exported locally (offline) from the sentence-transformers folder.

Why not `SentenceTransformer(path, backend="onnx")`: that path needs `optimum-onnx`, whose only release
pins transformers < 4.58 while this project runs transformers 5 (installing it would downgrade transformers,
tokenizers and huggingface_hub under sentence-transformers). The export here uses only torch, onnx and
onnxruntime, and reproduces the sentence-transformers pipeline for a Transformer + mean Pooling (+ Normalize)
model such as all-MiniLM-L6-v2: same tokenizer, same truncation, same pooling. Measured in bench/NOTES.md:
the fp32 graph gives the same vectors as torch (cosine 1.00000); "q8" (8-bit block-wise weights, the default)
0.9987 and ~1.6x the speed with no gold-set change; "int8" (dynamic, per channel) 0.994 and ~2x, but it loses
one gold question.

The exported files are cached under a folder keyed by the weights' hash and the tool versions, written to
a temporary name first and renamed, so concurrent processes never read half a file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ConfigError

log = logging.getLogger(__name__)

OPSET = 17


class OnnxUnavailable(ConfigError):
    """The packages needed to export the model (onnx, onnxruntime) are not installed."""

EXPORT_VERSION = "1"  # bump when the export recipe changes, so caches are rebuilt


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def check_supported(model_dir: Path) -> tuple[int, bool]:
    """(max_seq_length, normalize) of a Transformer + mean-pooling sentence-transformers folder, else ConfigError."""
    modules = _read_json(model_dir / "modules.json")
    kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules] if isinstance(modules, list) else []
    pooling = _read_json(model_dir / "1_Pooling" / "config.json")
    mean_only = pooling.get("pooling_mode_mean_tokens") and not any(
        pooling.get(k) for k in ("pooling_mode_cls_token", "pooling_mode_max_tokens",
                                 "pooling_mode_mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens",
                                 "pooling_mode_lasttoken"))
    if kinds[:2] != ["Transformer", "Pooling"] or not mean_only or set(kinds[2:]) - {"Normalize"} \
            or not (model_dir / "tokenizer.json").exists():
        raise ConfigError(
            f"The ONNX backend supports sentence-transformers folders made of Transformer + mean Pooling "
            f"(+ Normalize) with a tokenizer.json; {model_dir} has {kinds or 'no modules.json'}. "
            "Set OMBUDS_EMBEDDING_BACKEND=torch for this model."
        )
    max_len = int(_read_json(model_dir / "sentence_bert_config.json").get("max_seq_length") or 512)
    return max_len, "Normalize" in kinds


def _weights_key(model_dir: Path) -> str:
    """The model folder's files (path, size, modification time) and the tool versions: a new model or tool
    gets a new export. Not a hash of the weights: reading 90 MB took 1.4 s at every start."""
    from importlib.metadata import version

    h = hashlib.sha256(f"{EXPORT_VERSION}|{version('torch')}|{version('onnxruntime')}|{OPSET}".encode())
    for path in sorted(model_dir.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            st = path.stat()
            h.update(f"{path.relative_to(model_dir)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def _export_fp32(model_dir: Path, target: Path) -> None:
    """torch -> ONNX (eager attention, so ONNX Runtime can fuse it), then ORT's BERT graph fusions."""
    import torch
    from transformers import AutoConfig, AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    config = AutoConfig.from_pretrained(str(model_dir), local_files_only=True)
    model = AutoModel.from_pretrained(str(model_dir), local_files_only=True, attn_implementation="eager").eval()

    class _Hidden(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    dummy = torch.ones((2, 8), dtype=torch.long)
    axes = {0: "batch", 1: "sequence"}
    raw = target.with_name(target.stem + ".raw.onnx")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shape-dependent Python branches: harmless here
        torch.onnx.export(_Hidden(model), (dummy, dummy, torch.zeros_like(dummy)), str(raw),
                          input_names=["input_ids", "attention_mask", "token_type_ids"],
                          output_names=["last_hidden_state"],
                          dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes,
                                        "last_hidden_state": axes},
                          opset_version=OPSET, dynamo=False)
    if getattr(config, "model_type", "") == "bert":
        from onnxruntime.transformers import optimizer

        fused = optimizer.optimize_model(str(raw), model_type="bert", num_heads=config.num_attention_heads,
                                         hidden_size=config.hidden_size, opt_level=1)
        fused.save_model_to_file(str(target))
        raw.unlink()
    else:
        raw.replace(target)


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """The quantisers advise "pre-processing" on the root logger; not needed here."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def _quantize_int8(source: Path, target: Path) -> None:
    """Dynamic int8, per channel (per-tensor lost too much: cosine 0.947 against torch, see bench/NOTES.md)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet_root_logger():
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})


def _quantize_q8(source: Path, target: Path) -> None:
    """8-bit weights in blocks of 128 (MatMulNBits, symmetric, int8 compute) for the 18 MatMuls, and dynamic int8
    for the six fused Attention nodes. Block-wise scales keep the feed-forward output MatMuls — the ones
    per-tensor int8 damages — accurate: cosine 0.9987 to fp32 and no gold question changed, at ~1.6x fp32."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    with _quiet_root_logger():
        quantizer = MatMulNBitsQuantizer(str(source), bits=8, block_size=128, is_symmetric=True, accuracy_level=4,
                                         op_types_to_quantize=("MatMul",))
        quantizer.process()
        quantize_dynamic(quantizer.model.model, str(target), op_types_to_quantize=["Attention"], per_channel=True,
                         weight_type=QuantType.QInt8, extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})


# precision -> (file name, quantiser); "fp32" is the export itself
PRECISIONS = {"fp32": ("model.onnx", None), "int8": ("model_int8.onnx", _quantize_int8),
              "q8": ("model_q8.onnx", _quantize_q8)}


def exported_model(model_dir: Path, cache_dir: Path, precision: str = "fp32") -> Path:
    """Path of the ONNX file for this model at a precision, exporting (and quantising) it into cache_dir first
    if needed (offline)."""
    if precision not in PRECISIONS:
        raise ConfigError(f"ONNX precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    check_supported(model_dir)
    folder = cache_dir / f"{model_dir.name}-{_weights_key(model_dir)}"
    fp32 = folder / PRECISIONS["fp32"][0]
    name, quantize = PRECISIONS[precision]
    wanted = folder / name
    if wanted.exists():
        return wanted
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(dir=folder, prefix=".export-") as tmp:
            if not fp32.exists():
                log.info("exporting %s to ONNX in %s (once; takes a few seconds)", model_dir, folder)
                staged = Path(tmp) / fp32.name
                _export_fp32(model_dir, staged)
                os.replace(staged, fp32)
            if quantize is not None:
                log.info("quantising the ONNX model (%s; once)", precision)
                staged = Path(tmp) / name
                quantize(fp32, staged)
                os.replace(staged, wanted)
    except ImportError as exc:
        raise OnnxUnavailable(
            f"The ONNX backend needs the packages onnx, onnxruntime and (to quantise) onnx-ir ({exc}): "
            "pip install onnx onnxruntime onnx-ir, or set OMBUDS_EMBEDDING_BACKEND=torch."
        ) from None
    return wanted


class OnnxSentenceEncoder:
    """Tokenise, run the ONNX graph, mean-pool over the attention mask, L2-normalise — as sentence-transformers."""

    def __init__(self, model_dir: Path, onnx_path: Path, threads: int | None = None):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.max_len, _ = check_supported(model_dir)
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(self.max_len)
        self.tokenizer.no_padding()
        options = ort.SessionOptions()
        # No busy-waiting between runs: on 2 shared cores the spinning threads took CPU from the parse thread,
        # Chroma and other processes, and made the evidence check slower (bench/NOTES.md).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.dim = int(self.session.get_outputs()[0].shape[-1])
        self.path = onnx_path

    @staticmethod
    def batches(lengths: np.ndarray, batch_size: int, min_fill: float = 0.75) -> list[np.ndarray]:
        """Indices longest first, in batches of at most batch_size that are at least min_fill real tokens.

        A batch is padded to its longest text; sentences of 10 to 120 tokens in one batch of 64 are mostly
        padding (the evidence check embeds 40 such sentences per question). Chunks near the 256-token limit
        still go 64 at a time. Measured in bench/NOTES.md.
        """
        order = np.argsort(-lengths, kind="stable")
        out: list[np.ndarray] = []
        start = 0
        while start < len(order):
            width = int(lengths[order[start]])
            end = start + 1
            while end < len(order) and end - start < batch_size and lengths[order[end]] >= min_fill * width:
                end += 1
            # Below 4 texts a batch costs more in per-run overhead than the padding it saves.
            end = max(end, min(start + 4, len(order), start + batch_size))
            out.append(order[start:end])
            start = end
        return out

    def _forward(self, texts: Sequence[str], batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                              list[Any]]]:
        """Per batch: the texts' indices, the token states, the attention mask and the encodings."""
        encodings = self.tokenizer.encode_batch(list(texts))
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
        for idx in self.batches(lengths, batch_size):
            width = int(lengths[idx].max())
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                n = int(lengths[i])
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1
            feed = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self.inputs:
                feed["token_type_ids"] = np.zeros_like(ids)
            hidden = self.session.run(None, feed)[0]
            yield idx, hidden, mask, [encodings[i] for i in idx]

    def encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        """Vectors for texts, shape (len(texts), dim), float32; batches of similar length (less padding)."""
        return self.encode_spans(texts, batch_size, None)[0]

    def encode_spans(self, texts: Sequence[str], batch_size: int, spans: Sequence[Sequence[tuple[int, int]]] | None
                     ) -> tuple[np.ndarray, list[list[np.ndarray | None]]]:
        """The texts' vectors and, from the same forward pass, the pooled vector of each character range in
        spans[i] of text i (pool_spans); the second list is empty per text when spans is None."""
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        pooled_spans: list[list[np.ndarray | None]] = [[] for _ in texts]
        for idx, hidden, mask, encodings in self._forward(texts, batch_size):
            out[idx] = mean_pool(hidden, mask)
            if spans is not None:
                for row, i in enumerate(idx):
                    if spans[i]:
                        n = len(encodings[row].ids)
                        pooled_spans[i] = pool_spans(hidden[row, :n], encodings[row].offsets, spans[i])
        return out, pooled_spans


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per text, the mean of its token states over the attention mask, L2-normalised (sentence-transformers'
    Pooling + Normalize; the Embedder's contract)."""
    weights = mask[..., None].astype(np.float32)
    pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
    return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)


def pool_spans(hidden: np.ndarray, offsets: Sequence[tuple[int, int]],
               spans: Sequence[tuple[int, int]]) -> list[np.ndarray | None]:
    """The normalised mean of the token states inside each character range [start, end) of the encoded text.

    None for a range the encoding does not reach to its end (the text was truncated before it): its tokens
    were never seen, and a vector from half a sentence would stand in for the whole. Special tokens ([CLS],
    [SEP]: offsets (0, 0)) are never inside a range.
    """
    bounds = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
    starts, ends = bounds[:, 0], bounds[:, 1]
    real = ends > starts
    reach = int(ends[real].max()) if real.any() else 0
    out: list[np.ndarray | None] = []
    for start, end in spans:
        inside = real & (starts >= start) & (ends <= end)
        if end > reach or not inside.any():
            out.append(None)
            continue
        vector = hidden[inside].mean(axis=0)
        out.append((vector / max(float(np.linalg.norm(vector)), 1e-12)).astype(np.float32))
    return out
