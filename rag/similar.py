"""Decisions similar in meaning to a given one: the decision's own summary (or opening paragraphs) embedded once
and searched in the vector store, the nearest passages grouped per decision.

Why the summary: it states what the complaint was about and what the Ombudsman decided in a few sentences,
which is what "a decision like this one" means to staff; one embedding (~10 ms) and one vector search.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from core.types import Decision
from ingest.catalog import Catalog
from ingest.embed import Embedder
from ingest.store import VectorStore

log = logging.getLogger(__name__)

NEIGHBOUR_PASSAGES = 60  # passages fetched per decision shown; a decision has several near passages


@dataclass(frozen=True)
class SimilarDecision:
    """A neighbour: which decision, how close (cosine similarity of its nearest passage) and its facts."""

    doc_id: str
    label: str
    similarity: float
    authority: str | None
    outcome: str | None
    decision_date: str | None
    summary: str | None


def probe_text(decision: Decision, limit: int = 1500) -> str:
    """What stands for the decision when looking for neighbours: its summary, else its first paragraphs."""
    text = decision.summary or " ".join(p.text for p in decision.paragraphs[:4])
    return " ".join(text.split())[:limit]


def similar_decisions(catalog: Catalog, store: VectorStore, embedder: Embedder, decision: Decision,
                      n: int = 5) -> list[SimilarDecision]:
    """The n decisions nearest in meaning to this one, nearest first (never the decision itself)."""
    text = probe_text(decision)
    if not text:
        return []
    vector = embedder.embed([text])[0]
    best: dict[str, float] = {}
    chunks_wanted = max(NEIGHBOUR_PASSAGES, n * 12)
    found = store.query(vector, chunks_wanted)
    chunks = catalog.get_chunks([cid for cid, _ in found])
    for cid, sim in found:
        chunk = chunks.get(cid)
        if chunk is None or chunk.doc_id == decision.doc_id:
            continue
        best.setdefault(chunk.doc_id, sim)
    order = sorted(best, key=lambda d: -best[d])[:n]
    decisions = catalog.decisions(order)
    out = []
    for doc_id in order:
        d = decisions.get(doc_id)
        if d is None:
            continue
        out.append(SimilarDecision(doc_id, d.label, best[doc_id], d.authority, d.outcome,
                                   d.decision_date.isoformat() if d.decision_date else None, d.summary))
    return out
