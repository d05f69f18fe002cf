"""Metrics against values worked out by hand on tiny inputs, intervals, paired tests, and unscorable samples."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from eval.metrics import (
    AbstentionPrecision,
    AbstentionRecall,
    CitationF1,
    CitationPrecision,
    CitationRecall,
    CitedSentenceShare,
    DocRef,
    FabricatedRate,
    KeyFactRecall,
    LatencyPercentile,
    MetricInputError,
    RetrievalMetric,
    RougeL,
    Sample,
    TokenF1,
    bootstrap_estimate,
    default_metrics,
    latency_stages,
    paired_test,
    score_samples,
    summarise,
    worst_questions,
)

ROOT = Path(__file__).resolve().parents[2]

A = DocRef("23-009-429", "23 009 429")
B = DocRef("002_7d099216e168a9a0")  # a decision without a case number: known by its doc id
C = DocRef("99-111-111", "99 111 111")
D = DocRef("99-222-222", "99 222 222")


def ref(i: int) -> DocRef:
    return DocRef(f"99-000-{i:03d}", f"99 000 {i:03d}")


def metric(name: str):
    return next(m for m in default_metrics() if m.name == name)


def retrieval_scores(sample: Sample) -> dict[str, float]:
    return {m.name: m.score(sample) for m in default_metrics() if isinstance(m, RetrievalMetric)}


def test_retrieval_metrics_match_hand_computed_values():
    # Gold: one case number and one doc id; retrieved at ranks 2 and 4 of 4.
    s = Sample(id="r1", type="topical", gold_cases=("23 009 429", "002_7d099216e168a9a0"), retrieved=(C, A, D, B))
    got = retrieval_scores(s)
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 + 1 / math.log2(3)
    assert got["hit@1"] == 0.0
    assert got["hit@5"] == got["hit@10"] == 1.0
    assert got["recall@5"] == got["recall@10"] == 1.0
    assert got["mrr@10"] == pytest.approx(0.5)
    assert got["ndcg@10"] == pytest.approx(dcg / idcg)  # 0.6509


def test_retrieval_cut_offs_and_gold_given_as_doc_id():
    sixth = Sample(id="r2", type="specific", gold_cases=("99 000 006",), retrieved=tuple(ref(i) for i in range(1, 8)))
    got = retrieval_scores(sixth)
    assert (got["hit@5"], got["hit@10"], got["recall@5"], got["recall@10"]) == (0.0, 1.0, 0.0, 1.0)
    assert got["mrr@10"] == pytest.approx(1 / 6)
    assert got["ndcg@10"] == pytest.approx(1 / math.log2(7))

    eleventh = Sample(id="r3", type="specific", gold_cases=("99 000 011",),
                      retrieved=tuple(ref(i) for i in range(1, 12)))
    got = retrieval_scores(eleventh)
    assert got["hit@10"] == got["mrr@10"] == got["ndcg@10"] == 0.0

    by_doc_id = Sample(id="r4", type="lookup", gold_cases=("23-009-429",), retrieved=(A, C))
    assert retrieval_scores(by_doc_id)["hit@1"] == 1.0

    half = Sample(id="r5", type="topical", gold_cases=("23 009 429", "99 999 999"), retrieved=(A, C))
    assert retrieval_scores(half)["recall@10"] == 0.5

    nothing = Sample(id="r6", type="specific", gold_cases=("23 009 429",), retrieved=())
    assert set(retrieval_scores(nothing).values()) == {0.0}


def test_batch_scores_equal_single_scores_and_keep_order():
    samples = [Sample(id=f"b{i}", type="specific", gold_cases=(ref(i).case_number,),
                      retrieved=tuple(ref(j) for j in range(1, 6))) for i in range(1, 6)]
    mrr = metric("mrr@10")
    assert mrr.score_many(samples) == pytest.approx([1, 1 / 2, 1 / 3, 1 / 4, 1 / 5])
    assert [mrr.score(s) for s in samples] == pytest.approx(mrr.score_many(samples))


def test_citation_precision_recall_f1():
    s = Sample(id="c1", type="topical", gold_cases=("23 009 429", "002_7d099216e168a9a0"), cited=(A, C))
    assert CitationPrecision().score(s) == 0.5
    assert CitationRecall().score(s) == 0.5
    assert CitationF1().score(s) == 0.5
    perfect = Sample(id="c2", type="specific", gold_cases=("002_7d099216e168a9a0",), cited=(B,))
    assert [m.score(perfect) for m in (CitationPrecision(), CitationRecall(), CitationF1())] == [1, 1, 1]

    silent = Sample(id="c3", type="specific", gold_cases=("23 009 429",), cited=())
    assert CitationRecall().score(silent) == 0.0
    assert CitationF1().score(silent) == 0.0
    assert not CitationPrecision().applies(silent)
    with pytest.raises(MetricInputError, match=r"'c3'.*'cited' is empty"):
        CitationPrecision().score(silent)


def test_fabrication_and_cited_sentence_share():
    s = Sample(id="f1", type="specific", gold_cases=("23 009 429",), citations_written=4, fabricated_before=1,
               citations_delivered=3, fabricated_after=0, sentences=4, uncited_sentences=1, abstained=False)
    assert FabricatedRate("before").score(s) == 0.25
    assert FabricatedRate("after").score(s) == 0.0
    assert CitedSentenceShare().score(s) == 0.75
    none_written = Sample(id="f2", type="specific", gold_cases=("23 009 429",), citations_written=0,
                          fabricated_before=0)
    assert not FabricatedRate("before").applies(none_written)
    with pytest.raises(MetricInputError, match="'citations_written' is 0"):
        FabricatedRate("before").score(none_written)


def test_key_fact_recall_ignores_case_and_curly_quotes():
    s = Sample(id="k1", type="specific", key_facts=("£1,140", "Mrs Y\u2019s mileage", "Social Work England"),
               answer="It refunded MRS Y'S MILEAGE of £1,140 [99 104 233 ¶9].")
    assert KeyFactRecall().score(s) == pytest.approx(2 / 3)
    curly_answer = Sample(id="k2", type="specific", key_facts=("the \"fresh\" review",),
                          answer="It held The \u201cfresh\u201d review.")
    assert KeyFactRecall().score(curly_answer) == 1.0


def test_token_f1_and_rouge_l_strip_citations():
    s = Sample(id="t1", type="specific", gold_cases=("18 009 917",), answer="The council paid £500 [18 009 917 ¶9].",
               reference_answer="Council agreed to pay £500")
    # tokens: {council, paid, 500} vs {council, agreed, to, pay, 500}: 2 shared -> P 2/3, R 2/5, F1 0.5
    assert TokenF1().score(s) == pytest.approx(0.5)
    # stemmed LCS of [the council paid 500] and [council agre to pay 500] is 2: P 2/4, R 2/5 -> F 4/9
    assert RougeL().score(s) == pytest.approx(4 / 9)


def test_abstention_precision_and_recall_over_a_run():
    unans = [Sample(id=f"u{i}", type="unanswerable", abstained=a) for i, a in enumerate([True, True, False])]
    ans = [Sample(id=f"a{i}", type="specific", gold_cases=("23 009 429",), abstained=a)
           for i, a in enumerate([True, False, False])]
    overall = summarise(unans + ans, [AbstentionPrecision(), AbstentionRecall(), metric("false_abstention_rate")],
                        n_resamples=200)["overall"]
    assert overall["abstention_precision"]["value"] == pytest.approx(2 / 3)
    assert overall["abstention_precision"]["n"] == 3  # the three declined questions
    assert overall["abstention_recall"]["value"] == pytest.approx(2 / 3)
    assert overall["abstention_recall"]["n"] == 3  # the three unanswerable questions
    assert overall["false_abstention_rate"]["value"] == pytest.approx(1 / 3)


def test_latency_percentiles_per_stage():
    samples = [Sample(id=f"l{i}", type="specific", timings_ms={"retrieval_ms": v / 2, "total_ms": v})
               for i, v in enumerate([10.0, 20.0, 30.0, 40.0])]
    overall = summarise(samples, [LatencyPercentile("total", 50), LatencyPercentile("total", 95),
                                  LatencyPercentile("retrieval", 50), LatencyPercentile("generation", 50)],
                        n_resamples=200)["overall"]
    assert overall["latency_total_p50"]["value"] == 25.0
    assert overall["latency_total_p95"]["value"] == pytest.approx(38.5)
    assert overall["latency_retrieval_p50"]["value"] == 12.5
    assert overall["latency_generation_p50"] == {"value": None, "ci_low": None, "ci_high": None, "n": 0}
    assert latency_stages([Sample(id="x", type="specific", timings_ms={"dense_ms": 1, "evidence_ms": 2,
                                                                      "total_ms": 3})]) == \
        ("retrieval", "evidence", "generation", "total")


@pytest.mark.parametrize("make, metric_name, field", [
    (lambda: Sample(id="m1", type="specific", gold_cases=("23 009 429",)), "hit@5", "'retrieved'"),
    (lambda: Sample(id="m1", type="unanswerable", retrieved=(A,)), "ndcg@10", "'gold_cases' is empty"),
    (lambda: Sample(id="m1", type="specific", gold_cases=("23 009 429",), key_facts=("x",)), "key_fact_recall",
     "'answer'"),
    (lambda: Sample(id="m1", type="specific", gold_cases=("23 009 429",), answer="x"), "rouge_l",
     "'reference_answer'"),
    (lambda: Sample(id="m1", type="specific", gold_cases=("23 009 429",)), "citation_f1", "'cited'"),
    (lambda: Sample(id="m1", type="specific"), "latency_total_p50", "'timings_ms.total_ms'"),
])
def test_a_sample_a_metric_cannot_score_raises_naming_the_field(make, metric_name, field):
    m = metric(metric_name)
    sample = make()
    assert not m.applies(sample)
    with pytest.raises(MetricInputError) as err:
        m.score(sample)
    assert metric_name in str(err.value) and "'m1'" in str(err.value) and field in str(err.value)


def test_unanswerable_questions_are_left_out_of_retrieval_and_citation_metrics():
    answerable = Sample(id="a", type="specific", gold_cases=("23 009 429",), retrieved=(A,), cited=(A,),
                        answer="x", abstained=False)
    unanswerable = Sample(id="u", type="unanswerable", retrieved=(C,), cited=(C,), answer="x", abstained=False)
    scores = score_samples([answerable, unanswerable])
    for name in ("hit@1", "mrr@10", "ndcg@10", "citation_precision", "citation_f1"):
        assert scores[name] == [1.0, None]
    assert scores["abstention_recall"] == [None, 0.0]


def test_bootstrap_intervals_are_seeded_and_bracket_the_value():
    mean = metric("mrr@10")
    values = [0.0, 1.0, 0.5, 1.0, 0.25, 1.0, 0.0, 1.0]
    first = bootstrap_estimate(mean, values, n_resamples=500, seed=7)
    assert first == bootstrap_estimate(mean, values, n_resamples=500, seed=7)
    assert first.low <= first.value <= first.high and first.low < first.high
    assert first.value == pytest.approx(sum(values) / len(values)) and first.n == 8
    flat = bootstrap_estimate(mean, [1.0, 1.0, 1.0])
    assert (flat.value, flat.low, flat.high) == (1.0, 1.0, 1.0)
    assert bootstrap_estimate(mean, []).value is None


def test_summary_has_every_metric_overall_and_per_type():
    samples = [Sample(id="s", type="specific", gold_cases=("23 009 429",), retrieved=(A,), abstained=False),
               Sample(id="u", type="unanswerable", abstained=True),
               Sample(id="f", type="follow-up", gold_cases=("23 009 429",), retrieved=(C, A), abstained=False)]
    summary = summarise(samples, n_resamples=100)
    assert list(summary["by_type"]) == ["specific", "follow-up", "unanswerable"]  # the gold set's type order
    names = {m.name for m in default_metrics()}
    assert set(summary["overall"]) == names
    assert summary["by_type"]["follow-up"]["mrr@10"]["value"] == 0.5
    assert summary["by_type"]["unanswerable"]["abstention_recall"]["value"] == 1.0


def test_paired_test_tells_a_real_difference_from_none():
    same = {f"q{i}": float(i % 2) for i in range(30)}
    assert paired_test(same, dict(same)) == {"n": 30, "mean_a": 0.5, "mean_b": 0.5, "diff": 0.0, "ci_low": 0.0,
                                             "ci_high": 0.0, "p_value": 1.0}
    better = {q: 1.0 for q in same}
    t = paired_test(better, same, n_resamples=2000)
    assert t["diff"] == 0.5 and t["p_value"] < 0.001 and t["ci_low"] > 0
    # a quarter of the questions gain a point and another quarter lose one: no real difference
    noisy = {q: {0: 1.0, 1: 0.0}.get(int(q[1:]) % 4, v) for q, v in same.items()}
    t = paired_test(noisy, same, n_resamples=2000)
    assert t["p_value"] > 0.05 and t["ci_low"] < 0 < t["ci_high"]
    assert paired_test({"q1": 1.0, "q2": None}, {"q2": 0.0})["n"] == 0  # only questions both scored


def test_worst_questions_ranks_failures_first():
    good = Sample(id="good", type="specific", gold_cases=("23 009 429",), retrieved=(A,), cited=(A,),
                  key_facts=("x",), answer="x", abstained=False)
    missed = Sample(id="missed", type="specific", gold_cases=("23 009 429",), retrieved=(C,), cited=(C,),
                    key_facts=("x",), answer="y", abstained=False)
    answered_unanswerable = Sample(id="unans", type="unanswerable", abstained=False)
    samples = [good, missed, answered_unanswerable]
    worst = worst_questions(samples, score_samples(samples), n=2)
    assert {samples[i].id for i, _ in worst} == {"missed", "unans"}
    assert all(score == 0.0 for _, score in worst)


def test_sample_round_trips_through_plain_json():
    s = Sample(id="j", type="specific", gold_cases=("23 009 429",), retrieved=(A, B), cited=(B,), answer="x",
               abstained=False, timings_ms={"total_ms": 1.5}, judge={"faithfulness": 1.0})
    import json

    assert Sample.from_dict(json.loads(json.dumps(s.to_dict()))) == s


def test_importing_eval_stays_light():
    code = ("import sys, eval, eval.metrics, eval.gold; heavy = [m for m in ('ranx', 'numba', 'torch', 'chromadb', "
            "'scipy', 'rouge_score', 'matplotlib', 'langchain_core', 'rag.assistant') if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
