"""Exact dense search (ingest/exact.py): the true nearest chunks, the same in every process, filtered the way
Chroma filters, and reloaded when another process writes the index."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from ingest.exact import ExactVectors

ROOT = Path(__file__).resolve().parents[2]


def _random_vectors(n: int, dim: int = 16, seed: int = 7) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_query_gives_the_true_nearest_best_first():
    vectors = _random_vectors(500)
    ids = [f"c{i:04d}" for i in range(500)]
    exact = ExactVectors(ids[::-1], vectors[::-1], [{"doc_id": f"d{i // 5}"} for i in range(500)][::-1])
    q = _random_vectors(1, seed=99)[0]
    brute = sorted(((float(vectors[i] @ q), ids[i]) for i in range(500)), key=lambda x: (-x[0], x[1]))[:20]
    got = exact.query(q, 20)
    assert [c for c, _ in got] == [c for _, c in brute]
    assert [s for _, s in got] == pytest.approx([s for s, _ in brute], abs=1e-6)


def test_ties_are_broken_by_chunk_id_whatever_the_load_order():
    v = np.array([[1.0, 0.0]] * 4, dtype=np.float32)
    for order in ([0, 1, 2, 3], [3, 1, 0, 2]):
        exact = ExactVectors([f"c{i}" for i in order], v, [{}] * 4)
        assert [c for c, _ in exact.query(np.array([1.0, 0.0]), 3)] == ["c0", "c1", "c2"]


def test_filters_mean_what_they_mean_in_chroma():
    ids = ["a", "b", "c", "d"]
    metas = [{"doc_id": "d1", "authority": "X Council", "date_int": 20230105},
             {"doc_id": "d2", "authority": "Y Council", "date_int": 20240210},
             {"doc_id": "d3", "authority": "X Council"},
             {"doc_id": "d4", "authority": "X Council", "date_int": 20250101}]
    exact = ExactVectors(ids, _random_vectors(4, dim=4), metas)
    q = np.ones(4, dtype=np.float32)

    def found(where):
        return sorted(c for c, _ in exact.query(q, 10, where))

    assert found({"authority": "X Council"}) == ["a", "c", "d"]
    assert found({"doc_id": {"$in": ["d2", "d3"]}}) == ["b", "c"]
    assert found({"$and": [{"authority": "X Council"}, {"date_int": {"$gte": 20230601}}]}) == ["d"]
    assert found({"date_int": {"$lte": 20240210}}) == ["a", "b"]  # no date: never in a date range
    assert found({"authority": "Nobody"}) == []
    with pytest.raises(ValueError, match="cannot filter on 'colour'"):
        exact.query(q, 3, {"colour": "red"})


def test_the_index_answers_the_same_in_separate_processes(sample_index_dir):
    """What Chroma's HNSW did not: three fresh processes, the same question vector, the same 30 chunks."""
    script = textwrap.dedent(f"""
        import json, sys
        sys.path.insert(0, {str(ROOT)!r})
        from core.settings import load_settings
        from ingest.index import open_index
        index = open_index(load_settings(index_dir={str(sample_index_dir)!r}), write=False, create=False)
        v = index.embedder.embed_query("Did the council delay the assessment and apologise?")
        print(json.dumps([[c, round(s, 6)] for c, s in index.store.query(v, 30)]))
    """)
    runs = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                           cwd=ROOT).stdout.strip().splitlines()[-1] for _ in range(3)}
    assert len(runs) == 1


def test_it_reloads_after_a_write_here_or_when_another_process_writes(sample_index_dir, make_settings, embedder):
    from core.types import Chunk
    from ingest.index import open_index

    settings = make_settings()
    shutil.copytree(sample_index_dir, settings.index_dir)
    index = open_index(settings, write=True, create=False, embedder=embedder)
    try:
        store = index.store
        token = {"v": 1}
        store._freshness = lambda: token["v"]
        before = len(store.exact_vectors())
        assert before == store.count()
        chunk = Chunk("extra-chunk", "extra-doc", None, "Decision", (1,), "Extra text.", "", 0,
                      {"doc_id": "extra-doc"})
        store.upsert([chunk], np.ones((1, 384), dtype=np.float32))  # a write through this store: reloaded
        assert len(store.exact_vectors()) == before + 1
        store.collection.delete(ids=["extra-chunk"])  # as another process would: not seen until the token moves
        assert len(store.exact_vectors()) == before + 1
        token["v"] = 2
        store._exact_checked_at = 0.0  # the reload interval (EXACT_RELOAD_S) has passed
        assert len(store.exact_vectors()) == before + 1  # this question: the copy it has, while a reload runs
        if (reloading := store._reloading) is not None:
            reloading.join(timeout=60)
        assert len(store.exact_vectors()) == before  # the next: the reloaded copy
        assert store._reloading is None
    finally:
        index.close()
