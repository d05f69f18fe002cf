import time, os, random, sys, statistics
import numpy as np
from pathlib import Path
from rag.settings import apply_offline_environment; apply_offline_environment()
from ingest.parse import parse_file
from ingest.chunk import Chunker
from rag.answer import sentences_of
from ingest.embed import Embedder
from ingest.onnx_embed import OnnxSentenceEncoder
import onnxruntime as ort
sents=[]; chunks=[]; ch=Chunker()
for p in sorted(list(Path('data/sample').glob('*'))+list(Path('eval/corpus/dev').glob('*'))):
    d=parse_file(p); chunks += [c.embedding_text() for c in ch.chunk(d)]
    for s in d.sections:
        for para in s.paragraphs:
            sents += [x for x in sentences_of(para.text) if len(x.split())>=5]
rng=random.Random(0)
sets=[rng.sample(sents,40) for _ in range(8)]
q="How much did the council pay after it delayed the annual review?"
e=Embedder(backend="onnx-int8"); e.embed(["warm"]); enc=e._onnx
orig=OnnxSentenceEncoder.batches
fixed=lambda lengths, bs, min_fill=0: [np.argsort(-lengths,kind="stable")[i:i+bs] for i in range(0,len(lengths),bs)]
def sess(spin):
    so=ort.SessionOptions(); so.add_session_config_entry("session.intra_op.allow_spinning", spin)
    return ort.InferenceSession(str(enc.path), so, providers=["CPUExecutionProvider"])
S={"spin1":sess("1"),"spin0":sess("0")}
print("load", os.getloadavg())
res={}
for r in range(2):
  for sname,s in S.items():
    enc.session=s
    for bname,bf in (("fixed",fixed),("adaptive",orig)):
        OnnxSentenceEncoder.batches=staticmethod(bf)
        key=(sname,bname)
        for st in sets:
            t0=time.process_time(); t=time.perf_counter(); enc.encode([q]+st,64); res.setdefault(key+("evid",),[]).append(((time.perf_counter()-t)*1000,(time.process_time()-t0)*1000))
        t0=time.process_time(); t=time.perf_counter(); enc.encode(chunks,64); res.setdefault(key+("chunks",),[]).append((len(chunks)/(time.perf_counter()-t),len(chunks)/(time.process_time()-t0)))
        for _ in range(10):
            t0=time.process_time(); t=time.perf_counter(); enc.encode([q],64); res.setdefault(key+("query",),[]).append(((time.perf_counter()-t)*1000,(time.process_time()-t0)*1000))
for k,v in res.items():
    print(k, "wall med %.1f"%statistics.median(x[0] for x in v), "cpu med %.1f"%statistics.median(x[1] for x in v))
print("load", os.getloadavg())
