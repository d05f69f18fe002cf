"""Sentence-level evidence: how closely the best sentence of the retrieved passages matches the question.

Chunk similarity is diluted by everything else in the chunk; a question the decisions do not address
rarely has any single sentence close to it. The same similarities help the extractive answer choose.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ingest.embed import Embedder
from rag.answer import addressed_to_a_model, hit_paragraphs, sentences_of
from rag.types import Decision, Hit


@dataclass
class SentenceEvidence:
    """Cosine similarity of each examined sentence to the question, per decision, and the best of them."""

    similarity: dict[str, float] = field(default_factory=dict)
    best: float = 0.0
    by_doc: dict[str, dict[str, float]] = field(default_factory=dict)

    def __contains__(self, sentence: str) -> bool:
        return sentence in self.similarity


def sentence_evidence(embedder: Embedder, question: str, hits: Sequence[Hit], decisions: Mapping[str, Decision],
                      max_decisions: int = 5, max_sentences: int = 64) -> SentenceEvidence:
    """Embed the sentences of the first decisions' summaries and hit paragraphs and compare them with the question.

    The summary is always examined: it states the finding and the remedy, which is often what was asked.
    """
    sentences: dict[str, None] = {}
    owners: dict[str, list[str]] = {}
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
        for _, text in paragraphs:
            if addressed_to_a_model(text):
                continue
            for s in sentences_of(text):
                if len(s.split()) >= 5:
                    sentences.setdefault(s, None)
                    owners.setdefault(s, [])
                    if decision.doc_id not in owners[s]:
                        owners[s].append(decision.doc_id)
    texts = list(sentences)[:max_sentences]
    if not texts:
        return SentenceEvidence()
    vectors = embedder.embed([question] + texts)
    sims = vectors[1:] @ vectors[0]
    similarity = {t: float(s) for t, s in zip(texts, sims)}
    by_doc: dict[str, dict[str, float]] = {}
    for t, s in similarity.items():
        for doc in owners[t]:
            by_doc.setdefault(doc, {})[t] = s
    return SentenceEvidence(similarity, max(similarity.values()), by_doc)


_NAMED_COUNCIL = re.compile(
    r"\b((?:[A-Z][a-z'’]+(?:[ -](?:upon|on|in|and|the|of|[A-Z][a-z'’]+))*)\s+(?:City|County|Borough|District|"
    r"Metropolitan Borough|Metropolitan District|Town|Parish|Unitary)?\s*Council)\b"
    r"|\b(London Borough of [A-Z][a-z'’]+(?: [A-Z][a-z'’]+)*|Royal Borough of [A-Z][a-z'’]+(?: [A-Z][a-z'’]+)*)")


def named_councils(text: str) -> list[str]:
    """Council names written in full in a question ("Leeds City Council", "London Borough of Ealing")."""
    found = []
    for m in _NAMED_COUNCIL.finditer(text):
        name = (m.group(1) or m.group(2) or "").strip()
        if name and name.split()[0] not in {"The", "A", "Which", "What", "Did", "Does", "Has", "Is", "Any", "Each"}:
            found.append(name)
    return found
