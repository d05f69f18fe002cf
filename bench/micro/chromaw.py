import time, tempfile, numpy as np, os, sys
from rag.settings import apply_offline_environment; apply_offline_environment()
import chromadb
from chromadb.config import Settings
from eval.synth import render
texts=[render(i,0)[:1400] for i in range(4000)]
rng=np.random.default_rng(0)
V=rng.normal(size=(4000,384)).astype(np.float32); V/=np.linalg.norm(V,axis=1,keepdims=True)
meta=[{"doc_id":f"d{i}","authority":"X Council","category":"Education","date_int":20200101,"fictional":True,"position":1,"section":"What I found","paragraphs":"1,2,3","tokens":250} for i in range(4000)]
for mode in sys.argv[1:]:
    c=chromadb.PersistentClient(path=tempfile.mkdtemp(dir="/tmp/perf"), settings=Settings(anonymized_telemetry=False))
    col=c.get_or_create_collection("xyz", embedding_function=None, configuration={"hnsw":{"space":"cosine"}})
    docs = "nodocs" not in mode
    bs = int(mode.split("-")[-1])
    t=time.perf_counter(); t0=time.process_time()
    for s in range(0,4000,bs):
        kw=dict(ids=[f"id{i}" for i in range(s,min(s+bs,4000))], embeddings=V[s:s+bs], metadatas=meta[s:s+bs])
        if docs: kw["documents"]=texts[s:s+bs]
        (col.add if mode.startswith("add") else col.upsert)(**kw)
    print(mode, "ms/vector wall %.2f cpu %.2f"%((time.perf_counter()-t)/4*1000/1000, (time.process_time()-t0)/4), os.getloadavg()[0])
