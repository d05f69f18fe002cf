"""Evaluating a chat-model backend: invented citations are counted before and after verification, and the
decision ranking scored is the one the assistant answered from (also for a rewritten follow-up)."""

from __future__ import annotations

from core.settings import load_settings
from eval.gold import GoldQuestion
from eval.metrics import score_samples
from eval.run import evaluate_assistant, open_assistant
from rag.answer import FakeChatModel, make_backend


def test_fabricated_citations_are_counted_and_ranking_matches_the_answer(sample_index_dir, embedder, tmp_path):
    settings = load_settings(index_dir=sample_index_dir, log_dir=tmp_path / "logs", llm="fake")
    model = FakeChatModel(responses=[
        # 1: the answer to the lookup question, with one real and one invented citation
        "The complaint was closed after initial enquiries [23 009 429 ¶9]. The council paid £900 [99 999 999 ¶2].",
        # 2: the condense step rewrites the follow-up; 3: its answer
        "What did decision 20 011 198 say about where data protection concerns should go?",
        "Data protection concerns should go to the Information Commissioner's Office [20 011 198 ¶8].",
    ])
    questions = [
        GoldQuestion("l1", "What was the outcome of complaint 23 009 429?", ("23 009 429",), ("initial enquiries",),
                     "lookup"),
        GoldQuestion("f1", "Where should he take the data protection part?", ("20 011 198",),
                     ("Information Commissioner",), "follow-up",
                     history=({"role": "user", "content": "What was complaint 20 011 198 about?"},
                              {"role": "assistant", "content": "A father's complaint about a social worker."})),
    ]
    with open_assistant(settings, embedder, backend=make_backend(settings, chat_model=model)) as assistant:
        samples, records = evaluate_assistant(assistant, questions, progress=False)

    lookup, follow = samples
    assert records[0].fabricated_citations_removed == 1
    assert (lookup.citations_written, lookup.fabricated_before) == (2, 1)
    assert (lookup.citations_delivered, lookup.fabricated_after) == (1, 0)
    scores = score_samples(samples)
    assert scores["fabricated_rate_before"][0] == 0.5 and scores["fabricated_rate_after"][0] == 0.0
    assert [r.label for r in lookup.cited] == ["23 009 429"]
    assert scores["key_fact_recall"][0] == 1.0

    assert records[1].standalone_question.startswith("What did decision 20 011 198 say")
    for sample, record in zip(samples, records, strict=True):
        answered_from = list(dict.fromkeys(s["label"] for s in record.sources))
        assert [r.label for r in sample.retrieved[: len(answered_from)]] == answered_from
    assert follow.retrieved[0].label == "20 011 198" and scores["key_fact_recall"][1] == 1.0
