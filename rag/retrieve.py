"""Hybrid retrieval: dense (Chroma) + lexical (FTS5 BM25) fused by reciprocal rank fusion, grouped per decision.

Case numbers in the question are looked up, not searched: that decision comes first, always.
"""

from __future__ import annotations

import dataclasses
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
    listed: bool = False  # looked_up holds the newest decisions the filters select (a listing question)
    outcome_matches: int | None = None  # of those, how many had the outcome a yes/no listing asks about
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
        result = Retrieval(hits=[], ranked_docs=[], filters=query.filters)
        if query.filters.active:
            result.filter_matches = self.catalog.count_matching(query.filters)
        found = self._find(query, result, timings, k)
        chunks = self.catalog.get_chunks(list(dict.fromkeys(found.lookup_order + found.order)))
        t = time.perf_counter()
        found.order = self._rerank(query.standalone, found.order, chunks)
        if self.reranker is not None:
            timings["rerank_ms"] = (time.perf_counter() - t) * 1000
        per_doc = self._group_per_decision(found, result.looked_up, chunks)
        result.ranked_docs = list(per_doc)
        result.hits = self._select_hits(found, result.looked_up, per_doc, chunks, k, result.listed)
        # The closest passage found by meaning (answer-or-decline signals are computed in rag/policy.py).
        sims = [h.dense_similarity for h in result.hits if "lookup" not in h.retrievers and
                h.dense_similarity is not None]
        result.max_similarity = max(sims) if sims else None
        timings["retrieval_ms"] = (time.perf_counter() - started) * 1000
        result.timings_ms = timings
        return result

    def _find(self, query: Query, result: Retrieval, timings: dict[str, float], k: int) -> _Found:
        """1. Case numbers: looked up first, always (searched within those decisions); for a listing question,
        the k newest decisions its filters select instead. 2. The open search, unless the filters exclude
        everything."""
        found = _Found()
        looked_up = self.catalog.docs_by_case_number(query.case_numbers) if query.case_numbers else []
        if query.listing and not looked_up and result.filter_matches:
            # "Were any ... upheld?": the decisions that were, or, when none was, all the filters select
            asked = dataclasses.replace(query.filters, outcome=query.outcome_asked) if query.outcome_asked else None
            if asked is not None:
                result.outcome_matches = self.catalog.count_matching(asked)
            looked_up = self.catalog.doc_ids_matching(asked if result.outcome_matches else query.filters, k)
            result.listed = True
        result.looked_up = looked_up
        known = set(looked_up)
        result.missing_cases = [c for c in query.case_numbers if c.replace(" ", "-") not in known and c not in known]
        if looked_up:
            found.fused_lookup, dense, lexical = self._search(query, Filters(), looked_up, self.config.candidates,
                                                              timings)
            found.dense_sims.update(dense)
            found.lex_scores.update(lexical)
            found.lookup_order = sorted(found.fused_lookup, key=lambda c: -found.fused_lookup[c][0])
        if not result.filters_match_nothing:
            found.fused, dense, lexical = self._search(query, query.filters, None, self.config.candidates, timings)
            found.dense_sims.update({c: s for c, s in dense.items() if c not in found.dense_sims})
            found.lex_scores.update({c: s for c, s in lexical.items() if c not in found.lex_scores})
        found.order = sorted(found.fused, key=lambda c: -found.fused[c][0])
        return found

    def _group_per_decision(self, found: _Found, looked_up: list[str],
                            chunks: dict[str, Chunk]) -> dict[str, list[str]]:
        """3. Chunk ids per decision, decisions in order: looked-up decisions first, then by their best chunk.
        (Fills `chunks` with the opening chunks of a looked-up decision nothing matched.)"""
        per_doc: dict[str, list[str]] = {}
        for cid in found.lookup_order + found.order:
            chunk = chunks.get(cid)
            if chunk is None:
                continue
            ids = per_doc.setdefault(chunk.doc_id, [])
            if cid not in ids:
                ids.append(cid)
        order = list(per_doc)
        for doc in looked_up:
            if doc not in per_doc:  # the decision exists but nothing matched the words: show its start
                opening = self.catalog.chunks_of(doc)[:2]
                per_doc[doc] = [c.chunk_id for c in opening]
                chunks.update((c.chunk_id, c) for c in opening)
                order.insert(looked_up.index(doc), doc)
        return {doc: per_doc[doc] for doc in order}

    def _select_hits(self, found: _Found, looked_up: list[str], per_doc: dict[str, list[str]],
                     chunks: dict[str, Chunk], k: int, listed: bool = False) -> list[Hit]:
        """At most max_chunks_per_decision chunks per decision (4 for one asked about by case number; 1 for each
        decision a listing question lists, so that all of them are shown), k in all (a looked-up decision's chunks
        always)."""
        hits: list[Hit] = []
        for doc, ids in per_doc.items():
            cap = (1 if listed else max(self.config.max_chunks_per_decision, 4)) if doc in looked_up else \
                self.config.max_chunks_per_decision
            for cid in ids[:cap]:
                if len(hits) >= k and doc not in looked_up:
                    break
                score, found_by = found.fused_lookup.get(cid) or found.fused.get(cid) or (0.0, ())
                if doc in looked_up:
                    found_by = ("lookup",) + tuple(f for f in found_by if f != "lookup")
                hits.append(Hit(chunk=chunks[cid], score=score, rank=len(hits) + 1, retrievers=found_by,
                                dense_similarity=found.dense_sims.get(cid), lexical_score=found.lex_scores.get(cid)))
            if len(hits) >= k:
                break
        return hits


@dataclass
class _Found:
    """What the searches found, before grouping: fused scores (and who found each chunk) and raw scores."""

    fused_lookup: dict[str, tuple[float, tuple[str, ...]]] = field(default_factory=dict)
    lookup_order: list[str] = field(default_factory=list)
    fused: dict[str, tuple[float, tuple[str, ...]]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    dense_sims: dict[str, float] = field(default_factory=dict)
    lex_scores: dict[str, float] = field(default_factory=dict)


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
