import sys, time, os, psutil
from pathlib import Path
from rag.settings import apply_offline_environment; apply_offline_environment()
from ingest.parse import parse_file
from ingest.chunk import Chunker
from ingest.embed import Embedder
import onnxruntime as ort
from ingest import onnx_embed
arena = sys.argv[1] == "on"
orig = ort.SessionOptions
class SO(orig):
    def __init__(self):
        super().__init__()
        self.enable_cpu_mem_arena = arena
onnx_embed_ort = __import__("onnxruntime")
onnx_embed_ort.SessionOptions = SO
ch=Chunker(); texts=[]
for p in sorted(list(Path('data/sample').glob('*'))+list(Path('eval/corpus/dev').glob('*'))):
    texts += [c.embedding_text() for c in ch.chunk(parse_file(p))]
texts=texts*3
e=Embedder(backend="onnx"); e.embed(["warm"])
pr=psutil.Process(); r0=pr.memory_info().rss
t0=time.process_time(); t=time.perf_counter()
for s in range(0,len(texts),256): e.embed(texts[s:s+256])
print("arena", arena, "rss before %.0f MB, after %.0f MB"%(r0/2**20, pr.memory_info().rss/2**20), "chunks/cpu-s %.1f"%(len(texts)/(time.process_time()-t0)), "wall %.1f"%(len(texts)/(time.perf_counter()-t)), os.getloadavg()[0])
