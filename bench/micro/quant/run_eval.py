"""Gold eval of one quantisation variant (or the fp32 baseline), with the models cache under /tmp/quant.

cd /work/main && PYTHONPATH=/work/main:/tmp/quant .venv/bin/python /tmp/quant/run_eval.py VARIANT
  VARIANT = fp32 (OMBUDS_EMBEDDING_BACKEND=onnx) or a name in variants.VARIANTS (backend onnx-int8, with
  ingest.onnx_embed._quantize monkeypatched to build that variant).
Writes /tmp/quant/run-VARIANT/ (the eval's outputs) and /tmp/quant/run-VARIANT/model_used.json.
"""
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

name = sys.argv[1]
cache = Path(f"/tmp/quant/models/{name}")
os.environ["OMBUDS_MODEL_CACHE_DIR"] = str(cache)
os.environ["OMBUDS_EMBEDDING_BACKEND"] = "onnx" if name == "fp32" else "onnx-int8"
os.environ.setdefault("TMPDIR", "/tmp")

import ingest.onnx_embed as oe  # noqa: E402
import variants  # noqa: E402

# seed the cache with the fp32 export (byte-identical to the project's, see README) so only the quantiser runs
key_dir = cache / variants.FP32.parent.name
key_dir.mkdir(parents=True, exist_ok=True)
if not (key_dir / "model.onnx").exists():
    os.link(variants.FP32, key_dir / "model.onnx")

calls = []
if name != "fp32":
    def _quantize(source, target):
        calls.append(str(target))
        variants.quantize(name, Path(source), Path(target))
    oe._quantize = _quantize

used = []
_init = oe.OnnxSentenceEncoder.__init__


def _spy(self, model_dir, onnx_path, threads=None):
    used.append(str(onnx_path))
    _init(self, model_dir, onnx_path, threads)


oe.OnnxSentenceEncoder.__init__ = _spy

import rag.assistant as ra  # noqa: E402

evidence = []
_weak = ra.Assistant._weak


def _weak_spy(self, query, retrieval, ev):
    weak = _weak(self, query, retrieval, ev)
    evidence.append({"question": query.text, "score": round(float(ev.best + 0.05 * retrieval.coverage), 5),
                     "weak": weak})
    return weak


ra.Assistant._weak = _weak_spy

from eval.run import main  # noqa: E402

out = Path(f"/tmp/quant/run-{name}")
rc = main(["--gold", "eval/gold/dev.jsonl", "--corpus", "data/sample", "eval/corpus/dev", "--out", str(out),
           "--quiet"])
info = {"variant": name, "backend": os.environ["OMBUDS_EMBEDDING_BACKEND"], "quantize_calls": calls,
        "models_loaded": sorted(set(used))}
for p in sorted(set(used)):
    info[p] = {"bytes": Path(p).stat().st_size, "sha256": hashlib.sha256(Path(p).read_bytes()).hexdigest()}
if name != "fp32":
    ref = variants.build(name)
    info["variant_file_sha256"] = hashlib.sha256(ref.read_bytes()).hexdigest()
out.mkdir(parents=True, exist_ok=True)
(out / "evidence.json").write_text(json.dumps(evidence, indent=1))
(out / "model_used.json").write_text(json.dumps(info, indent=1))
print(json.dumps(info, indent=1))
sys.exit(rc)
