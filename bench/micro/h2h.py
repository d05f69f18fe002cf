"""torch vs onnx vs onnx-int8 on the same 188 gold-corpus chunks, interleaved rounds, wall and CPU time."""
import os
import sys
import time
from pathlib import Path

from rag.settings import apply_offline_environment

apply_offline_environment()
from ingest.chunk import Chunker  # noqa: E402
from ingest.embed import Embedder  # noqa: E402
from ingest.parse import parse_file  # noqa: E402

chunker = Chunker()
texts = [c.embedding_text() for p in sorted(list(Path("data/sample").glob("*")) + list(Path("eval/corpus/dev").glob("*")))
         for c in chunker.chunk(parse_file(p))]
embedders = {b: Embedder(backend=b) for b in ("torch", "onnx", "onnx-int8")}
for e in embedders.values():
    e.embed(texts[:8])
print("chunks", len(texts), "load", os.getloadavg())
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
for r in range(rounds):
    for name, e in embedders.items():
        t0, t = time.process_time(), time.perf_counter()
        e.embed(texts)
        wall, cpu = time.perf_counter() - t, time.process_time() - t0
        print(f"round {r} {name:9s} chunks/s {len(texts) / wall:6.1f}  chunks/CPU-s {len(texts) / cpu:6.1f}  "
              f"load {os.getloadavg()[0]:.2f}")
