"""Cosine of each variant's embeddings to the fp32 ONNX embeddings: the gold-corpus chunks (as ingest/index.py
embeds them: Chunk.embedding_text(contextual_headers=True)) and the 89 gold questions.

cd /work/main && PYTHONPATH=/work/main:/tmp/quant .venv/bin/python /tmp/quant/cosine.py [variant ...]
"""
import json
import sys
from pathlib import Path

import numpy as np

from rag.settings import apply_offline_environment

apply_offline_environment()
from ingest.chunk import Chunker  # noqa: E402
from ingest.embed import PACKAGED_EMBEDDING_MODEL, resolve_model  # noqa: E402
from ingest.onnx_embed import OnnxSentenceEncoder  # noqa: E402
from ingest.parse import SUPPORTED_SUFFIXES, parse_file  # noqa: E402
from rag.settings import Settings  # noqa: E402

import variants  # noqa: E402


def gold_texts():
    s = Settings()
    chunker = Chunker(s.chunk_target_tokens, s.chunk_max_tokens, s.token_encoding)
    files = sorted(p for d in ("data/sample", "eval/corpus/dev") for p in Path(d).rglob("*")
                   if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES)
    texts = [c.embedding_text(s.contextual_headers) for p in files for c in chunker.chunk(parse_file(p))]
    questions = [json.loads(line)["question"] for line in open("eval/gold/dev.jsonl") if line.strip()]
    return texts, questions


if __name__ == "__main__":
    texts, questions = gold_texts()
    model_dir = Path(resolve_model(PACKAGED_EMBEDDING_MODEL))
    ref = OnnxSentenceEncoder(model_dir, variants.FP32)
    rc, rq = ref.encode(texts, 64), ref.encode(questions, 64)
    print(f"{len(texts)} chunks, {len(questions)} questions")
    out = {}
    for name in sys.argv[1:] or list(variants.VARIANTS):
        enc = OnnxSentenceEncoder(model_dir, variants.build(name))
        c = (enc.encode(texts, 64) * rc).sum(1)
        q = (enc.encode(questions, 64) * rq).sum(1)
        out[name] = dict(chunk_min=float(c.min()), chunk_mean=float(c.mean()), q_min=float(q.min()),
                         q_mean=float(q.mean()))
        print(f"{name:14s} chunks cos min {c.min():.4f} mean {c.mean():.4f}   questions cos min {q.min():.4f} "
              f"mean {q.mean():.4f}", flush=True)
    Path("/tmp/quant/cosine.json").write_text(json.dumps(out, indent=1))
