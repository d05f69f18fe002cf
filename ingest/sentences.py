"""Sentence vectors computed once, at ingest, from the chunks' own forward pass.

The evidence check (rag/evidence.py) and the extractive answer compare the question with single sentences of
the retrieved decisions. Embedding those sentences at question time was 85-90% of an answer's time. Here each
evidence sentence of a decision (core.text.evidence_sentences: the summary's and every paragraph's) gets a
vector while its chunk is embedded: the mean of the chunk's token states over the sentence's characters,
"span pooling". A sentence the chunk's encoding does not reach (the model reads 256 word pieces; a chunk with
its header can be longer) is pooled from a continuation pass over the rest of the chunk, with the same header;
a sentence no chunk holds whole (a long paragraph split inside it) is embedded on its own. The counts of each
are in SentenceStats, and the ingest report carries them.

The vectors are stored as float16 in the catalog (ingest/catalog.py, table sentence_vectors), one row per
decision: rounding is the same on every CPU, and the cosine error (~1e-3) is below what the policy can see.
How span-pooled sentences compare with sentences embedded alone on the gold set is in eval/NOTES.md.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

import numpy as np

from core.text import evidence_sentences
from core.types import Chunk, Decision
from ingest.embed import Embedder

log = logging.getLogger(__name__)

# The catalog records which kind of sentence vectors it holds; a change of method changes the name.
SENTENCE_VECTORS_KIND = "span-mean-1"
MAX_CONTINUATIONS = 4


@dataclass(frozen=True)
class SentenceVectors:
    """One decision's evidence sentences, as (paragraph number, sentence) in page order, with a unit vector
    each (rows of `vectors`, float16; 0 is the summary)."""

    doc_id: str
    items: tuple[tuple[int, str], ...]
    vectors: np.ndarray

    def lookup(self) -> dict[tuple[int, str], int]:
        """Row of each (paragraph, sentence); a repeated sentence keeps its first row."""
        rows: dict[tuple[int, str], int] = {}
        for row, item in enumerate(self.items):
            rows.setdefault(item, row)
        return rows


@dataclass
class SentenceStats:
    """How the sentence vectors of one ingest were made (encoder work beyond the chunks' own pass)."""

    sentences: int = 0
    pooled: int = 0
    continued: int = 0
    alone: int = 0
    continuation_texts: int = 0

    def add(self, other: SentenceStats) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclass
class _Target:
    doc_id: str
    paragraph: int
    text: str
    vector: np.ndarray | None = None
    chunk: int | None = None  # index of the chunk whose embedded text holds it whole


def decision_sentences(decision: Decision) -> list[tuple[int, str]]:
    """(paragraph number, sentence) of every evidence sentence of a decision, summary (0) first."""
    out = [(0, s) for s in evidence_sentences(decision.summary or "")]
    for paragraph in decision.paragraphs:
        out.extend((paragraph.number, s) for s in evidence_sentences(paragraph.text))
    return out


@dataclass
class _Pass:
    """Texts to encode and, per text, the targets it should pool and their character ranges."""

    texts: list[str] = field(default_factory=list)
    targets: list[list[_Target]] = field(default_factory=list)
    spans: list[list[tuple[int, int]]] = field(default_factory=list)


def _locate(chunks: Sequence[Chunk], texts: Sequence[str], by_paragraph: dict[tuple[str, int], list[_Target]]
            ) -> _Pass:
    """Find each sentence in the embedded text of the chunk holding its paragraph, in page order."""
    first = _Pass()
    for index, (chunk, text) in enumerate(zip(chunks, texts)):
        cursor = len(text) - len(chunk.text)
        targets: list[_Target] = []
        spans: list[tuple[int, int]] = []
        for number in chunk.paragraphs:
            for target in by_paragraph.get((chunk.doc_id, number), []):
                if target.chunk is not None:
                    continue
                at = text.find(target.text, cursor)
                if at < 0:
                    continue
                target.chunk = index
                cursor = at + len(target.text)
                targets.append(target)
                spans.append((at, at + len(target.text)))
        first.texts.append(text)
        first.targets.append(targets)
        first.spans.append(spans)
    return first


def _continuations(done: _Pass, chunks: Sequence[Chunk], with_header: bool) -> _Pass:
    """For each text whose encoding stopped before some of its sentences: the header and the rest of the text,
    from the first sentence not reached."""
    nxt = _Pass()
    for text, targets, spans in zip(done.texts, done.targets, done.spans):
        missing = [(t, s) for t, s in zip(targets, spans) if t.vector is None]
        if not missing or missing[0][1][0] == spans[0][0]:
            continue  # nothing left, or the first sentence itself is not reached: no progress possible
        cut = missing[0][1][0]
        header = chunks[missing[0][0].chunk].header if with_header else ""
        prefix = f"{header}\n" if header else ""
        nxt.texts.append(prefix + text[cut:])
        nxt.targets.append([t for t, _ in missing])
        nxt.spans.append([(s - cut + len(prefix), e - cut + len(prefix)) for _, (s, e) in missing])
    return nxt


def embed_chunks_and_sentences(embedder: Embedder, items: Sequence[tuple[Decision, Sequence[Chunk]]],
                               with_header: bool) -> tuple[np.ndarray, dict[str, SentenceVectors], SentenceStats]:
    """The chunks' vectors (exactly embedder.embed of their embedded texts) and every decision's sentence
    vectors, pooled from the same forward pass where the encoding reaches them."""
    chunks = [c for _, cs in items for c in cs]
    texts = [c.embedding_text(with_header) for c in chunks]
    stats = SentenceStats()
    by_decision: dict[str, list[_Target]] = {}
    by_paragraph: dict[tuple[str, int], list[_Target]] = {}
    for decision, _ in items:
        targets = [_Target(decision.doc_id, n, s) for n, s in decision_sentences(decision)]
        by_decision[decision.doc_id] = targets
        for t in targets:
            by_paragraph.setdefault((decision.doc_id, t.paragraph), []).append(t)
    stats.sentences = sum(len(t) for t in by_decision.values())

    current = _locate(chunks, texts, by_paragraph)
    vectors = None
    for round_ in range(MAX_CONTINUATIONS + 1):
        encoded, pooled = embedder.embed_with_spans(current.texts, current.spans)
        if round_:
            stats.continuation_texts += len(current.texts)
        else:
            vectors = encoded  # the chunks' own vectors come from the first pass
        for targets, found in zip(current.targets, pooled):
            for target, vector in zip(targets, found):
                if vector is not None and target.vector is None:
                    target.vector = vector
                    stats.continued += bool(round_)
                    stats.pooled += not round_
        current = _continuations(current, chunks, with_header)
        if not current.texts:
            break

    alone = [t for ts in by_decision.values() for t in ts if t.vector is None]
    if alone:
        for target, vector in zip(alone, embedder.embed([t.text for t in alone])):
            target.vector = vector
        stats.alone = len(alone)
    out: dict[str, SentenceVectors] = {}
    dim = vectors.shape[1] if len(vectors) else embedder.dim
    for doc_id, targets in by_decision.items():
        matrix = (np.stack([t.vector for t in targets]) if targets else np.zeros((0, dim))).astype(np.float16)
        out[doc_id] = SentenceVectors(doc_id, tuple((t.paragraph, t.text) for t in targets), matrix)
    return vectors, out, stats
