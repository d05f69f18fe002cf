"""python -m bench run — ingest throughput and query latency, side by side, on SYNTHETIC decisions.

    python -m bench run                                   # default sizes (see DEFAULT_*), results in bench/results
    python -m bench run --n 1000 10000 --query-sizes 10000 100000 --backend onnx-int8
    python -m bench run --quick --out /tmp/b              # smoke run: 20 files, one small query index

Ingest, on the same files (bench/synth.py, seed --seed), each stage in a fresh subprocess so that its peak
memory is its own and the model load is not timed:
  raw      the encoder alone: Embedder.embed (= model.encode) over exactly the texts this project's ingest
           encodes — the chunks (chunk.embedding_text()) and the continuation passes that reach sentences past a
           chunk's truncation point (ingest/sentences.py) — found untimed beforehand: the limit no pipeline can beat;
  project  ingest.index.Indexer into a fresh temporary index (parse thread, chunks, embed, Chroma, SQLite);
  naive    the stock LangChain pipeline: file text -> RecursiveCharacterTextSplitter(1000, 200) ->
           Chroma.from_documents with HuggingFaceEmbeddings on the same model folder (torch).
Reported: decisions/s, chunks/s (wall clock), the same per CPU-second of the process (robust to other
load on the machine), ratios to raw and naive, peak RSS (psutil, sampled every 20 ms in a thread).

Query latency at indexes of --query-sizes chunks. Embedding 100 000 chunks would take hours on 2 cores,
so the query indexes are FILLED CHEAPLY: the project index from the largest ingest run (real decisions,
real vectors) is the base; it is copied round after round, each copy with new case numbers (reserved
range 98 NNN NNN), new chunk ids and catalog rows (same text), and vectors = base vector + Gaussian noise
(sigma 0.017 per dimension, cosine ≈ 0.95 to the original), re-normalised. The naive index is filled the
same way from its own chunks. Then 50 questions (templates over the synthetic topics; 5 name a case
number): retrieval only (QueryAnalyser + HybridRetriever.retrieve), and the full extractive answer
(Assistant.ask), p50/p95; the naive pipeline's similarity_search(k=candidates) on its index of the same size.

Results: one JSON file per run in --out, and a summary table on stdout. Never a quality figure.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import hashlib
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SIZES = [200, 600]
DEFAULT_QUERY_SIZES = [10_000, 100_000]
QUICK_SIZES = [20]
QUICK_QUERY_SIZES = [300]
NOISE_SIGMA = 0.017
NAIVE_COLLECTION = "naive_bench"


def log(message: str) -> None:
    """Progress on stderr (stdout carries the summary, and the worker's JSON)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------
# Measuring
# ------------------------------------------------------------------------------------------------

class Meter:
    """Wall time, process CPU time and peak RSS (sampled in a thread) of the block it wraps."""

    def __init__(self, interval: float = 0.02):
        import psutil

        self.process = psutil.Process()
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> Meter:
        self.rss_before = self.process.memory_info().rss
        self.peak = self.rss_before
        self.load_before = os.getloadavg()[0]
        cpu = self.process.cpu_times()
        self._cpu0 = cpu.user + cpu.system
        self._t0 = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._t0
        cpu = self.process.cpu_times()
        self.cpu_seconds = cpu.user + cpu.system - self._cpu0
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)
        self.load_after = os.getloadavg()[0]

    def result(self, decisions: int, chunks: int) -> dict[str, Any]:
        """Throughput figures for this block."""
        mb = 1024 * 1024
        return {
            "decisions": decisions, "chunks": chunks, "seconds": round(self.seconds, 2),
            "cpu_seconds": round(self.cpu_seconds, 2),
            "decisions_per_s": round(decisions / self.seconds, 2) if self.seconds else None,
            "chunks_per_s": round(chunks / self.seconds, 2) if self.seconds else None,
            "decisions_per_cpu_s": round(decisions / self.cpu_seconds, 3) if self.cpu_seconds else None,
            "chunks_per_cpu_s": round(chunks / self.cpu_seconds, 3) if self.cpu_seconds else None,
            "rss_before_mb": round(self.rss_before / mb, 1), "peak_rss_mb": round(self.peak / mb, 1),
            "peak_growth_mb": round((self.peak - self.rss_before) / mb, 1),
            "load_before": round(self.load_before, 2), "load_after": round(self.load_after, 2),
        }


