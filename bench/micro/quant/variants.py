"""Quantisation variants of the fused fp32 MiniLM ONNX graph made by ingest/onnx_embed.py.

Each variant is a dict of keyword arguments for onnxruntime.quantization.quantize_dynamic.
Node names are those of the fused fp32 graph (6 x Attention_i + 3 MatMuls per layer + EmbedLayerNormalization_0).
"""
from __future__ import annotations

import logging
from pathlib import Path

import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic

FP32 = Path("/tmp/quant/models/base/model-4401081ea61154d4/model.onnx")
OUT = Path("/tmp/quant/variants")
DEF = {"DefaultTensorType": onnx.TensorProto.FLOAT}


def attn(i):  # fused QKV projection (+ attention itself) of layer i
    return f"Attention_{i}"


def attn_out(i):
    return f"/inner/encoder/layer.{i}/attention/output/dense/MatMul"


def ffn_in(i):
    return f"/inner/encoder/layer.{i}/intermediate/dense/MatMul"


def ffn_out(i):
    return f"/inner/encoder/layer.{i}/output/dense/MatMul"


def layer(i):
    return [attn(i), attn_out(i), ffn_in(i), ffn_out(i)]


L = range(6)
BASE = dict(weight_type=QuantType.QInt8, per_channel=True, extra_options=dict(DEF))
NOEMB = dict(BASE, op_types_to_quantize=["MatMul", "Attention"])

VARIANTS: dict[str, dict] = {
    # what the project does today (quantises EmbedLayerNormalization too: word/position embeddings and the
    # embedding LayerNorm gamma/beta, per tensor, uint8)
    "int8": dict(BASE),
    # the same but EmbedLayerNormalization left fp32
    "noemb": dict(NOEMB),
    # candidate 1: only the feed-forward MatMuls (intermediate + output dense), attention and embeddings fp32
    "ffn": dict(BASE, op_types_to_quantize=["MatMul"], nodes_to_quantize=[n for i in L for n in (ffn_in(i), ffn_out(i))]),
    # candidate 1b: FFN + attention output projection quantised, the fused QKV Attention fp32
    "noqkv": dict(BASE, op_types_to_quantize=["MatMul"]),
    # candidate 2: first / last / both layers fp32 (embeddings fp32 as well)
    "skip0": dict(NOEMB, nodes_to_exclude=layer(0)),
    "skip5": dict(NOEMB, nodes_to_exclude=layer(5)),
    "skip05": dict(NOEMB, nodes_to_exclude=layer(0) + layer(5)),
    # candidate 2 on top of the current recipe (embeddings quantised)
    "emb_skip05": dict(BASE, nodes_to_exclude=layer(0) + layer(5)),
    # candidate 3
    "noemb_rr": dict(NOEMB, reduce_range=True),
    "noemb_actsym": dict(NOEMB, extra_options=dict(DEF, ActivationSymmetric=True)),
    "noemb_wasym": dict(NOEMB, extra_options=dict(DEF, WeightSymmetric=False)),
    # candidate 4
    "noemb_u8": dict(NOEMB, weight_type=QuantType.QUInt8),
    "int8_u8": dict(BASE, weight_type=QuantType.QUInt8),
}
# sensitivity: everything (except embeddings) quantised but one layer
for _i in L:
    VARIANTS[f"only_not{_i}"] = dict(NOEMB, nodes_to_exclude=layer(_i))


# not quantize_dynamic: MatMulNBits 8-bit weights (block-wise, symmetric) for the 18 MatMuls, with accuracy_level 4
# (activations quantised to int8 per block at run time), then quantize_dynamic for the fused Attention only.
NBITS = {
    "nb8_b32": dict(bits=8, block_size=32, accuracy_level=4, qattn=True),
    "nb8_b128": dict(bits=8, block_size=128, accuracy_level=4, qattn=True),
    "nb8_b32_fpattn": dict(bits=8, block_size=32, accuracy_level=4, qattn=False),
    "nb8_b256": dict(bits=8, block_size=256, accuracy_level=4, qattn=True),
    # hybrid: MatMulNBits 8-bit only for the 6 FFN output MatMuls (the sensitive ones), then quantize_dynamic
    # (as "noemb") for QKV Attention, attention output and FFN intermediate
    "hyb_b128": dict(bits=8, block_size=128, accuracy_level=4, qattn="rest"),
}


