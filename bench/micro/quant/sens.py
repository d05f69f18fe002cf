"""Per-node sensitivity: 1 - mean cosine to fp32 (chunks) when only that node is int8.
cd /work/main && PYTHONPATH=/work/main:/tmp/quant .venv/bin/python /tmp/quant/sens.py"""
import json
from pathlib import Path
import numpy as np
from cosine import gold_texts
from ingest.embed import PACKAGED_EMBEDDING_MODEL, resolve_model
from ingest.onnx_embed import OnnxSentenceEncoder
import variants

texts, questions = gold_texts()
md = Path(resolve_model(PACKAGED_EMBEDDING_MODEL))
ref = OnnxSentenceEncoder(md, variants.FP32).encode(texts, 64)
res = {}
for name in [n for n in variants.VARIANTS if n.startswith("one_")]:
    p = variants.build(name)
    c = (OnnxSentenceEncoder(md, p).encode(texts, 64) * ref).sum(1)
    p.unlink()  # 60-90 MB each; rebuilt on demand
    res[name] = dict(err_mean=float(1 - c.mean()), err_max=float(1 - c.min()))
    print(f"{name:12s} 1-cos mean {1 - c.mean():.5f} max {1 - c.min():.5f}", flush=True)
Path("/tmp/quant/sens.json").write_text(json.dumps(res, indent=1))