def percentiles(values: Sequence[float]) -> dict[str, float | None]:
    """p50 and p95 (linear interpolation), in the values' unit, rounded."""
    import numpy as np

    if not values:
        return {"p50": None, "p95": None, "n": 0}
    arr = np.asarray(values, dtype=float)
    return {"p50": round(float(np.percentile(arr, 50)), 1), "p95": round(float(np.percentile(arr, 95)), 1),
            "n": len(values)}


def machine() -> dict[str, Any]:
    """What the figures were measured on: the CPU with the instruction-set flags that change the encoder's
    kernels (8-bit results and speed depend on them), and the backend `auto` picks there."""
    import psutil

    from ingest.cpu import choose_backend, cpu_info

    info = cpu_info()
    cpu = info.model
    versions = {}
    for name in ("torch", "onnxruntime", "chromadb", "sentence_transformers", "langchain_chroma", "transformers"):
        try:
            versions[name] = __import__(name).__version__
        except Exception:  # a missing or broken optional package just goes unreported
            versions[name] = None
    return {"cpu": cpu, "cpu_flags": list(info.flags), "auto_embedding_backend": choose_backend(info),
            "cores": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(), "platform": platform.platform(), "versions": versions,
            "load_at_start": [round(x, 2) for x in os.getloadavg()]}


# ------------------------------------------------------------------------------------------------
# Stages (each runs in its own process unless --quick)
# ------------------------------------------------------------------------------------------------

def _settings(index_dir: Path, backend: str, batch_size: int, **extra: Any):
    from core.settings import load_settings

    return load_settings(index_dir=index_dir, log_dir=index_dir.parent / "logs", embedding_backend=backend,
                         embed_batch_size=batch_size, **extra)


_EMBEDDERS: dict[tuple[str, int], Any] = {}


def _embedder(backend: str, batch_size: int):
    """One loaded Embedder per (backend, batch size) in this process; loaded before any timer starts."""
    from ingest.embed import Embedder

    key = (backend, batch_size)
    if key not in _EMBEDDERS:
        e = Embedder(backend=backend, batch_size=batch_size)
        e.embed(["warm up the model"])
        _EMBEDDERS[key] = e
    return _EMBEDDERS[key]


def encoder_texts(embedder: Any, items: Sequence[tuple[Any, Sequence[Any]]]) -> list[str]:
    """Every text ingest runs through the encoder for these decisions — the chunks, the continuation passes that
    reach sentences past a chunk's truncation point, the sentences no chunk holds whole (ingest/sentences.py) —
    found by one untimed run."""
    from ingest.sentences import embed_chunks_and_sentences

    seen: list[str] = []
    spans_call, embed_call = embedder.embed_with_spans, embedder.embed

    def with_spans(texts: Sequence[str], spans: Any) -> Any:
        seen.extend(texts)
        return spans_call(texts, spans)

    def alone(texts: Sequence[str]) -> Any:
        seen.extend(texts)
        return embed_call(texts)

    embedder.embed_with_spans, embedder.embed = with_spans, alone
    try:
        embed_chunks_and_sentences(embedder, items, True)
    finally:
        del embedder.embed_with_spans, embedder.embed
    return seen


def stage_raw(spec: dict[str, Any]) -> dict[str, Any]:
    """The encoder alone over every text this project's ingest encodes (chunks and sentence continuations)."""
    from ingest.chunk import Chunker
    from ingest.parse import parse_file

    files = [Path(p) for p in spec["files"]]
    chunker = Chunker()
    decisions = [parse_file(f) for f in files]
    items = [(d, chunker.chunk(d)) for d in decisions]
    embedder = _embedder(spec["backend"], spec["batch_size"])
    texts = encoder_texts(embedder, items)
    chunks = sum(len(cs) for _, cs in items)
    with Meter() as m:
        vectors = embedder.embed(texts)
    assert len(vectors) == len(texts)
    result = m.result(len(files), chunks)
    result["encoder_texts"] = len(texts)
    return result