def _nbits(name: str, source: Path, target: Path) -> None:
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
    cfg = dict(NBITS[name])
    qattn = cfg.pop("qattn")
    # (nodes_to_include is OR-ed with op_types_to_quantize in ORT 1.31, so exclude the other MatMuls instead)
    exclude = [f(i) for i in L for f in (attn_out, ffn_in)] if qattn == "rest" else None
    q = MatMulNBitsQuantizer(str(source), is_symmetric=True, op_types_to_quantize=("MatMul",),
                             nodes_to_exclude=exclude, **cfg)
    q.process()
    model = q.model.model
    if qattn == "rest":
        quantize_dynamic(model, str(target), **NOEMB)
    elif qattn:
        quantize_dynamic(model, str(target), op_types_to_quantize=["Attention"], per_channel=True,
                         weight_type=QuantType.QInt8, extra_options=dict(DEF))
    else:
        onnx.save(model, str(target))


def quantize(name: str, source: Path, target: Path) -> None:
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        if name in NBITS:
            _nbits(name, source, target)
        else:
            quantize_dynamic(str(source), str(target), **VARIANTS[name])
    finally:
        root.setLevel(level)


def build(name: str) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    target = OUT / f"{name}.onnx"
    if not target.exists():
        tmp = target.with_suffix(".tmp.onnx")
        quantize(name, FP32, tmp)
        tmp.replace(target)
    return target


# sensitivity: one node quantised, everything else fp32 (one_emb = the embedding layer only)
ROLES = {"qkv": attn, "ao": attn_out, "fi": ffn_in, "fo": ffn_out}
for _i in L:
    for _r, _f in ROLES.items():
        VARIANTS[f"one_L{_i}_{_r}"] = dict(BASE, nodes_to_quantize=[_f(_i)])
VARIANTS["one_emb"] = dict(BASE, nodes_to_quantize=["EmbedLayerNormalization_0"])

# from the sensitivity (sens.py): the FFN output projections (input = GELU output, long-tailed, quantised per
# tensor to uint8 at run time) carry most of the error, layer 0's most; keep the worst of them fp32
VARIANTS["nofo"] = dict(NOEMB, nodes_to_exclude=[ffn_out(i) for i in L])
VARIANTS["nofo012"] = dict(NOEMB, nodes_to_exclude=[ffn_out(i) for i in (0, 1, 2)])
VARIANTS["nofo02"] = dict(NOEMB, nodes_to_exclude=[ffn_out(i) for i in (0, 2)])
VARIANTS["nofo0"] = dict(NOEMB, nodes_to_exclude=[ffn_out(0)])
VARIANTS["emb_nofo02"] = dict(BASE, nodes_to_exclude=[ffn_out(i) for i in (0, 2)])


if __name__ == "__main__":
    import collections
    import hashlib
    import sys

    for name in sys.argv[1:] or list(VARIANTS):  # NBITS variants only when named
        p = build(name)
        m = onnx.load(str(p))
        ops = collections.Counter(n.op_type for n in m.graph.node)
        sha = hashlib.sha256(p.read_bytes()).hexdigest()[:16]
        print(f"{name:14s} {p.stat().st_size:>10d} B sha {sha}  QAttention={ops['QAttention']} "
              f"MatMulInteger={ops['MatMulInteger']} MatMul={ops['MatMul']} Attention={ops['Attention']} "
              f"QEmbedLN={ops['QEmbedLayerNormalization']} MatMulNBits={ops['MatMulNBits']}")
