import time, statistics, sys, os
import numpy as np
from pathlib import Path
from rag.settings import apply_offline_environment; apply_offline_environment()
from ingest.store import make_client
d=Path(sys.argv[1])
client=make_client(d/"chroma", None)
col=client.get_collection("ombudsman_decisions")
print(col.count(), col.configuration_json if hasattr(col,'configuration_json') else col.metadata)
rng=np.random.default_rng(0)
qs=rng.normal(size=(30,384)).astype(np.float32); qs/=np.linalg.norm(qs,axis=1,keepdims=True)
base=col.get(limit=30, include=["embeddings"])["embeddings"]
for name,Q in (("random",qs),("near",np.asarray(base))):
  for n in (8,40):
    ts=[]
    for q in Q:
        t=time.perf_counter(); col.query(query_embeddings=[q], n_results=n, include=["distances"]); ts.append((time.perf_counter()-t)*1000)
    print(name, n, "p50 %.1f p95 %.1f"%(statistics.median(ts), sorted(ts)[28]))
t=time.perf_counter(); col.count(); print("count ms", (time.perf_counter()-t)*1000)
print(os.getloadavg())