def stage_project(spec: dict[str, Any]) -> dict[str, Any]:
    """This project's Indexer into a fresh index."""
    from ingest.index import Indexer, open_index

    files = [Path(p) for p in spec["files"]]
    settings = _settings(Path(spec["index_dir"]), spec["backend"], spec["batch_size"])
    index = open_index(settings, write=True, embedder=_embedder(spec["backend"], spec["batch_size"]))
    try:
        indexer = Indexer(index, batch_chunks=spec.get("batch_chunks", 256))
        with Meter() as m:
            report = indexer.ingest(files)
    finally:
        index.close()
    if report.failed:
        raise RuntimeError(f"{report.failed} synthetic files failed to ingest: {report.failures[:3]}")
    return m.result(report.added, report.chunks_written)


def _naive_embeddings():
    from langchain_huggingface import HuggingFaceEmbeddings

    from core.settings import PACKAGED_EMBEDDING_MODEL
    from ingest.embed import resolve_model

    emb = HuggingFaceEmbeddings(model_name=resolve_model(PACKAGED_EMBEDDING_MODEL), model_kwargs={"device": "cpu"})
    emb.embed_query("warm up the model")
    return emb


def _chroma_client(path: Path):
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    return chromadb.PersistentClient(path=str(path), settings=ChromaSettings(anonymized_telemetry=False))


def stage_naive(spec: dict[str, Any]) -> dict[str, Any]:
    """The stock LangChain pipeline, as a tutorial writes it."""
    from langchain_chroma import Chroma
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    files = [Path(p) for p in spec["files"]]
    embeddings = _naive_embeddings()
    client = _chroma_client(Path(spec["chroma_dir"]))
    with Meter() as m:
        splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)
        documents = []
        for f in files:
            documents.extend(splitter.create_documents([f.read_text(encoding="utf-8")],
                                                      metadatas=[{"source": str(f)}]))
        Chroma.from_documents(documents, embeddings, collection_name=NAIVE_COLLECTION, client=client)
    return m.result(len(files), len(documents))


# --- query indexes ------------------------------------------------------------------------------

def _noisy(vectors, rng) -> Any:
    import numpy as np

    out = vectors + rng.normal(0.0, NOISE_SIGMA, size=vectors.shape).astype(np.float32)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def _fill_project(settings, target_chunks: int, seed: int, first_index: int) -> dict[str, Any]:
    """Grow the project index to about target_chunks by copying its base decisions (see module docstring)."""
    import numpy as np

    from bench.synth import case_number
    from core.casenum import case_number_slug
    from ingest.index import open_index

    index = open_index(settings, write=True, embedder=_embedder(settings.embedding_backend,
                                                                settings.embed_batch_size))
    started = time.perf_counter()
    try:
        catalog, collection = index.catalog, index.store.collection
        base_meta = catalog.get_meta("bench_base_docs")
        if base_meta is None:  # the first fill: remember which decisions are real, copy only those
            base_docs = [doc_id for doc_id, _ in catalog.all_sources()]
            catalog.set_meta("bench_base_docs", json.dumps(base_docs))
            catalog.set_meta("bench_next_index", str(first_index))
        base_docs = json.loads(catalog.get_meta("bench_base_docs") or "[]")
        next_index = int(catalog.get_meta("bench_next_index") or first_index)
        decisions = catalog.decisions(base_docs)
        sentences = catalog.sentence_vectors(base_docs)
        chunks = {d: catalog.chunks_of(d) for d in base_docs}
        ids = [c.chunk_id for d in base_docs for c in chunks[d]]
        vectors: dict[str, Any] = {}
        for start in range(0, len(ids), 2000):
            got = collection.get(ids=ids[start:start + 2000], include=["embeddings"])
            vectors.update(zip(got["ids"], np.asarray(got["embeddings"], dtype=np.float32)))
        rng = np.random.default_rng(seed + next_index)
        count = catalog.count_chunks()
        copies = 0
        while count < target_chunks:
            batch_items, batch_chunks, batch_vecs, batch_sentences = [], [], [], {}
            for doc_id in base_docs:
                if count >= target_chunks:
                    break
                d = decisions[doc_id]
                new_case = case_number(next_index, seed)
                next_index += 1
                new_id = case_number_slug(new_case)
                nd = dataclasses.replace(d, doc_id=new_id, case_number=new_case, source_path=f"bench-copy:{new_id}",
                                         content_hash=hashlib.sha256(f"{d.content_hash}|{new_id}".encode()).hexdigest())
                new_chunks = []
                for c in chunks[doc_id]:
                    meta = {**c.metadata, "doc_id": new_id, "case_number": new_case}
                    new_chunks.append(dataclasses.replace(
                        c, chunk_id=hashlib.sha256(f"{c.chunk_id}|{new_id}".encode()).hexdigest()[:32],
                        doc_id=new_id, case_number=new_case, header=c.header.replace(d.case_number or "", new_case),
                        metadata=meta))
                    batch_vecs.append(vectors[c.chunk_id])
                batch_items.append((nd, new_chunks))
                if doc_id in sentences:
                    batch_sentences[new_id] = dataclasses.replace(sentences[doc_id], doc_id=new_id)
                batch_chunks.extend(new_chunks)
                count += len(new_chunks)
                copies += 1
            vecs = _noisy(np.stack(batch_vecs), rng)
            for start in range(0, len(batch_chunks), 4000):
                part = batch_chunks[start:start + 4000]
                collection.upsert(ids=[c.chunk_id for c in part], embeddings=vecs[start:start + 4000],
                                  metadatas=[{k: v for k, v in c.metadata.items() if v is not None and v != ""}
                                             for c in part])
            catalog.replace_decisions(batch_items, batch_sentences)
        catalog.set_meta("bench_next_index", str(next_index))
        catalog.optimize()  # as an ingest does at its end: PostgreSQL vacuums (ingest/catalog_pg.py)
        index.store.save_snapshot()  # as an ingest does at its end (ingest/exact.py)
        result = {"chunks": catalog.count_chunks(), "vectors": index.store.count(),
                  "decisions": catalog.count_decisions(), "copies_added": copies,
                  "fill_seconds": round(time.perf_counter() - started, 1)}
    finally:
        index.close()
    if result["chunks"] != result["vectors"]:
        raise RuntimeError(f"bench fill left catalog and Chroma disagreeing: {result}")
    return result


