"""Hybrid retrieval: dense (Chroma) + lexical (FTS5 BM25) fused by reciprocal rank fusion, grouped per decision.

Case numbers in the question are looked up, not searched: that decision comes first, always.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from core.text import query_terms
from core.types import Chunk, Filters, Hit, Query
from ingest.catalog import Catalog
from ingest.embed import Embedder
from ingest.store import VectorStore

log = logging.getLogger(__name__)

Scorer = Callable[[str, Sequence[str]], Sequence[float]]


@dataclass(frozen=True)
class RetrievalConfig:
    """Knobs of the retriever (a subset of Settings, so experiments can vary them)."""

    k: int = 8
    candidates: int = 40
    max_chunks_per_decision: int = 3
    rrf_k: int = 60
    mode: str = "hybrid"  # hybrid | dense | lexical
    contextual_headers: bool = True
    rerank_top: int = 30

    @classmethod
    def from_settings(cls, settings: Any) -> RetrievalConfig:
        """Take the retrieval fields from Settings."""
        return cls(k=settings.k, candidates=settings.candidates, max_chunks_per_decision=settings.max_chunks_per_decision,
                   rrf_k=settings.rrf_k, mode=settings.retrieval_mode, contextual_headers=settings.contextual_headers,
                   rerank_top=settings.rerank_top)


@dataclass
class Retrieval:
    """What retrieval found: chunks for the answer, decisions in rank order, and evidence strength."""

    hits: list[Hit]
    ranked_docs: list[str]
    filters: Filters
    filter_matches: int | None = None
    looked_up: list[str] = field(default_factory=list)
    missing_cases: list[str] = field(default_factory=list)
    max_similarity: float | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def filters_match_nothing(self) -> bool:
        """True when filters were set and no indexed decision satisfies them."""
        return self.filter_matches == 0


def chroma_where(filters: Filters, doc_ids: Sequence[str] | None = None) -> dict[str, Any] | None:
    """Chroma metadata filter for Filters (values already in catalog spelling)."""
    clauses: list[dict[str, Any]] = []
    if filters.authority:
        clauses.append({"authority": filters.authority})
    if filters.outcome:
        clauses.append({"outcome": filters.outcome})
    if filters.category:
        if ">" in filters.category:
            top, sub = (p.strip() for p in filters.category.split(">", 1))
            clauses.extend([{"category": top}, {"subcategory": sub}])
        else:
            clauses.append({"category": filters.category})
    if filters.since:
        clauses.append({"date_int": {"$gte": int(filters.since.strftime("%Y%m%d"))}})
    if filters.until:
        clauses.append({"date_int": {"$lte": int(filters.until.strftime("%Y%m%d"))}})
    if doc_ids:
        clauses.append({"doc_id": {"$in": list(doc_ids)}})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def rrf(rankings: dict[str, Sequence[str]], k: int) -> dict[str, tuple[float, tuple[str, ...]]]:
    """Reciprocal rank fusion: id -> (score, names of the rankings that contained it)."""
    fused: dict[str, float] = {}
    found_by: dict[str, list[str]] = {}
    for name, ranking in rankings.items():
        for rank, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + 1.0 / (k + rank)
            found_by.setdefault(item, []).append(name)
    return {i: (s, tuple(found_by[i])) for i, s in fused.items()}


class HybridRetriever:
    """Dense + lexical retrieval over one index, fused and grouped per decision."""

    def __init__(self, catalog: Catalog, store: VectorStore, embedder: Embedder, config: RetrievalConfig,
                 reranker: Scorer | None = None):
        self.catalog = catalog
        self.store = store
        self.embedder = embedder
        self.config = config
        self.reranker = reranker

    def _dense(self, text: str, n: int, where: dict[str, Any] | None) -> list[tuple[str, float]]:
        vector = self.embedder.embed_query(text)
        return self.store.query(vector, n, where)

    def _lexical(self, terms: Sequence[str], n: int, filters: Filters,
                 doc_ids: Sequence[str] | None = None) -> list[tuple[str, float]]:
        weight = 0.5 if self.config.contextual_headers else 0.0
        found = self.catalog.lexical_search(terms, n if doc_ids is None else n * 4, filters, header_weight=weight)
        if doc_ids is not None:
            allowed = set(doc_ids)
            chunks = self.catalog.get_chunks([cid for cid, _ in found])
            found = [(cid, s) for cid, s in found if cid in chunks and chunks[cid].doc_id in allowed][:n]
        return found

    def _search(self, query: Query, filters: Filters, doc_ids: Sequence[str] | None, n: int,
                timings: dict[str, float]) -> tuple[dict[str, tuple[float, tuple[str, ...]]], dict[str, float],
                                                    dict[str, float]]:
        mode = self.config.mode
        rankings: dict[str, list[str]] = {}
        dense_sims: dict[str, float] = {}
        lex_scores: dict[str, float] = {}
        if mode in ("hybrid", "dense"):
            t = time.perf_counter()
            dense = self._dense(query.standalone, n, chroma_where(filters, doc_ids))
            timings["dense_ms"] = timings.get("dense_ms", 0.0) + (time.perf_counter() - t) * 1000
            rankings["dense"] = [cid for cid, _ in dense]
            dense_sims = dict(dense)
        if mode in ("hybrid", "lexical"):
            t = time.perf_counter()
            lexical = self._lexical(query_terms(query.standalone), n, filters, doc_ids)
            timings["lexical_ms"] = timings.get("lexical_ms", 0.0) + (time.perf_counter() - t) * 1000
            rankings["lexical"] = [cid for cid, _ in lexical]
            lex_scores = dict(lexical)
        return rrf(rankings, self.config.rrf_k), dense_sims, lex_scores

    def _rerank(self, question: str, ordered: list[str], chunks: dict[str, Chunk]) -> list[str]:
        if self.reranker is None or not ordered:
            return ordered
        head = [cid for cid in ordered[: self.config.rerank_top] if cid in chunks]
        scores = list(self.reranker(question, [chunks[cid].text for cid in head]))
        if len(scores) != len(head):
            raise ValueError(f"reranker returned {len(scores)} scores for {len(head)} passages")
        reranked = [cid for _, cid in sorted(zip(scores, head), key=lambda x: -x[0])]
        return reranked + [cid for cid in ordered if cid not in set(head)]

    def retrieve(self, query: Query, k: int | None = None) -> Retrieval:
        """Hits for the answer (grouped per decision, capped) plus the full decision ranking."""
        k = k or self.config.k
        timings: dict[str, float] = {}
        started = time.perf_counter()
        filters = query.filters
        result = Retrieval(hits=[], ranked_docs=[], filters=filters)
        if filters.active:
            result.filter_matches = self.catalog.count_matching(filters)

        # 1. Case numbers: lookup first, always.
        looked_up = self.catalog.docs_by_case_number(query.case_numbers) if query.case_numbers else []
        result.looked_up = looked_up
        found = set(looked_up)
        result.missing_cases = [c for c in query.case_numbers if c.replace(" ", "-") not in found and c not in found]
        ordered_lookup: list[str] = []
        fused_lookup: dict[str, tuple[float, tuple[str, ...]]] = {}
        dense_sims: dict[str, float] = {}
        lex_scores: dict[str, float] = {}
        if looked_up:
            fused_lookup, d1, l1 = self._search(query, Filters(), looked_up, self.config.candidates, timings)
            dense_sims.update(d1)
            lex_scores.update(l1)
            ordered_lookup = sorted(fused_lookup, key=lambda c: -fused_lookup[c][0])

        # 2. Open search (unless the filters exclude everything).
        fused: dict[str, tuple[float, tuple[str, ...]]] = {}
        if not result.filters_match_nothing:
            fused, d2, l2 = self._search(query, filters, None, self.config.candidates, timings)
            dense_sims.update({c: s for c, s in d2.items() if c not in dense_sims})
            lex_scores.update({c: s for c, s in l2.items() if c not in lex_scores})
        ordered = sorted(fused, key=lambda c: -fused[c][0])

        chunks = self.catalog.get_chunks(list(dict.fromkeys(ordered_lookup + ordered)))
        t = time.perf_counter()
        ordered = self._rerank(query.standalone, ordered, chunks)
        if self.reranker is not None:
            timings["rerank_ms"] = (time.perf_counter() - t) * 1000

        # 3. Group per decision: lookup decisions first, then decisions by their best chunk.
        per_doc: dict[str, list[str]] = {}
        doc_order: list[str] = []
        for cid in ordered_lookup + ordered:
            chunk = chunks.get(cid)
            if chunk is None:
                continue
            if chunk.doc_id not in per_doc:
                per_doc[chunk.doc_id] = []
                doc_order.append(chunk.doc_id)
            if cid not in per_doc[chunk.doc_id]:
                per_doc[chunk.doc_id].append(cid)
        for doc in looked_up:
            if doc not in per_doc:  # the decision exists but nothing matched the words: show its start
                per_doc[doc] = [c.chunk_id for c in self.catalog.chunks_of(doc)[:2]]
                for c in self.catalog.chunks_of(doc)[:2]:
                    chunks[c.chunk_id] = c
                doc_order.insert(looked_up.index(doc), doc)
        result.ranked_docs = doc_order

        hits: list[Hit] = []
        for doc in doc_order:
            cap = max(self.config.max_chunks_per_decision, 4) if doc in looked_up else \
                self.config.max_chunks_per_decision
            for cid in per_doc[doc][:cap]:
                if len(hits) >= k and doc not in looked_up:
                    break
                score, found_by = fused_lookup.get(cid) or fused.get(cid) or (0.0, ())
                if doc in looked_up:
                    found_by = ("lookup",) + tuple(f for f in found_by if f != "lookup")
                hits.append(Hit(chunk=chunks[cid], score=score, rank=len(hits) + 1, retrievers=found_by,
                                dense_similarity=dense_sims.get(cid), lexical_score=lex_scores.get(cid)))
            if len(hits) >= k:
                break
        result.hits = hits

        # 4. The closest passage found by meaning (answer-or-decline signals are computed in rag/policy.py).
        open_hits = [h for h in hits if "lookup" not in h.retrievers]
        sims = [h.dense_similarity for h in open_hits if h.dense_similarity is not None]
        result.max_similarity = max(sims) if sims else None
        timings["retrieval_ms"] = (time.perf_counter() - started) * 1000
        result.timings_ms = timings
        return result


class DecisionRetriever(BaseRetriever):
    """LangChain face of HybridRetriever: Documents carry the chunk text and its case number/paragraphs."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    hybrid: Any
    analyser: Any
    filters: Filters | None = None
    k: int | None = None

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        q = self.analyser.analyse(query, self.filters)
        found = self.hybrid.retrieve(q, self.k)
        return [hit_to_document(h) for h in found.hits]


def hit_to_document(hit: Hit) -> Document:
    """A Hit as a LangChain Document (metadata: case number, doc id, paragraphs, score, rank)."""
    c = hit.chunk
    meta = {k: v for k, v in c.metadata.items() if v is not None}
    meta.update({"chunk_id": c.chunk_id, "doc_id": c.doc_id, "case_number": c.case_number, "section": c.section,
                 "paragraphs": list(c.paragraphs), "score": hit.score, "rank": hit.rank,
                 "retrievers": list(hit.retrievers)})
    return Document(page_content=c.text, metadata=meta, id=c.chunk_id)
