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
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

# Metadata the retrieval filters use (rag/retrieve.chroma_where): equality, $in, and date ranges.
FILTER_KEYS = ("doc_id", "authority", "outcome", "category", "subcategory", "date_int")


class ExactVectors:
    """Every vector of a collection (rows in chunk id order) with the metadata filters need."""

    def __init__(self, ids: Sequence[str], vectors: np.ndarray, metadatas: Sequence[Mapping[str, Any] | None]):
        order = sorted(range(len(ids)), key=lambda i: ids[i])
        self.ids = [ids[i] for i in order]
        matrix = np.asarray(vectors, dtype=np.float32)[order] if ids else np.zeros((0, 0), dtype=np.float32)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        self.matrix = matrix / np.where(norms == 0, 1, norms)
        metas = [metadatas[i] or {} for i in order]
        self.columns = {key: np.array([m.get(key) for m in metas], dtype=object) for key in FILTER_KEYS}
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


def load_exact(collection: Any, page: int = 5000) -> ExactVectors:
    """Every id, vector and metadata of a Chroma collection, paged."""
    started = time.perf_counter()
    ids: list[str] = []
    vectors: list[np.ndarray] = []
    metas: list[Mapping[str, Any] | None] = []
    offset = 0
    while True:
        got = collection.get(include=["embeddings", "metadatas"], limit=page, offset=offset)
        if not got["ids"]:
            break
        ids += got["ids"]
        vectors.append(np.asarray(got["embeddings"], dtype=np.float32))
        metas += got["metadatas"] or [None] * len(got["ids"])
        offset += len(got["ids"])
    exact = ExactVectors(ids, np.concatenate(vectors) if vectors else np.zeros((0, 0), np.float32), metas)
    log.info("exact search: %d vectors loaded in %.2f s", len(exact), time.perf_counter() - started)
    return exact
