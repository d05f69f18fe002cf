"""Encode speed of fp32, the current int8 and variants on the 188 gold-corpus chunks, batch 64, interleaved rounds.

cd /work/main && PYTHONPATH=/work/main:/tmp/quant .venv/bin/python /tmp/quant/speed.py ROUNDS variant ...
(fp32 and int8 are always included). chunks/CPU-s = chunks / process CPU time (user+sys, both ORT threads).
"""
import json
import os
import statistics
import sys
import time
from pathlib import Path

from cosine import gold_texts
from ingest.embed import PACKAGED_EMBEDDING_MODEL, resolve_model
from ingest.onnx_embed import OnnxSentenceEncoder

import variants

rounds = int(sys.argv[1])
names = ["fp32", "int8"] + [n for n in sys.argv[2:] if n not in ("fp32", "int8")]
texts, _ = gold_texts()
md = Path(resolve_model(PACKAGED_EMBEDDING_MODEL))
enc = {n: OnnxSentenceEncoder(md, variants.FP32 if n == "fp32" else variants.build(n)) for n in names}
for e in enc.values():
    e.encode(texts[:64], 64)  # warm-up: arena, kernels
print("chunks", len(texts), "load", os.getloadavg(), flush=True)
cpu = {n: [] for n in names}
wall = {n: [] for n in names}
for r in range(rounds):
    order = names if r % 2 == 0 else names[::-1]
    for n in order:
        t0, t = time.process_time(), time.perf_counter()
        enc[n].encode(texts, 64)
        w, c = time.perf_counter() - t, time.process_time() - t0
        cpu[n].append(len(texts) / c)
        wall[n].append(len(texts) / w)
        print(f"round {r} {n:12s} chunks/CPU-s {len(texts) / c:6.1f}  chunks/s {len(texts) / w:6.1f}  "
              f"load {os.getloadavg()[0]:.2f}", flush=True)
summary = {n: dict(cpu_median=statistics.median(cpu[n]), wall_median=statistics.median(wall[n]), cpu=cpu[n],
                   wall=wall[n]) for n in names}
f32, i8 = summary["fp32"]["cpu_median"], summary["int8"]["cpu_median"]
print(f"\n{'variant':12s} {'chunks/CPU-s':>12s} {'x fp32':>7s} {'x int8':>7s} {'chunks/s':>9s}")
for n, s in summary.items():
    print(f"{n:12s} {s['cpu_median']:12.1f} {s['cpu_median'] / f32:7.2f} {s['cpu_median'] / i8:7.2f} "
          f"{s['wall_median']:9.1f}")
out = Path(sys.argv[0]).with_name(f"speed-{int(time.time())}.json")
out.write_text(json.dumps({"load_end": os.getloadavg(), "rounds": rounds, "summary": summary}, indent=1))
print(out)
