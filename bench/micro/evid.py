import time, os, random, sys, statistics
import numpy as np
from pathlib import Path
from rag.settings import apply_offline_environment; apply_offline_environment()
from ingest.parse import parse_file
from rag.answer import sentences_of
from ingest.embed import Embedder
sents=[]
for p in sorted(list(Path('data/sample').glob('*'))+list(Path('eval/corpus/dev').glob('*'))):
    d=parse_file(p)
    for s in d.sections:
        for para in s.paragraphs:
            sents += [x for x in sentences_of(para.text) if len(x.split())>=5]
rng=random.Random(0)
sets=[rng.sample(sents,40) for _ in range(8)]
q="How much did the council pay after it delayed the annual review?"
import torch
cfgs=[]
for b in sys.argv[1].split(","):
    for bs in (64,16,8):
        cfgs.append((b,bs))
E={}
for b,bs in cfgs:
    if b not in E:
        E[b]=Embedder(backend=b); E[b].embed(["warm"])
tok=E[cfgs[0][0]]
print("load", os.getloadavg())
res={c:[] for c in cfgs}
for r in range(2):
  for c in cfgs:
    e=E[c[0]]; e.batch_size=c[1]
    for s in sets:
        t0=time.process_time(); t=time.perf_counter(); e.embed([q]+s); res[c].append(((time.perf_counter()-t)*1000,(time.process_time()-t0)*1000))
for c,v in res.items():
    print(c, "wall med %.0f ms"%statistics.median(x[0] for x in v), "cpu med %.0f ms"%statistics.median(x[1] for x in v))
print("load", os.getloadavg())
