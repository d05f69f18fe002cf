import sys, json, os
from pathlib import Path
from rag.settings import apply_offline_environment; apply_offline_environment()
from eval import bench
s=bench._settings(Path(sys.argv[1]), sys.argv[2], 64)
from ingest.catalog import Catalog
cat=Catalog(s.catalog_path, create=False); cases=sorted(d.replace("-"," ") for d,_ in cat.all_sources())[:200]; n=cat.count_chunks(); cat.close()
qs=bench.questions(50,0,cases)
print(n, os.getloadavg())
r=bench._measure_project_queries(s, qs)
print(json.dumps(r)); print(os.getloadavg())
