import time, statistics, sys, os, sqlite3
from pathlib import Path
from rag.settings import apply_offline_environment; apply_offline_environment()
from rag.text import query_terms, stem
from eval.bench import questions
con=sqlite3.connect(str(Path(sys.argv[1])/"catalog.sqlite"))
N=con.execute("select count(*) from chunks").fetchone()[0]
qs=questions(50, 0, [])
def match(terms): return " OR ".join('"'+t+'"' for t in terms)
A="SELECT c.chunk_id, bm25(chunks_fts, 0.5, 1.0) AS s FROM chunks_fts JOIN chunks c ON c.id = chunks_fts.rowid WHERE chunks_fts MATCH ? ORDER BY s LIMIT 40"
B="SELECT c.chunk_id, f.s FROM (SELECT rowid AS id, bm25(chunks_fts, 0.5, 1.0) AS s FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY s LIMIT 40) f JOIN chunks c ON c.id = f.id ORDER BY f.s"
def df_eq(terms):
    out={}
    for t in terms:
        r=con.execute("SELECT doc FROM chunks_vocab WHERE term = ?", (t,)).fetchone()
        out[t]=r[0] if r else 0
    return out
def timeit(f):
    t=time.perf_counter(); r=f(); return (time.perf_counter()-t)*1000, r
t,_=timeit(lambda: df_eq(["council","fail"])); print("df eq 2 terms ms", round(t,2))
res={}
for q in qs:
    terms=query_terms(q)
    st=[stem(x) for x in terms]
    tdf,df=timeit(lambda: df_eq(st))
    for ratio in (None, 0.5, 0.2, 0.1, 0.05):
        if ratio is None: kept=terms
        else:
            kept=[w for w,s in zip(terms,st) if df.get(s,0) <= ratio*N]
            if not kept: kept=[min(zip(terms,st), key=lambda x: df.get(x[1],0))[0]]
        for name,sql in (("A",A),("B",B)):
            if name=="A" and ratio not in (None,): continue
            t,r=timeit(lambda: con.execute(sql,(match(kept),)).fetchall())
            res.setdefault((name,ratio),[]).append(t)
            if name=="B" and ratio is None: full=set(x[0] for x in r)
            if name=="B" and ratio is not None: res.setdefault(("overlap",ratio),[]).append(len(full & set(x[0] for x in r))/max(1,len(full)))
    res.setdefault("df",[]).append(tdf)
for k,v in res.items(): print(k, "p50 %.2f p95 %.2f"%(statistics.median(v), sorted(v)[int(0.95*len(v))-1]))
print(os.getloadavg())