_TEMPLATES = [
    "What did the council agree to do after it {act} about {noun}?",
    "Was the council at fault when it {act}?",
    "How much did a council pay when it {act}?",
    "Can the Ombudsman investigate a complaint about {noun}?",
    "What happened when a complaint about {noun} was delayed?",
    "Did the council apologise after it {act}?",
    "What remedy was agreed for delays with {noun}?",
    "Why did the Ombudsman not investigate a complaint about {noun}?",
    "What should a council do when someone complains about {noun}?",
]


def questions(n: int, seed: int, case_numbers: Sequence[str]) -> list[str]:
    """n benchmark questions over the synthetic topics; every tenth names a case number in the index."""
    from bench.synth import _TOPICS

    rng = random.Random(f"{seed}:questions")
    out = []
    for i in range(n):
        if case_numbers and i % 10 == 9:
            out.append(f"What did the Ombudsman decide in case {rng.choice(list(case_numbers))}?")
            continue
        _, _, nouns, acts = rng.choice(_TOPICS)
        out.append(rng.choice(_TEMPLATES).format(act=rng.choice(acts), noun=rng.choice(nouns)))
    return out


def _measure_project_queries(settings, qs: Sequence[str], warmup: int = 3) -> dict[str, Any]:
    from core.types import Filters
    from ingest.index import open_index
    from rag.assistant import Assistant

    index = open_index(settings, write=False, create=False,
                       embedder=_embedder(settings.embedding_backend, settings.embed_batch_size))
    assistant = Assistant(settings, index)
    try:
        # What the app does before it opens its port, then the first question a person asks (issue 12).
        warm_up_s = assistant.warm_up()
        t = time.perf_counter()
        assistant.ask(qs[0])  # a question like most (qs[9], qs[19]... name a case number)
        first_ms = (time.perf_counter() - t) * 1000
        for q in qs[:warmup]:
            assistant.ask(q)
        retrieval, parts = [], {"dense_ms": [], "lexical_ms": []}
        for q in qs:
            t = time.perf_counter()
            query = assistant.analyser.analyse(q, Filters(), [])
            found = assistant.retriever.retrieve(query)
            retrieval.append((time.perf_counter() - t) * 1000)
            for key in parts:
                if key in found.timings_ms:
                    parts[key].append(found.timings_ms[key])
        answer, evidence, abstained = [], [], 0
        for q in qs:
            t = time.perf_counter()
            ans = assistant.ask(q)
            answer.append((time.perf_counter() - t) * 1000)
            evidence.append(ans.timings_ms.get("evidence_ms", 0.0))
            abstained += ans.abstained
    finally:
        assistant.close()
    return {"retrieval_ms": percentiles(retrieval), "answer_ms": percentiles(answer),
            "dense_ms": percentiles(parts["dense_ms"]), "lexical_ms": percentiles(parts["lexical_ms"]),
            "evidence_ms": percentiles(evidence), "abstained": abstained, "warm_up_s": round(warm_up_s, 2),
            "first_answer_ms": round(first_ms, 1)}


