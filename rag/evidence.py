"""Sentence-level evidence: how closely the best sentence of the retrieved passages matches the question.

Chunk similarity is diluted by everything else in the chunk; a question the decisions do not address
rarely has any single sentence close to it. The same similarities help the extractive answer choose.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from core.text import evidence_sentences
from core.types import Decision, Hit, hit_paragraphs
from ingest.embed import Embedder
from ingest.sentences import SentenceVectors

log = logging.getLogger(__name__)


@dataclass
class SentenceEvidence:
    """Cosine similarity of each examined sentence to the question, per decision, and the best of them."""

    similarity: dict[str, float] = field(default_factory=dict)
    best: float = 0.0
    by_doc: dict[str, dict[str, float]] = field(default_factory=dict)

    def __contains__(self, sentence: str) -> bool:
        return sentence in self.similarity


def sentence_evidence(embedder: Embedder, question: str, hits: Sequence[Hit], decisions: Mapping[str, Decision],
                      stored: Callable[[Sequence[str]], Mapping[str, SentenceVectors]] | None = None,
                      max_decisions: int = 5,
                      max_sentences: int = 64) -> SentenceEvidence:
    """Compare the question with the sentences of the first decisions' summaries and hit paragraphs.

    The summary is always examined: it states the finding and the remedy, which is often what was asked. The
    sentences' vectors come from the index (stored at ingest, ingest/sentences.py), so a question costs one
    embedding; `stored` loads them for the decisions examined. A decision ingested before the index stored them
    has its sentences embedded here instead.
    """
    occurrences: dict[str, list[tuple[str, int]]] = {}
    docs: list[str] = []
    for hit in hits:
        decision = decisions.get(hit.chunk.doc_id)
        if decision is None:
            continue
        if decision.doc_id not in docs:
            if len(docs) >= max_decisions:
                continue
            docs.append(decision.doc_id)
            paragraphs = [(0, decision.summary)] if decision.summary else []
        else:
            paragraphs = []
        paragraphs += [(n, t) for n, t in hit_paragraphs(hit, decision) if n != 0]
        for number, text in paragraphs:
            for s in evidence_sentences(text):
                places = occurrences.setdefault(s, [])
                if (decision.doc_id, number) not in places:
                    places.append((decision.doc_id, number))
    texts = list(occurrences)[:max_sentences]
    if not texts:
        return SentenceEvidence()
    q = embedder.embed_query(question)
    vectors = stored(docs) if stored else {}  # the examined decisions' stored sentence vectors
    rows = {doc: sv.lookup() for doc, sv in vectors.items()}
    stored_sims = {doc: sv.vectors.astype(np.float32) @ q for doc, sv in vectors.items()}  # one product each
    missing = [t for t in texts if any((n, t) not in rows.get(doc, {}) for doc, n in occurrences[t])]
    if missing:
        _warn_unstored(sorted({doc for t in missing for doc, _ in occurrences[t] if doc not in rows}))
    fresh = dict(zip(missing, embedder.embed(missing) @ q)) if missing else {}
    similarity: dict[str, float] = {}
    by_doc: dict[str, dict[str, float]] = {}
    for t in texts:
        for doc, number in occurrences[t]:
            row = rows.get(doc, {}).get((number, t))
            sim = float(stored_sims[doc][row]) if row is not None else float(fresh[t])
            by_doc.setdefault(doc, {})[t] = max(sim, by_doc.get(doc, {}).get(t, -1.0))
            similarity[t] = max(sim, similarity.get(t, -1.0))
    return SentenceEvidence(similarity, max(similarity.values()), by_doc)


_warned: set[str] = set()


def _warn_unstored(doc_ids: Sequence[str]) -> None:
    """Say once per decision that its sentences are embedded per question (an index from before ingest stored
    them): answers are slower and their evidence is measured the old way until its files are ingested again."""
    new = [d for d in doc_ids if d not in _warned]
    if new:
        _warned.update(new)
        log.warning("%d decision(s) have no stored sentence vectors (%s...): ingest the same files again to add them "
                    "(python -m ingest PATH...) for faster, consistent answers", len(new), ", ".join(new[:3]))
