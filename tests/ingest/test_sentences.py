"""Sentence vectors made at ingest from the chunks' own forward pass (ingest/sentences.py), stored in the
catalog, and used by the evidence check so that a question costs one embedding."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from core.types import Paragraph, Section
from ingest.chunk import Chunker
from ingest.index import open_index
from ingest.onnx_embed import pool_spans
from ingest.parse import parse_file
from ingest.sentences import SENTENCE_VECTORS_KIND, decision_sentences, embed_chunks_and_sentences

try:
    from conftest import SAMPLE_DIR, build_index
except ImportError:
    from tests.conftest import SAMPLE_DIR, build_index


def sample_decisions():
    return [parse_file(p) for p in sorted(SAMPLE_DIR.glob("*.txt"))]


def test_pooling_a_range_averages_only_the_tokens_inside_it():
    hidden = np.array([[9.0, 9.0], [1.0, 0.0], [3.0, 0.0], [0.0, 5.0], [9.0, 9.0]], dtype=np.float32)
    offsets = [(0, 0), (0, 4), (5, 9), (10, 14), (0, 0)]  # [CLS] w1 w2 w3 [SEP]
    first_two, last, past_the_end = pool_spans(hidden, offsets, [(0, 9), (10, 14), (10, 20)])
    assert np.allclose(first_two, [1.0, 0.0])  # mean (2, 0), normalised; [CLS] is not counted
    assert np.allclose(last, [0.0, 1.0])
    assert past_the_end is None  # the encoding stops before the range ends: no half-sentence vector


def test_every_evidence_sentence_gets_a_unit_vector_close_to_the_sentence_alone(embedder):
    decisions = sample_decisions()
    chunker = Chunker()
    items = [(d, chunker.chunk(d)) for d in decisions]
    vectors, sentences, stats = embed_chunks_and_sentences(embedder, items, with_header=True)

    chunks = [c for _, cs in items for c in cs]
    assert np.allclose(vectors, embedder.embed([c.embedding_text(True) for c in chunks]), atol=1e-5)
    assert stats.sentences == sum(len(decision_sentences(d)) for d in decisions) > 100
    assert stats.pooled + stats.continued + stats.alone == stats.sentences
    assert stats.continued > 0  # the samples have chunks longer than the model's 256 word pieces
    for d in decisions:
        sv = sentences[d.doc_id]
        assert list(sv.items) == decision_sentences(d)
        assert sv.vectors.dtype == np.float16 and sv.vectors.shape == (len(sv.items), embedder.dim)
        assert np.allclose(np.linalg.norm(sv.vectors.astype(np.float32), axis=1), 1.0, atol=2e-3)
    # Pooled in context, a sentence's vector is nearer its own text embedded alone than its neighbours' (on the
    # samples: cosine 0.62-0.69 to its own, 0.37-0.47 to the next; its own is the nearest for 62-88%). An
    # off-by-one alignment of spans and sentences would reverse that.
    for d in decisions:
        sv = sentences[d.doc_id]
        sims = sv.vectors.astype(np.float32) @ embedder.embed([t for _, t in sv.items]).T
        assert np.diag(sims).mean() > np.diag(sims, 1).mean() + 0.15
        assert (sims.argmax(axis=1) == np.arange(len(sv.items))).mean() > 0.5


def test_a_sentence_no_chunk_holds_whole_is_embedded_alone(embedder):
    decision = sample_decisions()[0]
    # A paragraph longer than a chunk is split by the chunker at ";" and ".", but the evidence splitter reads
    # it as one sentence: no chunk holds it whole.
    long_sentence = "The Council wrote to Mrs X about the charges; " * 60 + "and it then apologised to her."
    section = Section("Extra", (Paragraph(900, long_sentence),))
    decision = dataclasses.replace(decision, sections=decision.sections + (section,))
    _, sentences, stats = embed_chunks_and_sentences(embedder, [(decision, Chunker().chunk(decision))], True)
    assert stats.alone >= 1
    rows = sentences[decision.doc_id].lookup()
    vector = sentences[decision.doc_id].vectors[rows[(900, long_sentence.strip())]].astype(np.float32)
    assert float(vector @ embedder.embed([long_sentence.strip()])[0]) > 0.999


def test_the_index_stores_them_and_a_question_costs_one_embedding(make_settings, embedder):
    from rag.assistant import Assistant

    settings = make_settings()
    report = build_index(settings, [SAMPLE_DIR], embedder)
    assert report.sentences.sentences > 100
    index = open_index(settings, write=False, embedder=embedder)
    try:
        assert index.catalog.get_meta("sentence_vectors") == SENTENCE_VECTORS_KIND
        assert index.catalog.count_sentence_vectors() == 5
    finally:
        index.close()

    assistant = Assistant(settings, open_index(settings, embedder=embedder))
    embedded: list[str] = []
    original = embedder.embed

    def counting(texts):
        embedded.extend(texts)
        return original(texts)

    question = "What did the Council agree to pay for the delay in the education health and care plan?"
    try:
        embedder.embed = counting
        exam = assistant.examine(question)
        status = assistant.status()  # python -m rag status shows what the index holds
    finally:
        del embedder.embed
        assistant.close()
    assert (status["sentence_vectors"], status["decisions_with_sentence_vectors"]) == (SENTENCE_VECTORS_KIND, 5)
    assert exam.evidence.similarity  # sentences were compared ...
    assert len(embedded) == 1  # ... with only the question embedded (retrieval and evidence share its vector)


def test_an_index_from_before_sentence_vectors_still_answers_and_the_next_ingest_adds_them(make_settings, embedder,
                                                                                         caplog):
    """An index ingested before this change has no stored vectors: the evidence check embeds the sentences
    itself (as it used to) and says once that a rebuild makes it faster; ingesting the same files again adds
    them without being asked to rebuild."""
    from rag.assistant import Assistant

    settings = make_settings()
    build_index(settings, [SAMPLE_DIR], embedder)
    index = open_index(settings, write=True, embedder=embedder)
    try:
        index.catalog._conn.execute("DELETE FROM sentence_vectors")
    finally:
        index.close()
    with Assistant(settings, open_index(settings, embedder=embedder)) as assistant, caplog.at_level("WARNING"):
        exam = assistant.examine("When does the ICO handle rectification?")
    assert exam.evidence.best > 0.3
    assert "no stored sentence vectors" in caplog.text

    report = build_index(settings, [SAMPLE_DIR], embedder)
    assert (report.updated, report.unchanged) == (5, 0)
    index = open_index(settings, write=False, embedder=embedder)
    try:
        assert index.catalog.count_sentence_vectors() == 5
    finally:
        index.close()
    assert build_index(settings, [SAMPLE_DIR], embedder).unchanged == 5


def test_deleting_or_replacing_a_decision_replaces_its_sentence_vectors(make_settings, embedder, sample_copy):
    settings = make_settings()
    build_index(settings, [sample_copy], embedder)
    path = sorted(sample_copy.glob("*.txt"))[0]
    doc_id = parse_file(path).doc_id
    path.write_text(path.read_text(encoding="utf-8") + "\n\nThe Council agreed to review its letters by March.\n",
                    encoding="utf-8")
    build_index(settings, [sample_copy], embedder)
    index = open_index(settings, write=True, embedder=embedder)
    try:
        stored = index.catalog.sentence_vectors([doc_id])[doc_id]
        assert stored.items == tuple(decision_sentences(index.catalog.decisions([doc_id])[doc_id]))
        index.catalog.delete_decisions([doc_id])
        assert doc_id not in index.catalog.sentence_vectors([doc_id])
        assert index.catalog.count_sentence_vectors() == 4
    finally:
        index.close()


@pytest.mark.parametrize("backend", ["torch"])
def test_torch_pools_the_same_sentence_vectors_as_onnx(embedder, backend):
    from ingest.embed import Embedder

    decision = sample_decisions()[1]
    items = [(decision, Chunker().chunk(decision))]
    _, onnx, _ = embed_chunks_and_sentences(embedder, items, True)
    _, other, _ = embed_chunks_and_sentences(Embedder(backend=backend), items, True)
    a = onnx[decision.doc_id].vectors.astype(np.float32)
    b = other[decision.doc_id].vectors.astype(np.float32)
    assert np.min(np.sum(a * b, axis=1)) > 0.999