def stage_query(spec: dict[str, Any]) -> dict[str, Any]:
    """Grow the project's index to each size and time questions against it."""
    import psutil

    settings = _settings(Path(spec["index_dir"]), spec["backend"], spec["batch_size"])
    out = []
    for size in spec["sizes"]:
        fill = _fill_project(settings, size, spec["seed"], spec["first_copy_index"])
        from ingest.catalog import open_catalog

        cat = open_catalog(settings, create=False)
        try:  # doc ids of the synthetic decisions are their case numbers with hyphens
            cases = sorted(doc_id.replace("-", " ") for doc_id, _ in cat.all_sources())[:200]
        finally:
            cat.close()
        log(f"query: {fill['chunks']} chunks ({fill['decisions']} decisions; filled in {fill['fill_seconds']} s)")
        qs = questions(spec["questions"], spec["seed"], cases)
        timing = _measure_project_queries(settings, qs)
        disk = {name: round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20, 1)
                for name, path in (("chroma", settings.chroma_path), ("catalog", settings.index_dir))
                if path.exists()}
        disk["catalog"] = round(disk.get("catalog", 0.0) - disk.get("chroma", 0.0), 1)  # index_dir holds both
        out.append({"target_chunks": size, **fill, **timing, "disk_mb": disk,
                    "rss_mb": round(psutil.Process().memory_info().rss / 2**20, 1),
                    "load": round(os.getloadavg()[0], 2)})
    return {"sizes": out}


def stage_naive_query(spec: dict[str, Any]) -> dict[str, Any]:
    """Grow the naive Chroma collection the same way and time similarity_search."""
    import numpy as np
    import psutil
    from langchain_chroma import Chroma

    embeddings = _naive_embeddings()
    client = _chroma_client(Path(spec["chroma_dir"]))
    collection = client.get_collection(NAIVE_COLLECTION)
    base = collection.get(include=["embeddings", "documents", "metadatas"])
    base_vecs = np.asarray(base["embeddings"], dtype=np.float32)
    rng = np.random.default_rng(spec["seed"])
    store = Chroma(client=client, collection_name=NAIVE_COLLECTION, embedding_function=embeddings)
    qs = questions(spec["questions"], spec["seed"], [])
    out, copy = [], 0
    for size in spec["sizes"]:
        started = time.perf_counter()
        while collection.count() < size:
            copy += 1
            n = min(len(base["ids"]), size - collection.count())
            vecs = _noisy(base_vecs[:n], rng)
            for start in range(0, n, 4000):
                end = min(n, start + 4000)
                collection.add(ids=[f"{i}-copy{copy}" for i in base["ids"][start:end]], embeddings=vecs[start:end],
                               documents=base["documents"][start:end], metadatas=base["metadatas"][start:end])
        fill_seconds = time.perf_counter() - started
        for q in qs[:3]:
            store.similarity_search(q, k=spec["k"])
        times = []
        for q in qs:
            t = time.perf_counter()
            store.similarity_search(q, k=spec["k"])
            times.append((time.perf_counter() - t) * 1000)
        out.append({"target_chunks": size, "chunks": collection.count(), "fill_seconds": round(fill_seconds, 1),
                    "similarity_search_ms": percentiles(times),
                    "rss_mb": round(psutil.Process().memory_info().rss / 2**20, 1),
                    "load": round(os.getloadavg()[0], 2)})
    return {"sizes": out, "k": spec["k"]}


STAGES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "raw": stage_raw, "project": stage_project, "naive": stage_naive, "query": stage_query,
    "naive-query": stage_naive_query,
}


