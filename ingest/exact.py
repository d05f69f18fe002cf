"""Exact nearest-neighbour search over every chunk vector, held in memory beside the Chroma collection.

Why: Chroma's HNSW index is approximate, and not the same from one process to the next. Measured on the
171-decision evaluation index (1 3xx vectors): the same question vector, queried in four fresh processes, got a
different top 40 in 7 of 11 questions tried (a true neighbour at rank 5 missing in one process, present in the
next), and over the 118 test questions a third of the runs changed some question's outcome — "Did it have to change
anything for other families as well?" was answered in one run and declined in the next. Raising ef_search to 200
or asking for 160 neighbours and keeping 40 still left 6 of 118 varying. An answer that depends on which process
asks is not one staff can cite, so the dense search is exact: a matrix product over the normalised vectors,
ties broken by chunk id — the same result in every process, and on every CPU up to float rounding.

Cost: 4 bytes x 384 per chunk (154 MB at 100 000 chunks), loaded once (and again after an ingest changes the
catalog); a query is one matrix-vector product. Chroma stays the store of record (and the index for a server
too large to hold: OMBUDS_EXACT_SEARCH=false).

Start-up. Reading every vector and its metadata through Chroma's `get` took 10.7 s at 100 003 chunks (bench
results 20261130-115651; 3.1 s of it the vectors, 3.7 s the metadata, measured apart), so the copy is also kept
as a snapshot file beside the catalog (`exact-vectors.npz`: the normalised matrix, the ids, the filter columns;
no pickle). It is a cache, never the record: it is used only for the Chroma collection it was taken from (its
id and metadata), and only for the chunks the catalog lists now. Chunk ids are content hashes (the decision's
content, the position, the text), so an id present in both names the same vector and metadata; chunks the
catalog gained since are fetched from Chroma by id, chunks it lost are dropped, and the snapshot is rewritten.
Ingest writes it at the end of each run; a process that finds none (another machine over a Chroma server)
writes its own. A missing, foreign or damaged snapshot costs one full read, never a wrong answer.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

# Metadata the retrieval filters use (rag/retrieve.chroma_where): equality, $in, and date ranges.
FILTER_KEYS = ("doc_id", "authority", "outcome", "category", "subcategory", "date_int")
SNAPSHOT_NAME = "exact-vectors.npz"
SNAPSHOT_FORMAT = 1
PAGE = 5000  # ids or rows per Chroma get


class ExactVectors:
    """Every vector of a collection (rows in chunk id order) with the metadata filters need."""

    def __init__(self, ids: Sequence[str], vectors: np.ndarray, metadatas: Sequence[Mapping[str, Any] | None]):
        metas = [m or {} for m in metadatas]
        matrix = np.asarray(vectors, dtype=np.float32) if len(ids) else np.zeros((0, 0), dtype=np.float32)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        columns = {key: _column([m.get(key) for m in metas]) for key in FILTER_KEYS}
        self._set(list(ids), matrix / np.where(norms == 0, 1, norms), columns)

    @classmethod
    def from_parts(cls, ids: Sequence[str], matrix: np.ndarray, columns: Mapping[str, np.ndarray]) -> ExactVectors:
        """From normalised rows and their filter columns, in any order."""
        exact = cls.__new__(cls)
        exact._set(list(ids), matrix, columns)
        return exact

    def _set(self, ids: list[str], matrix: np.ndarray, columns: Mapping[str, np.ndarray]) -> None:
        if all(a < b for a, b in zip(ids, ids[1:])):  # already in chunk id order (a snapshot): no copy
            self.ids, self.matrix, self.columns = ids, matrix, {key: columns[key] for key in FILTER_KEYS}
        else:
            order = np.array(sorted(range(len(ids)), key=ids.__getitem__), dtype=np.int64)
            self.ids = [ids[i] for i in order]
            self.matrix = np.ascontiguousarray(matrix[order])
            self.columns = {key: columns[key][order] for key in FILTER_KEYS}
        dates = self.columns["date_int"]
        self.dated = np.array([d is not None for d in dates], dtype=bool)
        self.dates = np.where(self.dated, dates, 0).astype(np.int64)

    def __len__(self) -> int:
        return len(self.ids)

    def query(self, vector: np.ndarray, n: int, where: Mapping[str, Any] | None = None) -> list[tuple[str, float]]:
        """The n nearest chunks: [(chunk_id, cosine similarity)], best first, ties by chunk id."""
        if not self.ids or n <= 0:
            return []
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        query = query / (np.linalg.norm(query) or 1.0)
        if where:
            rows = np.flatnonzero(self._mask(where))
            sims = self.matrix[rows] @ query
        else:  # no copy of the matrix: one matrix-vector product over it
            rows = np.arange(len(self.ids))
            sims = self.matrix @ query
        if not len(rows):
            return []
        if n < len(rows):
            keep = np.argpartition(-sims, n - 1)[:n]
            rows, sims = rows[keep], sims[keep]
        best = np.lexsort((rows, -sims))  # by similarity, then by row (= chunk id order)
        return [(self.ids[rows[i]], float(sims[i])) for i in best]

    def _mask(self, where: Mapping[str, Any]) -> np.ndarray:
        if "$and" in where:
            mask = np.ones(len(self.ids), dtype=bool)
            for clause in where["$and"]:
                mask &= self._mask(clause)
            return mask
        ((key, condition),) = where.items()
        column = self.columns.get(key)
        if column is None:
            raise ValueError(f"exact search cannot filter on {key!r} (known: {', '.join(FILTER_KEYS)})")
        if not isinstance(condition, Mapping):
            return column == condition
        ((op, value),) = condition.items()
        if op == "$in":
            return np.isin(column, list(value))
        if key == "date_int" and op == "$gte":
            return self.dated & (self.dates >= int(value))
        if key == "date_int" and op == "$lte":
            return self.dated & (self.dates <= int(value))
        raise ValueError(f"exact search does not support {op!r}")


    def subset(self, keep: np.ndarray) -> ExactVectors:
        """The rows where keep is true."""
        if keep.all():
            return self
        return ExactVectors.from_parts([i for i, k in zip(self.ids, keep) if k], self.matrix[keep],
                                       {key: column[keep] for key, column in self.columns.items()})


def _column(values: Sequence[Any]) -> np.ndarray:
    column = np.empty(len(values), dtype=object)
    column[:] = values
    return column


def _from_chroma(got: Mapping[str, Any]) -> ExactVectors:
    ids = got["ids"]
    vectors = np.asarray(got["embeddings"], dtype=np.float32) if ids else np.zeros((0, 0), np.float32)
    return ExactVectors(ids, vectors, got["metadatas"] or [None] * len(ids))


def _read_all(collection: Any) -> ExactVectors:
    """Every id, vector and metadata of a Chroma collection, paged."""
    parts: list[ExactVectors] = []
    offset = 0
    while True:
        got = collection.get(include=["embeddings", "metadatas"], limit=PAGE, offset=offset)
        if not got["ids"]:
            break
        parts.append(_from_chroma(got))
        offset += len(got["ids"])
    return _merge_all(parts)


def _read_ids(collection: Any, ids: Sequence[str]) -> ExactVectors:
    """The vectors and metadata of these chunks (ids Chroma lacks are left out)."""
    parts = [_from_chroma(collection.get(ids=list(ids[start:start + PAGE]), include=["embeddings", "metadatas"]))
             for start in range(0, len(ids), PAGE)]
    return _merge_all(parts)


def _merge_all(parts: Sequence[ExactVectors]) -> ExactVectors:
    """The rows of every part in one (ids must not repeat); a single part as it is, without a copy."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return ExactVectors([], np.zeros((0, 0), np.float32), [])
    if len(parts) == 1:
        return parts[0]
    ids = [i for p in parts for i in p.ids]
    return ExactVectors.from_parts(ids, np.concatenate([p.matrix for p in parts]),
                                   {k: np.concatenate([p.columns[k] for p in parts]) for k in FILTER_KEYS})


