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
        members = set(index.catalog.chunk_ids())  # what the catalog lists: exact search holds those chunks
        store._members = lambda: members
        before = len(store.exact_vectors())
        assert before == store.count()
        chunk = Chunk("extra-chunk", "extra-doc", None, "Decision", (1,), "Extra text.", "", 0,
                      {"doc_id": "extra-doc"})
        members.add("extra-chunk")
        store.upsert([chunk], np.ones((1, 384), dtype=np.float32))  # a write through this store: reloaded
        assert len(store.exact_vectors()) == before + 1
        members.discard("extra-chunk")  # as another process would: not seen until the token moves
        store.collection.delete(ids=["extra-chunk"])
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


# --- the snapshot beside the catalog (start-up without reading every vector from Chroma) ------------------------
@pytest.fixture
def collection(tmp_path):
    """A real embedded Chroma collection with 300 random vectors and the metadata filters use."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    client = chromadb.PersistentClient(path=str(tmp_path / "chroma"),
                                       settings=ChromaSettings(anonymized_telemetry=False))
    col = client.create_collection("snapshot-test", embedding_function=None, metadata={"embedding_model": "m"},
                                   configuration={"hnsw": {"space": "cosine"}})
    ids = [f"c{i:04d}" for i in range(300)]
    col.upsert(ids=ids, embeddings=_random_vectors(300), metadatas=[
        {"doc_id": f"d{i // 10}", "authority": f"Council {i % 7}", **({"date_int": 20240101 + i} if i % 3 else {})}
        for i in range(300)])
    return col


def _same(a, b) -> None:
    assert a.ids == b.ids
    np.testing.assert_array_equal(a.matrix, b.matrix)
    for key in a.columns:
        assert a.columns[key].tolist() == b.columns[key].tolist(), key
    q = _random_vectors(1, seed=3)[0]
    for where in (None, {"authority": "Council 2"}, {"date_int": {"$gte": 20240200}}):
        assert a.query(q, 25, where) == b.query(q, 25, where)


def test_a_snapshot_gives_what_chroma_gives_and_is_then_read_instead(collection, tmp_path, caplog):
    from ingest.exact import load_exact

    snapshot = tmp_path / "exact-vectors.npz"
    everything = load_exact(collection)  # no members or snapshot: every vector read from Chroma
    members = set(everything.ids)
    first = load_exact(collection, lambda: members, snapshot)
    assert snapshot.is_file()
    _same(first, everything)
    caplog.clear()
    with caplog.at_level("INFO", logger="ingest.exact"):
        second = load_exact(collection, lambda: members, snapshot)
    assert "300 kept, 0 read from Chroma" in caplog.text
    _same(second, everything)


def test_the_snapshot_follows_the_catalog_and_rereads_what_this_process_wrote(collection, tmp_path, caplog):
    from ingest.exact import load_exact

    snapshot = tmp_path / "exact-vectors.npz"
    members = {f"c{i:04d}" for i in range(200)}
    load_exact(collection, lambda: members, snapshot)
    members = {f"c{i:04d}" for i in range(100, 300)}  # the catalog lost 100 chunks and gained 100
    collection.upsert(ids=["c0150"], embeddings=_random_vectors(1, seed=11))  # rewritten by this process
    with caplog.at_level("INFO", logger="ingest.exact"):
        got = load_exact(collection, lambda: members, snapshot, stale={"c0150"})
    assert "99 kept, 101 read from Chroma" in caplog.text
    truth = load_exact(collection).subset(np.array([i in members for i in load_exact(collection).ids]))
    _same(got, truth)
    _same(load_exact(collection, lambda: members, snapshot), truth)  # and what was rewritten is read back


def test_a_foreign_or_damaged_snapshot_is_never_used(collection, tmp_path, caplog):
    from ingest.exact import load_exact, snapshot_key, write_snapshot

    snapshot = tmp_path / "exact-vectors.npz"
    members = {f"c{i:04d}" for i in range(300)}
    truth = load_exact(collection)
    wrong = ExactVectors(truth.ids, _random_vectors(300, seed=5), [{}] * 300)  # other vectors, same ids
    write_snapshot(snapshot, wrong, {**snapshot_key(collection), "collection": "another-collection"})
    with caplog.at_level("INFO", logger="ingest.exact"):
        _same(load_exact(collection, lambda: members, snapshot), truth)
    assert "taken from another collection" in caplog.text
    snapshot.write_bytes(snapshot.read_bytes()[:5000])  # cut short, as a full disk might leave it
    caplog.clear()
    with caplog.at_level("INFO", logger="ingest.exact"):
        _same(load_exact(collection, lambda: members, snapshot), truth)
    assert "ignoring the damaged snapshot" in caplog.text
    assert not list(tmp_path.glob("*.tmp"))


def test_ingest_leaves_a_snapshot_the_next_process_starts_from(sample_index_dir, caplog):
    """The sample index was built by a real ingest: its snapshot is there and a fresh store reads only it."""
    from core.settings import load_settings
    from ingest.exact import SNAPSHOT_NAME
    from ingest.index import open_index

    assert (sample_index_dir / SNAPSHOT_NAME).is_file()
    index = open_index(load_settings(index_dir=sample_index_dir), write=False, create=False)
    try:
        with caplog.at_level("INFO", logger="ingest.exact"):
            n = len(index.store.exact_vectors())
        assert n == index.catalog.count_chunks() and f"{n} kept, 0 read from Chroma" in caplog.text
    finally:
        index.close()