def run_stage(name: str, spec: dict[str, Any], in_process: bool) -> dict[str, Any]:
    """Run one stage, in a fresh interpreter unless in_process; returns its result dict."""
    if in_process:
        return STAGES[name](spec)
    spec_file = Path(spec["workdir"]) / f"spec-{name}-{time.monotonic_ns()}.json"
    spec_file.write_text(json.dumps({"stage": name, **spec}))
    proc = subprocess.run([sys.executable, "-m", "bench", "run", "--worker", str(spec_file)], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=None, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"bench stage {name} failed (exit {proc.returncode}); see the messages above")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def worker(spec_file: Path) -> int:
    """Entry point of a stage subprocess: print the result as the last line of stdout."""
    from core.settings import apply_offline_environment

    apply_offline_environment()
    import logging

    logging.basicConfig(level=logging.WARNING)
    spec = json.loads(spec_file.read_text())
    result = STAGES[spec["stage"]](spec)
    print(json.dumps(result))
    return 0


# ------------------------------------------------------------------------------------------------
# The run
# ------------------------------------------------------------------------------------------------

def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def run(args: argparse.Namespace) -> dict[str, Any]:
    """All stages; returns the results document."""
    from bench.synth import write_corpus

    sizes = sorted(args.n)
    workdir = Path(tempfile.mkdtemp(prefix="ombuds-bench-", dir=args.workdir))
    results: dict[str, Any] = {
        "schema": 1, "created": dt.datetime.now().isoformat(timespec="seconds"), "machine": machine(),
        "config": {"sizes": sizes, "query_sizes": args.query_sizes, "backend": args.backend,
                   "batch_size": args.batch_size, "seed": args.seed, "questions": args.questions,
                   "quick": args.quick, "isolated_processes": not args.in_process,
                   "naive": not args.skip_naive},
        "method": {
            "corpus": "bench/synth.py (SYNTHETIC, benchmark only), same files for every pipeline",
            "raw": "Embedder.embed over this project's chunk.embedding_text(), parsed/chunked untimed",
            "project": "ingest.index.Indexer.ingest into a fresh temporary index (parse thread, embed, Chroma, SQLite)",
            "naive": "file text -> RecursiveCharacterTextSplitter(1000, 200) -> Chroma.from_documents("
                     "HuggingFaceEmbeddings(same model folder, torch))",
            "query_fill": f"project index of the largest ingest run copied round after round: new case numbers "
                          f"(98 NNN NNN), new chunk ids and catalog rows with the same text; vectors = base + "
                          f"N(0, {NOISE_SIGMA}) per dimension, re-normalised (cosine ~0.95 to the original); "
                          f"naive collection filled the same way from its own chunks",
            "questions": "templates over the synthetic topics; every tenth names a case number in the index",
            "timers": "model loads excluded; CPU seconds = user+system of the stage's process (all threads)",
        },
        "ingest": [], "query": [], "naive_query": [],
    }
    try:
        corpus = workdir / "corpus"
        log(f"writing {sizes[-1]} synthetic decisions to {corpus}")
        files = [str(p) for p in write_corpus(sizes[-1], corpus, args.seed)]
        common = {"backend": args.backend, "batch_size": args.batch_size, "workdir": str(workdir),
                  "seed": args.seed}
        for n in sizes:
            subset = files[:n]
            row: dict[str, Any] = {"n": n}
            log(f"ingest n={n}: raw encoder")
            row["raw"] = run_stage("raw", {**common, "files": subset}, args.in_process)
            log(f"ingest n={n}: project pipeline")
            row["project"] = run_stage("project", {**common, "files": subset,
                                                   "index_dir": str(workdir / f"project-{n}" / "index")},
                                       args.in_process)
            if not args.skip_naive:
                log(f"ingest n={n}: naive LangChain pipeline")
                row["naive"] = run_stage("naive", {**common, "files": subset,
                                                   "chroma_dir": str(workdir / f"naive-{n}")}, args.in_process)
            p, r, nv = row["project"], row["raw"], row.get("naive")
            row["ratios"] = {
                "project_vs_raw_wall": _ratio(p["chunks_per_s"], r["chunks_per_s"]),
                "project_vs_raw_cpu": _ratio(p["chunks_per_cpu_s"], r["chunks_per_cpu_s"]),
                "project_vs_naive_decisions_wall": _ratio(p["decisions_per_s"], nv and nv["decisions_per_s"]),
                "project_vs_naive_decisions_cpu": _ratio(p["decisions_per_cpu_s"], nv and nv["decisions_per_cpu_s"]),
            }
            results["ingest"].append(row)
            log(f"ingest n={n}: {json.dumps(row['ratios'])}")
        if args.query_sizes:
            n = sizes[-1]
            log(f"query: growing the project index of {n} decisions to {args.query_sizes} chunks")
            results["query"] = run_stage("query", {**common, "index_dir": str(workdir / f"project-{n}" / "index"),
                                                   "sizes": args.query_sizes, "questions": args.questions,
                                                   "first_copy_index": len(files)}, args.in_process)["sizes"]
            if not args.skip_naive:
                log("query: growing the naive collection")
                results["naive_query"] = run_stage(
                    "naive-query", {**common, "chroma_dir": str(workdir / f"naive-{n}"), "sizes": args.query_sizes,
                                    "questions": args.questions, "k": args.candidates}, args.in_process)["sizes"]
    finally:
        results["machine"]["load_at_end"] = [round(x, 2) for x in os.getloadavg()]
        if args.keep:
            log(f"kept the work folder {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    results["targets"] = check_targets(results)
    return results


def check_targets(results: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets against the largest measured sizes (None: not measured in this run)."""
    out: dict[str, Any] = {}
    if results["ingest"]:
        last = results["ingest"][-1]["ratios"]
        out["ingest_vs_raw>=0.85"] = {"wall": last["project_vs_raw_wall"], "cpu": last["project_vs_raw_cpu"]}
        out["ingest_vs_naive>=1.5"] = {"wall": last["project_vs_naive_decisions_wall"],
                                       "cpu": last["project_vs_naive_decisions_cpu"]}
        peaks = [row["project"]["peak_rss_mb"] for row in results["ingest"]]
        out["project_peak_rss_mb_by_size"] = dict(zip([row["n"] for row in results["ingest"]], peaks))
    if results["query"]:
        big = results["query"][-1]
        out["at_chunks"] = big["chunks"]
        out["retrieval_p50_ms<=50"] = big["retrieval_ms"]["p50"]
        out["answer_p50_ms<=100"] = big["answer_ms"]["p50"]
        p50 = big["answer_ms"]["p50"]
        out["first_answer/p50<=2"] = round(big["first_answer_ms"] / p50, 2) if p50 else None
    return out


def summary(results: dict[str, Any]) -> str:
    """The tables people read (Markdown)."""
    m = results["machine"]
    lines = [f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GiB; load average at start "
             f"{m['load_at_start'][0]}, at end {m.get('load_at_end', ['?'])[0]}; backend "
             f"{results['config']['backend']}, batch {results['config']['batch_size']}", ""]
    if results["ingest"]:
        lines += ["| decisions | pipeline | chunks | decisions/s | chunks/s | chunks/CPU-s | vs raw (wall / CPU) | "
                  "vs naive, decisions/s (wall / CPU) | peak RSS MB | load |",
                  "|---:|---|---:|---:|---:|---:|---|---|---:|---:|"]
        for row in results["ingest"]:
            for name in ("raw", "project", "naive"):
                s = row.get(name)
                if not s:
                    continue
                r = row["ratios"]
                vs_raw = f"{r['project_vs_raw_wall']} / {r['project_vs_raw_cpu']}" if name == "project" else ""
                vs_naive = (f"{r['project_vs_naive_decisions_wall']} / {r['project_vs_naive_decisions_cpu']}"
                            if name == "project" and row.get("naive") else "")
                lines.append(f"| {row['n']} | {name} | {s['chunks']} | {s['decisions_per_s']} | {s['chunks_per_s']} | "
                             f"{s['chunks_per_cpu_s']} | {vs_raw} | {vs_naive} | {s['peak_rss_mb']} | "
                             f"{s['load_before']}→{s['load_after']} |")
        lines.append("")
    if results["query"]:
        naive = {q["target_chunks"]: q for q in results.get("naive_query") or []}
        lines += ["| chunks | retrieval p50 / p95 ms | answer p50 / p95 ms | dense p50 | lexical p50 | "
                  "evidence p50 | naive similarity_search p50 / p95 ms | RSS MB | disk MB (Chroma + catalog) | load |",
                  "|---:|---|---|---:|---:|---:|---|---:|---|---:|"]
        for q in results["query"]:
            nq = naive.get(q["target_chunks"])
            nv = f"{nq['similarity_search_ms']['p50']} / {nq['similarity_search_ms']['p95']}" if nq else ""
            lines.append(f"| {q['chunks']} | {q['retrieval_ms']['p50']} / {q['retrieval_ms']['p95']} | "
                         f"{q['answer_ms']['p50']} / {q['answer_ms']['p95']} | {q['dense_ms']['p50']} | "
                         f"{q['lexical_ms']['p50']} | {q['evidence_ms']['p50']} | {nv} | {q['rss_mb']} | "
                         f"{q.get('disk_mb', {}).get('chroma', '?')} + {q.get('disk_mb', {}).get('catalog', '?')} | "
                         f"{q['load']} |")
    return "\n".join(lines)


def build_parser(prog: str = "python -m bench run") -> argparse.ArgumentParser:
    """The command-line interface."""
    from core.settings import load_settings

    defaults = load_settings()
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, nargs="+", help=f"ingest sizes in decisions (default {DEFAULT_SIZES})")
    p.add_argument("--query-sizes", type=int, nargs="*",
                   help=f"query index sizes in chunks (default {DEFAULT_QUERY_SIZES}; none to skip)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="folder for the JSON results")
    p.add_argument("--name", help="results file name (default: date, backend and sizes)")
    p.add_argument("--quick", action="store_true",
                   help=f"smoke run: {QUICK_SIZES} decisions, {QUICK_QUERY_SIZES} chunks, 5 questions, one process")
    p.add_argument("--backend", choices=["auto", "torch", "onnx", "onnx-q8", "onnx-int8"],
                   default=defaults.embedding_backend,
                   help="embedding backend of the project and raw stages (default: OMBUDS_EMBEDDING_BACKEND; auto is "
                        "resolved for this CPU and recorded as what it chose)")
    p.add_argument("--batch-size", type=int, default=defaults.embed_batch_size, help="encode batch size")
    p.add_argument("--questions", type=int, default=50, help="questions per query index (default 50)")
    p.add_argument("--candidates", type=int, default=defaults.candidates,
                   help="k of the naive similarity_search (default: the assistant's candidates)")
    p.add_argument("--seed", type=int, default=0, help="synthetic corpus seed")
    p.add_argument("--skip-naive", action="store_true", help="leave out the LangChain pipeline")
    p.add_argument("--in-process", action="store_true",
                   help="run every stage in this process (peak memory then is not per stage)")
    p.add_argument("--workdir", type=Path, help="where the temporary corpus and indexes go (default: system tmp)")
    p.add_argument("--keep", action="store_true", help="keep the temporary corpus and indexes")
    p.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None, prog: str = "python -m bench run") -> int:
    """Entry point: 0 done, 1 a stage failed, 2 bad arguments."""
    from core.settings import apply_offline_environment

    apply_offline_environment()
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.worker)
    if args.quick:
        args.n = args.n or QUICK_SIZES
        args.query_sizes = QUICK_QUERY_SIZES if args.query_sizes is None else args.query_sizes
        args.questions = min(args.questions, 5)
        args.in_process = True
    args.n = args.n or DEFAULT_SIZES
    args.query_sizes = DEFAULT_QUERY_SIZES if args.query_sizes is None else args.query_sizes
    if any(n < 1 for n in args.n) or any(s < 1 for s in args.query_sizes):
        parser.error("sizes must be positive")
    if args.backend == "auto":
        from ingest.cpu import choose_backend

        args.backend = choose_backend()
    started = time.perf_counter()
    try:
        results = run(args)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    results["total_seconds"] = round(time.perf_counter() - started, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    name = args.name or (f"{dt.datetime.now():%Y%m%d-%H%M%S}-{args.backend}-n{'-'.join(map(str, sorted(args.n)))}"
                         + ("-quick" if args.quick else ""))
    path = args.out / f"{name}.json"
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(summary(results))
    print(f"\ntargets: {json.dumps(results['targets'])}")
    print(f"results: {path} ({results['total_seconds']} s)")
    return 0

