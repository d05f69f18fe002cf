"""The dense index: one Chroma collection, embedded (PersistentClient) or on a server (HttpClient).

The collection records which embedding model, dimension and header setting built it; opening it with
different ones is a clear error rather than silently wrong answers.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from core.errors import ConfigError, IndexMismatchError, IndexStateError, OmbudsError
from core.types import Chunk
from ingest.exact import ExactVectors, load_exact

log = logging.getLogger(__name__)

# Vectors per Chroma write: 100 -> 1.35, 200 -> 1.14, 1000 -> 1.05 ms CPU per vector (with documents;
# bench/NOTES.md); 200 keeps each write short for concurrent readers of a server.
WRITE_BATCH = 200
# The in-memory copy for exact search is reloaded at most this often when another process writes the index.
EXACT_RELOAD_S = 10.0


def chroma_failure(exc: BaseException) -> bool:
    """An error from Chroma, including a Rust panic (pyo3's PanicException derives from BaseException)."""
    return isinstance(exc, Exception) or type(exc).__name__ == "PanicException"


def make_client(chroma_path: Path, chroma_url: str | None):
    """A Chroma client: HttpClient when a server URL is configured, else PersistentClient in chroma_path."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if chroma_url:
        url = urlparse(chroma_url)
        if not url.hostname:
            raise ConfigError(f"chroma_url={chroma_url!r} has no host: write it like http://127.0.0.1:8000")
        try:
            return chromadb.HttpClient(host=url.hostname, port=url.port or (443 if url.scheme == "https" else 8000),
                                       ssl=url.scheme == "https", settings=chroma_settings)
        except BaseException as exc:  # chromadb raises ValueError/ConnectionError variants when the server is absent
            if not chroma_failure(exc):
                raise
            raise IndexStateError(
                f"Cannot reach the Chroma server at {chroma_url} ({type(exc).__name__}: {str(exc)[:160]}). "
                "Start it (make chroma) or unset OMBUDS_CHROMA_URL to use the embedded index."
            ) from None
    chroma_path.mkdir(parents=True, exist_ok=True)
    try:
        return chromadb.PersistentClient(path=str(chroma_path), settings=chroma_settings)
    except BaseException as exc:  # a corrupt folder surfaces as assorted Rust/SQLite errors, even panics
        if not chroma_failure(exc):
            raise
        raise IndexStateError(
            f"The Chroma data in {chroma_path} cannot be opened ({type(exc).__name__}: {str(exc)[:160]}). "
            f"Rebuild the index: python -m ingest --rebuild PATH... --index-dir {chroma_path.parent}"
        ) from None


class VectorStore:
    """Chunk vectors in a Chroma collection, with the metadata filters need."""

    def __init__(self, client: Any, collection: str, embedding_model: str, contextual_headers: bool,
                 location: str, create: bool = True, exact: bool = False,
                 freshness: Callable[[], Any] | None = None, members: Callable[[], Collection[str]] | None = None,
                 snapshot: Path | None = None):
        """exact: search every vector exactly in memory (ingest/exact.py says why) instead of Chroma's HNSW;
        freshness: a token that changes when another process writes the index (the vectors are then reloaded);
        members: the chunk ids the catalog lists (exact search holds those); snapshot: where the in-memory copy is
        kept between processes (a cache beside the catalog, ingest/exact.py)."""
        self.client = client
        self.exact = exact
        self._freshness = freshness
        self._members = members
        self._snapshot = snapshot
        self._written: set[str] = set()  # ids this process upserted: their snapshot rows are read again
        self._exact: ExactVectors | None = None
        self._exact_token: Any = None
        self._exact_checked_at = 0.0  # when the copy was loaded or the freshness token last asked
        self._exact_lock = threading.Lock()
        self._reloading: threading.Thread | None = None
        self.name = collection
        self.embedding_model = embedding_model
        self.contextual_headers = contextual_headers
        self.location = location
        expected = {"embedding_model": embedding_model, "contextual_headers": contextual_headers}
        try:
            if create:
                self.collection = client.get_or_create_collection(
                    collection, embedding_function=None, configuration={"hnsw": {"space": "cosine"}},
                    metadata={**expected, "schema": 1})
            else:
                self.collection = client.get_collection(collection, embedding_function=None)
        except IndexMismatchError:
            raise
        except BaseException as exc:  # NotFoundError and server errors differ between client kinds
            if not chroma_failure(exc):
                raise
            if not create:
                raise IndexStateError(
                    f"No collection {collection!r} in {location}: ingest decisions first "
                    f"(python -m ingest data/sample)."
                ) from None
            raise IndexStateError(
                f"Cannot open collection {collection!r} in {location} ({type(exc).__name__}: {str(exc)[:160]})."
            ) from None
        found = self.collection.metadata or {}
        for key, value in expected.items():
            if key in found and found[key] != value:
                raise IndexMismatchError(
                    f"The index in {location} was built with {key}={found[key]!r}, but this run uses {value!r}. "
                    f"Either set OMBUDS_{key.upper()}={found[key]!r}, or rebuild the index: "
                    f"python -m ingest --rebuild PATH... (with the same --index-dir/--chroma-url)."
                )

    @contextlib.contextmanager
    def _chroma(self, action: str) -> Iterator[None]:
        """Chroma failures (damaged data found by a query, a server gone) as IndexStateError, not tracebacks."""
        try:
            yield
        except BaseException as exc:  # chromadb raises InternalError, InvalidArgumentError, HTTP errors, panics
            if isinstance(exc, OmbudsError) or not chroma_failure(exc):
                raise
            detail = f"{type(exc).__name__}: {str(exc)[:200]}"
            if self.location.startswith(("http://", "https://")):
                raise IndexStateError(
                    f"The Chroma server at {self.location} failed to {action} ({detail}). Check that it is running "
                    f"(make chroma); if its data is damaged, rebuild: python -m ingest --rebuild PATH... "
                    f"--chroma-url {self.location}"
                ) from None
            raise IndexStateError(
                f"The Chroma data in {self.location} failed to {action} ({detail}): it is damaged. Rebuild the "
                f"index: python -m ingest --rebuild PATH... --index-dir {self.location}"
            ) from None

    def check_dimension(self, dim: int) -> None:
        """Refuse vectors of another size than the collection holds."""
        stored = (self.collection.metadata or {}).get("dim")
        if stored is None:
            meta = {k: v for k, v in (self.collection.metadata or {}).items() if not k.startswith("hnsw:")}
            with self._chroma("record the vector size"):
                self.collection.modify(metadata={**meta, "dim": dim})
        elif int(stored) != dim:
            raise IndexMismatchError(
                f"The index in {self.location} holds {stored}-dimensional vectors; the embedding model gives {dim}. "
                "Rebuild the index with python -m ingest --rebuild PATH..."
            )

    def set_metadata(self, **values: Any) -> None:
        """Add keys to the collection's metadata (Chroma refuses hnsw:* keys on modify; they are kept out)."""
        meta = {k: v for k, v in (self.collection.metadata or {}).items() if not k.startswith("hnsw:")}
        with self._chroma("update the collection's metadata"):
            self.collection.modify(metadata={**meta, **values})

    def count(self) -> int:
        """Number of vectors."""
        with self._chroma("count vectors"):
            return int(self.collection.count())

    def ids(self, page: int = 5000) -> Iterator[str]:
        """Every id in the collection, paged."""
        offset = 0
        while True:
            with self._chroma("list vectors"):
                got = self.collection.get(include=[], limit=page, offset=offset)
            batch = got["ids"]
            if not batch:
                return
            yield from batch
            offset += len(batch)

    def upsert(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        """Write chunks and their vectors (idempotent: ids are content hashes)."""
        if len(chunks) != len(vectors):
            raise ValueError(f"{len(chunks)} chunks but {len(vectors)} vectors")
        self._forget_exact()
        self._written.update(c.chunk_id for c in chunks)
        for start in range(0, len(chunks), WRITE_BATCH):
            part = chunks[start:start + WRITE_BATCH]
            with self._chroma("write vectors"):
                self.collection.upsert(
                    ids=[c.chunk_id for c in part],
                    embeddings=vectors[start:start + WRITE_BATCH],
                    # No documents: the catalog holds the text and does the lexical search. Chroma would store
                    # each text again and index it for full-text search: 1.14 -> 0.55 ms CPU per vector at
                    # batch 200, and most of its disk (bench/NOTES.md).
                    metadatas=[{k: v for k, v in c.metadata.items() if v is not None and v != ""} for c in part],
                )

    def delete(self, ids: Sequence[str]) -> None:
        """Remove vectors by id (absent ids are ignored)."""
        ids = list(ids)
        self._forget_exact()
        for start in range(0, len(ids), WRITE_BATCH):
            with self._chroma("delete vectors"):
                self.collection.delete(ids=ids[start:start + WRITE_BATCH])

    def query(self, vector: np.ndarray, n: int, where: dict[str, Any] | None = None) -> list[tuple[str, float]]:
        """Nearest chunks: [(chunk_id, cosine similarity)] best first."""
        if self.exact:
            return self.exact_vectors().query(vector, n, where)
        # No count() first: it reads every row (8-20 ms at 100 000 vectors, bench/NOTES.md), and Chroma 1.5
        # answers n_results above the collection size, or an empty collection, with what it has.
        with self._chroma("search"):
            result = self.collection.query(query_embeddings=[vector], n_results=n, where=where or None,
                                           include=["distances"])
        ids = result["ids"][0]
        distances = result["distances"][0]
        return [(i, 1.0 - float(d)) for i, d in zip(ids, distances)]

    def _load(self) -> ExactVectors:
        written = set(self._written)
        with self._chroma("read every vector"):
            exact = load_exact(self.collection, self._members, self._snapshot, written)
        self._written.difference_update(written)
        return exact

    def save_snapshot(self) -> None:
        """After writing (the end of an ingest): load the copy now and keep its snapshot, so that the next process
        to start reads the snapshot instead of every vector from Chroma."""
        if self.exact and self._snapshot is not None:
            with self._exact_lock:
                self._load_now()

    def _load_now(self) -> None:
        """Load the copy and note the freshness token it matches (so no reload follows at once). Call with the
        lock."""
        token = self._freshness() if self._freshness else None
        self._exact = self._load()
        self._exact_token, self._exact_checked_at = token, time.monotonic()

    def exact_vectors(self) -> ExactVectors:
        """The in-memory copy exact search uses. Loaded on first use (the app's warm-up: from the snapshot where
        it has the catalog's chunks, else from Chroma, ~11 s at 100 000 vectors, bench/NOTES.md) and after this
        store writes. When the freshness token changes (another process
        wrote the index; the token is asked at most once per EXACT_RELOAD_S) it is reloaded in the background,
        while questions go on using the copy they have; chunks it no longer has are skipped by retrieval."""
        with self._exact_lock:
            if self._exact is None:
                self._load_now()
            elif self._reloading is None and time.monotonic() - self._exact_checked_at >= EXACT_RELOAD_S:
                # The token costs a catalog query (a round trip to PostgreSQL): asked once per interval, not per
                # question.
                self._exact_checked_at = time.monotonic()
                token = self._freshness() if self._freshness else None
                if token != self._exact_token:
                    self._reloading = threading.Thread(target=self._reload_exact, args=(token,), daemon=True,
                                                       name="exact-reload")
                    self._reloading.start()
            return self._exact

    def _reload_exact(self, token: Any) -> None:
        try:
            fresh = self._load()
        except Exception as exc:  # noqa: BLE001 - keep answering from the copy we have; the next change tries again
            log.warning("exact search: reloading the vectors failed (%s); keeping the previous copy", exc)
            fresh = None
        with self._exact_lock:
            if fresh is not None and self._exact is not None:
                self._exact, self._exact_token = fresh, token
            self._exact_checked_at = time.monotonic()
            self._reloading = None

    def _forget_exact(self) -> None:
        with self._exact_lock:
            self._exact = None

    def drop(self) -> None:
        """Delete the whole collection (for --rebuild)."""
        try:
            self.client.delete_collection(self.name)
        except Exception as exc:  # absent collection: nothing to drop
            log.debug("delete_collection(%s): %s", self.name, exc)
