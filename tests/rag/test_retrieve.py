"""Hybrid retrieval on real Chroma + FTS5 with the real embedding model."""

from __future__ import annotations

import pytest
from conftest import FIXTURES, build_index

from core.types import Filters
from rag.assistant import Assistant
from rag.retrieve import DecisionRetriever

PARAPHRASE = "Someone upstairs blasts songs at 3am and nobody came round"  # shares no word with the decision
RARE_TERM = "Which rules cover the Pellworth framework?"  # a name only lexical search can pin down


@pytest.fixture(scope="module")
def fixture_index(tmp_path_factory, embedder):
    from core.settings import load_settings

    index_dir = tmp_path_factory.mktemp("retrieval-fixture")
    report = build_index(load_settings(index_dir=index_dir), [FIXTURES / "retrieval"], embedder)
    assert report.added == 6
    return index_dir


def _top(assistant: Assistant, question: str) -> list[str]:
    query = assistant.analyser.analyse(question)
    return assistant.retriever.retrieve(query).ranked_docs


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_hybrid_beats_each_retriever_alone(fixture_index, embedder, make_settings, mode):
    from ingest.index import open_index

    settings = make_settings(index_dir=fixture_index, retrieval_mode=mode)
    index = open_index(settings, embedder=embedder)
    with Assistant(settings, index) as a:
        paraphrase_ok = _top(a, PARAPHRASE)[:1] == ["99-900-001"]
        rare_ok = _top(a, RARE_TERM)[:1] == ["99-900-002"]
    expected = {"dense": (True, False), "lexical": (False, True), "hybrid": (True, True)}[mode]
    assert (paraphrase_ok, rare_ok) == expected


@pytest.fixture(scope="module")
def sample_assistant(sample_index_dir, embedder):
    from core.settings import load_settings
    from ingest.index import open_index

    settings = load_settings(index_dir=sample_index_dir)
    with Assistant(settings, open_index(settings, embedder=embedder)) as a:
        yield a


@pytest.mark.parametrize("written", ["23 009 429", "23-009-429", "23009429"])
def test_case_number_in_any_format_is_looked_up_first(sample_assistant, written):
    query = sample_assistant.analyser.analyse(f"What was decided in {written} about sharing information?")
    found = sample_assistant.retriever.retrieve(query)
    assert found.ranked_docs[0] == "23-009-429"
    assert "lookup" in found.hits[0].retrievers
    assert found.hits[0].chunk.case_number == "23 009 429"


def test_lookup_wins_even_against_a_better_topical_match(sample_assistant):
    # The question's words match 18 009 917 best, but the case number asked for comes first.
    query = sample_assistant.analyser.analyse("In 24 005 748, did the council disclose an address to an ex-partner?")
    assert sample_assistant.retriever.retrieve(query).ranked_docs[0] == "24-005-748"


def test_unknown_case_number_is_reported(sample_assistant):
    answer = sample_assistant.ask("What happened in case 11 222 333?")
    assert answer.abstained
    assert "11 222 333" in answer.text and "Not in the index" in answer.text


def test_authority_filter_restricts_sources(sample_assistant):
    answer = sample_assistant.ask("When does the ICO handle rectification?",
                                  filters={"authority": "Hampshire County Council"})
    assert answer.sources and {h.chunk.metadata["authority"] for h in answer.sources} == {"Hampshire County Council"}
    assert answer.filters_applied.authority == "Hampshire County Council"
    assert all(c.authority == "Hampshire County Council" for c in answer.citations)


def test_filter_values_are_matched_case_insensitively(sample_assistant):
    answer = sample_assistant.ask("Was there fault?", filters={"authority": "staffordshire county council",
                                                             "outcome": "upheld"})
    assert answer.filters_applied.authority == "Staffordshire County Council"
    assert {h.chunk.doc_id for h in answer.sources} == {"18-009-917"}


def test_date_filters(sample_assistant):
    answer = sample_assistant.ask("When is the Information Commissioner better placed?",
                                  filters=Filters(since="2023-01-01", until="2024-12-31"))
    assert {h.chunk.doc_id for h in answer.sources} <= {"23-009-429", "24-005-748"}
    assert answer.sources


def test_filters_matching_nothing_say_so_and_never_drop_the_filter(sample_assistant):
    answer = sample_assistant.ask("When does the ICO handle rectification?",
                                  filters={"authority": "Kent County Council"})
    assert answer.abstained
    assert "No indexed decisions match the filters" in answer.text and "Kent County Council" in answer.text
    assert answer.sources == () and answer.citations == ()


def test_council_named_in_question_becomes_a_filter_and_is_stated(sample_assistant):
    answer = sample_assistant.ask("How did Hampshire handle data protection complaints?")
    assert answer.filters_applied.authority == "Hampshire County Council"
    assert "authority" in answer.inferred_filters
    assert "Hampshire County Council" in answer.text.split("\n")[0]
    assert {h.chunk.metadata["authority"] for h in answer.sources} == {"Hampshire County Council"}


def test_langchain_retriever_returns_documents_with_case_numbers(sample_assistant):
    retriever = DecisionRetriever(hybrid=sample_assistant.retriever, analyser=sample_assistant.analyser, k=4)
    docs = retriever.invoke("Should the ICO decide data protection disputes?")
    assert 1 <= len(docs) <= 4
    assert all("doc_id" in d.metadata and "paragraphs" in d.metadata for d in docs)
    assert any(d.metadata["case_number"] for d in docs)


def test_per_decision_cap_keeps_one_decision_from_crowding_out(sample_assistant):
    query = sample_assistant.analyser.analyse("social worker complaint stage 2 statutory children's procedure")
    found = sample_assistant.retriever.retrieve(query)
    per_doc: dict[str, int] = {}
    for h in found.hits:
        per_doc[h.chunk.doc_id] = per_doc.get(h.chunk.doc_id, 0) + 1
    assert max(per_doc.values()) <= sample_assistant.settings.max_chunks_per_decision
    assert len(per_doc) >= 2


def test_reranker_reorders_candidates(sample_index_dir, embedder):
    """The cross-encoder code path, with a fake scorer that prefers passages mentioning 'Ofsted'."""
    from core.settings import load_settings
    from ingest.index import open_index

    calls = []

    def fake_scorer(question, passages):
        calls.append((question, len(passages)))
        return [1.0 if "Ofsted" in p else 0.0 for p in passages]

    settings = load_settings(index_dir=sample_index_dir)
    with Assistant(settings, open_index(settings, embedder=embedder), reranker=fake_scorer) as a:
        found = a.retriever.retrieve(a.analyser.analyse("Who does the Ombudsman share decisions with?"))
    assert calls and calls[0][1] > 1
    assert "Ofsted" in found.hits[0].chunk.text
    assert "rerank_ms" in found.timings_ms