def snapshot_key(collection: Any) -> dict[str, Any]:
    """What a snapshot must have been taken from: this collection (a rebuild makes a new one), as configured."""
    meta = {k: v for k, v in (collection.metadata or {}).items() if not k.startswith("hnsw:")}
    return {"format": SNAPSHOT_FORMAT, "collection": str(collection.id), "metadata": meta}


def read_snapshot(path: Path, key: Mapping[str, Any]) -> ExactVectors | None:
    """The snapshot at path, if it was taken from the collection key names; else None (and why, in the log)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            header = json.loads(data["header"].tobytes().decode("utf-8"))
            if header.get("key") != dict(key):
                log.info("exact search: %s was taken from another collection; reading Chroma instead", path)
                return None
            ids, matrix = data["ids"].tolist(), data["matrix"]
        columns = {k: _column(header["columns"][k]) for k in FILTER_KEYS}
        if len(ids) != len(matrix) or any(len(c) != len(ids) for c in columns.values()):
            raise ValueError("its parts differ in length")
    except Exception as exc:  # noqa: BLE001 - a cache: whatever the damage (a cut zip, bad JSON), read Chroma
        log.warning("exact search: ignoring the damaged snapshot %s (%s); reading Chroma instead", path, exc)
        return None
    return ExactVectors.from_parts(ids, matrix, columns)


def write_snapshot(path: Path, exact: ExactVectors, key: Mapping[str, Any]) -> bool:
    """Write the snapshot atomically (a temporary file renamed over it); False, logged, when it cannot."""
    header = {"key": dict(key), "columns": {k: exact.columns[k].tolist() for k in FILTER_KEYS}}
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            np.savez(fh, matrix=exact.matrix, ids=np.array(exact.ids, dtype=str),
                     header=np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8))
        os.replace(tmp, path)
        return True
    except OSError as exc:
        log.warning("exact search: could not write the snapshot %s (%s); the next start reads Chroma", path, exc)
        tmp.unlink(missing_ok=True)
        return False


def load_exact(collection: Any, members: Callable[[], Collection[str]] | None = None,
               snapshot: Path | None = None, stale: Collection[str] = ()) -> ExactVectors:
    """The vectors of the chunks the catalog lists (members), from the snapshot where it has them and from Chroma
    for the rest; the snapshot is rewritten when it was missing or out of date. Without members or a snapshot
    path: every vector of the collection, read from Chroma. stale: ids whose snapshot rows must be read again
    (this process wrote them)."""
    started = time.perf_counter()
    if members is None or snapshot is None:
        exact, source = _read_all(collection), "Chroma"
    else:
        exact, source = _refresh(collection, set(members()), snapshot, set(stale))
    log.info("exact search: %d vectors loaded in %.2f s (%s)", len(exact), time.perf_counter() - started, source)
    return exact


def _refresh(collection: Any, wanted: set[str], snapshot: Path, stale: set[str]) -> tuple[ExactVectors, str]:
    key = snapshot_key(collection)
    old = read_snapshot(snapshot, key)
    if old is None:
        kept = ExactVectors([], np.zeros((0, 0), np.float32), [])
    else:
        kept = old.subset(np.array([i in wanted and i not in stale for i in old.ids], dtype=bool))
    missing = sorted(wanted.difference(kept.ids))
    exact = _merge_all([kept, _read_ids(collection, missing)])
    if len(exact) < len(wanted):
        log.warning("exact search: %d chunks of the catalog have no vector in Chroma", len(wanted) - len(exact))
    if old is None or missing or len(kept) != len(old):
        write_snapshot(snapshot, exact, key)
    return exact, f"snapshot, {len(kept)} kept, {len(missing)} read from Chroma"
