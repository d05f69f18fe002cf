import time, numpy as np, os, sys
from pathlib import Path
from rag.settings import apply_offline_environment; apply_offline_environment()
from ingest.parse import parse_file
from ingest.chunk import Chunker
from ingest.embed import Embedder
ch=Chunker(); texts=[]
for p in sorted(list(Path('data/sample').glob('*'))+list(Path('eval/corpus/dev').glob('*'))):
    texts += [c.embedding_text(True) for c in ch.chunk(parse_file(p))]
cache=Path(sys.argv[1])
E={b:Embedder(backend=b, cache_dir=cache) for b in ("torch","onnx","onnx-int8")}
t=time.time(); ref=E["torch"].embed(texts); print("torch first", time.time()-t)
for b in ("onnx","onnx-int8"):
    t=time.time(); v=E[b].embed(texts[:2]); print(b,"load+export", round(time.time()-t,1))
    v=E[b].embed(texts); c=(v*ref).sum(1); print(b, "cos min %.5f mean %.5f"%(c.min(), c.mean()))
print(os.getloadavg())
for r in range(3):
  for b,e in E.items():
    for bs in (16,32,64):
      e.batch_size=bs
      t0=time.process_time(); t=time.perf_counter(); e.embed(texts); print(b, bs, "wall/s", round(len(texts)/(time.perf_counter()-t),1), "cpu/s", round(len(texts)/(time.process_time()-t0),1))
print(os.getloadavg())
