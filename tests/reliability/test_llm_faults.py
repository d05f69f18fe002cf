"""The LLM endpoint down, slow, or returning garbage: the chat keeps working — a timeout, a retry, then the
extractive answer with a note; no exception; an invented case number never shown, not even while streaming.

The endpoints are real HTTP servers on 127.0.0.1 started by the tests (reliability/llm_server.py), reached
through the real openai backend (langchain-openai) with llm_timeout_s=1 and llm_max_retries=1.
"""

from __future__ import annotations

import time

import pytest
from reliability.llm_server import FakeLLMServer, free_port

from core.casenum import find_case_numbers
from core.settings import load_settings
from core.types import Answer
from ingest.index import open_index
from rag.assistant import Assistant

QUESTION = "When does the ICO handle rectification?"
TIMEOUT_S = 1.0
FAILED_NOTE = "model failed"  # "The openai model failed (...); showing the relevant passages instead."
UNCHECKABLE_NOTE = "no citation that could be checked"
FABRICATED = ("12 345 678", "12345678", "98 765 432")


@pytest.fixture(scope="module")
def reference(sample_index_dir, embedder) -> Answer:
    """The extractive answer to QUESTION: what every fallback must show."""
    settings = load_settings(index_dir=sample_index_dir)
    with Assistant(settings, open_index(settings, embedder=embedder)) as a:
        return a.ask(QUESTION)


def ask_through(url: str, sample_index_dir, embedder) -> tuple[Answer, str, float]:
    """Ask QUESTION through the openai backend at url; returns (answer, text streamed before it, seconds)."""
    settings = load_settings(index_dir=sample_index_dir, llm="openai", openai_base_url=url, openai_model="fake",
                             llm_timeout_s=TIMEOUT_S, llm_max_retries=1)
    with Assistant(settings, open_index(settings, embedder=embedder)) as a:
        assert a.backend.name == "openai"
        started = time.monotonic()
        items = list(a.stream(QUESTION))
        seconds = time.monotonic() - started
    answer = items[-1]
    assert isinstance(answer, Answer)
    return answer, "".join(i for i in items[:-1] if isinstance(i, str)), seconds


def assert_extractive_fallback(answer: Answer, streamed: str, reference: Answer, note: str) -> None:
    assert answer.backend == "extractive" and not answer.abstained
    assert any(note in n for n in answer.notes), answer.notes
    assert f"_{answer.notes[-1]}_" in answer.text  # the note is shown with the answer
    # the passages are exactly the extractive answer's
    assert answer.text.endswith(reference.text), answer.text
    assert answer.cited_labels == reference.cited_labels and answer.citations
    retrieved = {h.chunk.case_number for h in answer.sources if h.chunk.case_number}
    for shown in (answer.text, streamed):
        assert set(find_case_numbers(shown)) <= retrieved, shown
        assert not any(f in shown for f in FABRICATED), shown


def test_endpoint_down(sample_index_dir, embedder, reference):
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    answer, streamed, _ = ask_through(url, sample_index_dir, embedder)
    assert_extractive_fallback(answer, streamed, reference, FAILED_NOTE)
    assert "Connection" in answer.notes[-1]


def test_endpoint_slower_than_the_timeout_is_retried_once_then_given_up(sample_index_dir, embedder, reference):
    with FakeLLMServer("slow") as server:
        answer, streamed, seconds = ask_through(server.url, sample_index_dir, embedder)
        attempts = len(server.requests)
    assert attempts == 2  # the call and one retry
    assert seconds < 20, seconds  # two 1 s timeouts and a back-off, not the 30 s the server would take
    assert_extractive_fallback(answer, streamed, reference, FAILED_NOTE)
    assert "Timeout" in answer.notes[-1] or "timed out" in answer.notes[-1].lower()


def test_endpoint_error_500_is_retried_once_then_given_up(sample_index_dir, embedder, reference):
    with FakeLLMServer("error-500") as server:
        answer, streamed, _ = ask_through(server.url, sample_index_dir, embedder)
        attempts = len(server.requests)
    assert attempts == 2
    assert_extractive_fallback(answer, streamed, reference, FAILED_NOTE)


@pytest.mark.parametrize("mode", ["invalid-json", "invalid-sse"])
def test_endpoint_returning_invalid_json(mode, sample_index_dir, embedder, reference):
    with FakeLLMServer(mode) as server:
        answer, streamed, _ = ask_through(server.url, sample_index_dir, embedder)
        assert server.requests and server.requests[0]["stream"] is True
    # Either the client rejects the body (model failed) or it yields no text (nothing checkable).
    note = FAILED_NOTE if any(FAILED_NOTE in n for n in answer.notes) else UNCHECKABLE_NOTE
    assert_extractive_fallback(answer, streamed, reference, note)


def test_completion_without_citations(sample_index_dir, embedder, reference):
    reply = "The council must always correct its records within a week. It never refuses."
    with FakeLLMServer("no-citations", reply) as server:
        answer, streamed, _ = ask_through(server.url, sample_index_dir, embedder)
    assert_extractive_fallback(answer, streamed, reference, UNCHECKABLE_NOTE)
    assert "within a week" not in answer.text  # the unchecked claim is not kept


def test_completion_citing_only_invented_case_numbers(sample_index_dir, embedder, reference):
    reply = ("The council must pay £1,000,000 [12 345 678 ¶1]. The same happened in case 98 765 432. "
             "See also [12345678, para 4].")
    with FakeLLMServer("fabricated", reply) as server:
        answer, streamed, _ = ask_through(server.url, sample_index_dir, embedder)
    assert_extractive_fallback(answer, streamed, reference, UNCHECKABLE_NOTE)
    assert answer.fabricated_citations_removed == 3
    assert "£1,000,000" not in answer.text
