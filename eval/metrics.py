"""Metrics over evaluation samples, bootstrap intervals, and paired tests between configurations.

A metric is an object with a `name` and `score(sample) -> float`; `applies(sample)` says whether the
metric is defined for a sample (retrieval metrics are not defined for unanswerable questions, citation
metrics not for a system that does not cite). `score` on a sample it cannot score raises MetricInputError
naming the sample and the missing field. Retrieval metrics are computed by ranx, ROUGE-L by rouge-score,
intervals and paired tests by scipy.stats.

Heavy libraries (ranx/numba, rouge-score, scipy) are imported inside the functions that need them.
"""

from __future__ import annotations

import dataclasses
import math
import re
import string
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from eval.gold import TYPES, GoldQuestion


class MetricInputError(ValueError):
    """A metric was asked to score a sample that lacks what it needs."""


@dataclass(frozen=True)
class DocRef:
    """A retrieved or cited decision: its doc id and case number (None for a decision without one)."""

    doc_id: str
    case_number: str | None = None

    @property
    def label(self) -> str:
        """How people refer to it: the case number, or the doc id."""
        return self.case_number or self.doc_id

    def matches(self, gold_label: str) -> bool:
        """A gold label names this decision when it equals its case number or its doc id."""
        return gold_label == self.doc_id or (self.case_number is not None and gold_label == self.case_number)


@dataclass(frozen=True)
class Sample:
    """One gold question with what a system produced for it. None = the system does not produce that."""

    id: str
    type: str
    question: str = ""
    gold_cases: tuple[str, ...] = ()
    key_facts: tuple[str, ...] = ()
    reference_answer: str | None = None
    retrieved: tuple[DocRef, ...] | None = None  # decisions in rank order
    cited: tuple[DocRef, ...] | None = None  # decisions cited in the answer, in order of first citation
    answer: str | None = None
    abstained: bool | None = None
    citations_written: int | None = None  # citation references the answer stage wrote, before verification
    fabricated_before: int | None = None  # of those, references to decisions not among the sources
    citations_delivered: int | None = None  # citation references in the text the person reads
    fabricated_after: int | None = None  # of those, references to decisions not among the sources
    sentences: int | None = None  # answer sentences that state something (4 words or more)
    uncited_sentences: int | None = None
    timings_ms: Mapping[str, float] = field(default_factory=dict)
    judge: Mapping[str, float] = field(default_factory=dict)

    @property
    def answerable(self) -> bool:
        """False for unanswerable questions (type 'unanswerable' or no gold decisions)."""
        return self.type != "unanswerable" and bool(self.gold_cases)

    @classmethod
    def from_gold(cls, q: GoldQuestion, **output: Any) -> Sample:
        """A sample for a gold question plus the system's output fields."""
        return cls(id=q.id, type=q.type, question=q.question, gold_cases=q.gold_cases, key_facts=q.key_facts,
                   reference_answer=q.reference_answer, **output)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON form (DocRefs as {doc_id, case_number})."""
        data = dataclasses.asdict(self)
        for name in ("gold_cases", "key_facts"):
            data[name] = list(data[name])
        for name in ("retrieved", "cited"):
            if data[name] is not None:
                data[name] = [dict(r) for r in data[name]]
        data["timings_ms"] = {k: round(float(v), 3) for k, v in self.timings_ms.items()}
        data["judge"] = dict(self.judge)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Sample:
        """Inverse of to_dict (extra keys, such as per-question scores in results.jsonl, are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}
        for name in ("gold_cases", "key_facts"):
            kwargs[name] = tuple(kwargs.get(name) or ())
        for name in ("retrieved", "cited"):
            if kwargs.get(name) is not None:
                kwargs[name] = tuple(DocRef(r["doc_id"], r.get("case_number")) for r in kwargs[name])
        return cls(**kwargs)


def _require(metric: str, sample: Sample, *names: str) -> None:
    for name in names:
        if getattr(sample, name) is None:
            raise MetricInputError(f"metric {metric!r} cannot score sample {sample.id!r}: field {name!r} is missing")


def _require_answerable(metric: str, sample: Sample) -> None:
    if not sample.answerable:
        raise MetricInputError(
            f"metric {metric!r} cannot score sample {sample.id!r}: field 'gold_cases' is empty (an unanswerable "
            "question has no relevant decision; it counts only for abstention)")


class Metric:
    """A named per-question score; the run-level value aggregates the per-question values (mean)."""

    name = "metric"
    group = "other"
    higher_is_better = True
    description = ""

    def applies(self, sample: Sample) -> bool:
        """Whether this metric is defined for the sample (the evaluator scores only those)."""
        return True

    def score(self, sample: Sample) -> float:
        """The score for one sample; MetricInputError when the sample lacks a field this metric needs."""
        raise NotImplementedError

    def score_many(self, samples: Sequence[Sample]) -> list[float]:
        """Scores for many samples (subclasses batch this when a library computes it faster)."""
        return [self.score(s) for s in samples]

    def aggregate(self, values: np.ndarray, axis: int = -1) -> Any:
        """Run-level value from per-question values (vectorised along `axis`, for the bootstrap)."""
        return np.mean(values, axis=axis)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


# --- retrieval (ranx) ---------------------------------------------------------------------------------
def _ranx_scores(ranx_metrics: Sequence[str], samples: Sequence[Sample]) -> dict[str, list[float]]:
    """Per-sample ranx scores; a gold label is relevant to the retrieved decision it names."""
    out = {m: [0.0] * len(samples) for m in ranx_metrics}
    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, dict[str, float]] = {}
    for i, s in enumerate(samples):
        retrieved = s.retrieved or ()
        if not retrieved:
            continue  # nothing retrieved: every metric is 0
        docs: dict[str, float] = {}
        for rank, ref in enumerate(retrieved):
            docs.setdefault(ref.doc_id, float(len(retrieved) - rank))  # distinct, decreasing: ranx keeps order
        relevant: dict[str, int] = {}
        for label in s.gold_cases:
            key = next((r.doc_id for r in retrieved if r.matches(label)), f"not-retrieved::{label}")
            relevant[key] = 1
        qrels[str(i)] = relevant
        run[str(i)] = docs
    if not run:
        return out
    from ranx import Qrels, Run, evaluate

    ranx_run = Run(run)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba type-safety chatter
        evaluate(Qrels(qrels), ranx_run, list(ranx_metrics), return_mean=False)
    for m in ranx_metrics:
        for qid, value in ranx_run.scores[m].items():
            out[m][int(qid)] = float(value)
    return out


class RetrievalMetric(Metric):
    """A ranx metric over the decision ranking (hit rate, recall, MRR, nDCG), binary relevance."""

    group = "retrieval"

    def __init__(self, name: str, ranx_name: str, description: str = ""):
        self.name = name
        self.ranx_name = ranx_name
        self.description = description

    def applies(self, sample: Sample) -> bool:
        return sample.answerable and sample.retrieved is not None

    def score(self, sample: Sample) -> float:
        return self.score_many([sample])[0]

    def score_many(self, samples: Sequence[Sample]) -> list[float]:
        for s in samples:
            _require(self.name, s, "retrieved")
            _require_answerable(self.name, s)
        return _ranx_scores([self.ranx_name], samples)[self.ranx_name]


# --- citations --------------------------------------------------------------------------------------
def _cited_matches(sample: Sample) -> tuple[int, int]:
    """(cited decisions that are gold, gold decisions that were cited)."""
    cited = sample.cited or ()
    good_cited = sum(1 for c in cited if any(c.matches(g) for g in sample.gold_cases))
    gold_found = sum(1 for g in sample.gold_cases if any(c.matches(g) for c in cited))
    return good_cited, gold_found


class CitationPrecision(Metric):
    name, group = "citation_precision", "citations"
    description = "share of cited decisions that are gold decisions (questions with at least one citation)"

    def applies(self, sample: Sample) -> bool:
        return sample.answerable and bool(sample.cited)

    def score(self, sample: Sample) -> float:
        _require(self.name, sample, "cited")
        _require_answerable(self.name, sample)
        if not sample.cited:
            raise MetricInputError(f"metric {self.name!r} cannot score sample {sample.id!r}: field 'cited' is "
                                   "empty (precision of no citations is undefined)")
        return _cited_matches(sample)[0] / len(sample.cited)


class CitationRecall(Metric):
    name, group = "citation_recall", "citations"
    description = "share of gold decisions the answer cites"

    def applies(self, sample: Sample) -> bool:
        return sample.answerable and sample.cited is not None

    def score(self, sample: Sample) -> float:
        _require(self.name, sample, "cited")
        _require_answerable(self.name, sample)
        return _cited_matches(sample)[1] / len(set(sample.gold_cases))


class CitationF1(Metric):
    name, group = "citation_f1", "citations"
    description = "harmonic mean of citation precision and recall (0 when nothing is cited)"

    def applies(self, sample: Sample) -> bool:
        return sample.answerable and sample.cited is not None

    def score(self, sample: Sample) -> float:
        _require(self.name, sample, "cited")
        _require_answerable(self.name, sample)
        if not sample.cited:
            return 0.0
        good_cited, gold_found = _cited_matches(sample)
        p, r = good_cited / len(sample.cited), gold_found / len(set(sample.gold_cases))
        return 0.0 if p + r == 0 else 2 * p * r / (p + r)


class FabricatedRate(Metric):
    """Share of citation references naming a decision that was not retrieved, before or after verification."""

    group = "citations"
    higher_is_better = False

    def __init__(self, stage: str):
        if stage not in ("before", "after"):
            raise ValueError(f"stage must be 'before' or 'after', got {stage!r}")
        self.stage = stage
        self.name = f"fabricated_rate_{stage}"
        self.total_field = "citations_written" if stage == "before" else "citations_delivered"
        self.bad_field = f"fabricated_{stage}"
        self.description = ("invented citations the answer stage wrote, per citation written" if stage == "before"
                            else "invented citations left in the delivered answer, per citation delivered")

    def applies(self, sample: Sample) -> bool:
        total = getattr(sample, self.total_field)
        return sample.answerable and getattr(sample, self.bad_field) is not None and bool(total)

    def score(self, sample: Sample) -> float:
        _require(self.name, sample, self.total_field, self.bad_field)
        _require_answerable(self.name, sample)
        total = getattr(sample, self.total_field)
        if total == 0:
            raise MetricInputError(f"metric {self.name!r} cannot score sample {sample.id!r}: field "
                                   f"{self.total_field!r} is 0 (no citations, so no rate)")
        return min(1.0, getattr(sample, self.bad_field) / total)


class CitedSentenceShare(Metric):
    name, group = "cited_sentence_share", "citations"
    description = "1 - uncited sentences / sentences, in answers that were given"

    def applies(self, sample: Sample) -> bool:
        return (sample.answerable and sample.sentences is not None and sample.uncited_sentences is not None
                and sample.sentences > 0 and not sample.abstained)

    def score(self, sample: Sample) -> float:
        _require(self.name, sample, "sentences", "uncited_sentences")
        _require_answerable(self.name, sample)
        if sample.sentences == 0:
            raise MetricInputError(f"metric {self.name!r} cannot score sample {sample.id!r}: field 'sentences' "
                                   "is 0 (an answer without sentences has no share)")
        return max(0.0, 1.0 - sample.uncited_sentences / sample.sentences)


# --- answers ----------------------------------------------------------------------------------------
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
                         "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
                         "\u00a0": " ", "\u202f": " "})


def normalise_for_facts(text: str) -> str:
    """Lower case, curly quotes straightened, runs of whitespace as one space."""
    return " ".join(text.translate(_QUOTES).lower().split())


class KeyFactRecall(Metric):
    name, group = "key_fact_recall", "answers"
    description = "share of the question's key facts found in the answer (case-insensitive, quotes straightened)"

    def applies(self, sample: Sample) -> bool:
        return bool(sample.key_facts) and sample.answer is not None

    def score(self, sample: Sample) -> float:
        _require(self.name, sample, "answer")
        if not sample.key_facts:
            raise MetricInputError(f"metric {self.name!r} cannot score sample {sample.id!r}: field 'key_facts' "
                                   "is empty")
        answer = normalise_for_facts(sample.answer or "")
        return sum(1 for f in sample.key_facts if normalise_for_facts(f) in answer) / len(sample.key_facts)


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans({c: " " for c in string.punctuation + "\u2018\u2019\u201c\u201d\u2013\u2014\u00b6£"})


_CITATION = re.compile(r"\[[^\[\]]*\]|\u27e8no citation\u27e9")


def answer_prose(text: str) -> str:
    """The answer without its citation markers, for comparison with a reference answer written without them."""
    return _CITATION.sub(" ", text)


def squad_tokens(text: str) -> list[str]:
    """SQuAD answer normalisation: lower case, no punctuation, no articles, split on whitespace."""
    return _ARTICLES.sub(" ", text.lower().translate(_PUNCT)).split()


class TokenF1(Metric):
    name, group = "token_f1", "answers"
    description = "SQuAD-style token F1 against reference_answer, citations stripped (secondary)"

    def applies(self, sample: Sample) -> bool:
        return sample.answerable and sample.reference_answer is not None and sample.answer is not None

    def score(self, sample: Sample) -> float:
        _require(self.name, sample, "answer", "reference_answer")
        pred, gold = squad_tokens(answer_prose(sample.answer or "")), squad_tokens(sample.reference_answer or "")
        if not pred or not gold:
            return float(pred == gold)
        common = sum((Counter(pred) & Counter(gold)).values())
        if common == 0:
            return 0.0
        p, r = common / len(pred), common / len(gold)
        return 2 * p * r / (p + r)


@lru_cache(maxsize=1)
def _rouge_scorer() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


class RougeL(Metric):
    name, group = "rouge_l", "answers"
    description = "ROUGE-L F-measure against reference_answer, citations stripped (rouge-score; secondary)"

    def applies(self, sample: Sample) -> bool:
        return sample.answerable and sample.reference_answer is not None and sample.answer is not None

    def score(self, sample: Sample) -> float:
        _require(self.name, sample, "answer", "reference_answer")
        scored = _rouge_scorer().score(sample.reference_answer, answer_prose(sample.answer or ""))
        return float(scored["rougeL"].fmeasure)


# --- abstention -------------------------------------------------------------------------------------
class AbstentionPrecision(Metric):
    name, group = "abstention_precision", "abstention"
    description = "of the questions the assistant declined, the share that were unanswerable"

    def applies(self, sample: Sample) -> bool:
        return sample.abstained is True

    def score(self, sample: Sample) -> float:
        _require(self.name, sample, "abstained")
        if not sample.abstained:
            raise MetricInputError(f"metric {self.name!r} cannot score sample {sample.id!r}: field 'abstained' "
                                   "is False (precision counts only abstentions)")
        return 0.0 if sample.answerable else 1.0


class AbstentionRecall(Metric):
    name, group = "abstention_recall", "abstention"
    description = "of the unanswerable questions, the share the assistant declined"

    def applies(self, sample: Sample) -> bool:
        return not sample.answerable and sample.abstained is not None

    def score(self, sample: Sample) -> float:
        _require(self.name, sample, "abstained")
        if sample.answerable:
            raise MetricInputError(f"metric {self.name!r} cannot score sample {sample.id!r}: field 'gold_cases' "
                                   "is not empty (recall counts only unanswerable questions)")
        return 1.0 if sample.abstained else 0.0


class FalseAbstentionRate(Metric):
    name, group = "false_abstention_rate", "abstention"
    higher_is_better = False
    description = "of the answerable questions, the share the assistant declined"

    def applies(self, sample: Sample) -> bool:
        return sample.answerable and sample.abstained is not None

    def score(self, sample: Sample) -> float:
        _require(self.name, sample, "abstained")
        _require_answerable(self.name, sample)
        return 1.0 if sample.abstained else 0.0


# --- latency ----------------------------------------------------------------------------------------
class LatencyPercentile(Metric):
    """A percentile of one stage's latency (ms) over the questions."""

    group = "latency"
    higher_is_better = False

    def __init__(self, stage: str, percentile: float):
        self.stage = stage
        self.key = f"{stage}_ms"
        self.percentile = percentile
        self.name = f"latency_{stage}_p{percentile:g}"
        self.description = f"{percentile:g}th percentile of {stage} time (ms)"

    def applies(self, sample: Sample) -> bool:
        return self.key in sample.timings_ms

    def score(self, sample: Sample) -> float:
        if self.key not in sample.timings_ms:
            raise MetricInputError(f"metric {self.name!r} cannot score sample {sample.id!r}: field "
                                   f"'timings_ms.{self.key}' is missing")
        return float(sample.timings_ms[self.key])

    def aggregate(self, values: np.ndarray, axis: int = -1) -> Any:
        return np.percentile(values, self.percentile, axis=axis)


class JudgeScore(Metric):
    """A score an LLM judge gave (0-1), when a judge endpoint was configured."""

    group = "judge"

    def __init__(self, key: str, description: str = ""):
        self.key = key
        self.name = f"judge_{key}"
        self.description = description

    def applies(self, sample: Sample) -> bool:
        return self.key in sample.judge and sample.judge[self.key] is not None

    def score(self, sample: Sample) -> float:
        if self.key not in sample.judge or sample.judge[self.key] is None:
            raise MetricInputError(f"metric {self.name!r} cannot score sample {sample.id!r}: field "
                                   f"'judge.{self.key}' is missing")
        return float(sample.judge[self.key])


LATENCY_STAGES = ("retrieval", "generation", "total")
# Parts of retrieval (or tiny steps) that would only clutter the report; other stages the assistant times
# (an evidence or rerank step, say) are reported beside retrieval and generation automatically.
SUB_STAGES = {"analyse", "dense", "lexical", "lookup"}


def latency_stages(samples: Iterable[Sample]) -> tuple[str, ...]:
    """retrieval, any further timed stage the samples carry, generation, total (in that order)."""
    seen: dict[str, None] = {}
    for s in samples:
        for key in s.timings_ms:
            if key.endswith("_ms"):
                seen.setdefault(key[:-3], None)
    extra = [k for k in seen if k not in LATENCY_STAGES and k not in SUB_STAGES]
    return ("retrieval", *extra, "generation", "total")


def default_metrics(judge: bool = False, stages: Sequence[str] = LATENCY_STAGES) -> list[Metric]:
    """Every metric of the report, in report order (latency for `stages`; see latency_stages)."""
    metrics: list[Metric] = [
        RetrievalMetric("hit@1", "hit_rate@1", "a gold decision ranked first"),
        RetrievalMetric("hit@5", "hit_rate@5", "a gold decision in the top 5"),
        RetrievalMetric("hit@10", "hit_rate@10", "a gold decision in the top 10"),
        RetrievalMetric("recall@5", "recall@5", "share of gold decisions in the top 5"),
        RetrievalMetric("recall@10", "recall@10", "share of gold decisions in the top 10"),
        RetrievalMetric("mrr@10", "mrr@10", "1 / rank of the first gold decision (0 beyond 10)"),
        RetrievalMetric("ndcg@10", "ndcg@10", "nDCG of the decision ranking, binary relevance"),
        CitationPrecision(), CitationRecall(), CitationF1(),
        FabricatedRate("before"), FabricatedRate("after"), CitedSentenceShare(),
        KeyFactRecall(), TokenF1(), RougeL(),
        AbstentionPrecision(), AbstentionRecall(), FalseAbstentionRate(),
    ]
    metrics += [LatencyPercentile(stage, p) for stage in stages for p in (50, 95)]
    if judge:
        metrics += [JudgeScore("faithfulness", "LLM judge: claims supported by the retrieved passages (0-1)"),
                    JudgeScore("correctness", "LLM judge: agreement with the reference answer (0-1)")]
    return metrics


# --- scoring, intervals, tests ----------------------------------------------------------------------
Scores = dict[str, list[float | None]]


def score_samples(samples: Sequence[Sample], metrics: Sequence[Metric] | None = None) -> Scores:
    """Per-question scores: metric name -> one value per sample (None where the metric does not apply)."""
    metrics = list(metrics) if metrics is not None else default_metrics()
    out: Scores = {}
    for metric in metrics:
        idx = [i for i, s in enumerate(samples) if metric.applies(s)]
        values = metric.score_many([samples[i] for i in idx]) if idx else []
        column: list[float | None] = [None] * len(samples)
        for i, v in zip(idx, values, strict=True):
            column[i] = float(v)
        out[metric.name] = column
    return out


@dataclass(frozen=True)
class Estimate:
    """A run-level value with its bootstrap 95% interval and the number of questions behind it."""

    value: float | None
    low: float | None
    high: float | None
    n: int

    def to_dict(self) -> dict[str, Any]:
        """{value, ci_low, ci_high, n}, rounded for the report."""
        def r(x: float | None) -> float | None:
            return None if x is None else round(float(x), 6)

        return {"value": r(self.value), "ci_low": r(self.low), "ci_high": r(self.high), "n": self.n}


def bootstrap_estimate(metric: Metric, values: Sequence[float], n_resamples: int = 2000,
                       seed: int = 0, confidence: float = 0.95) -> Estimate:
    """The metric's aggregate over values with a seeded percentile-bootstrap interval (scipy.stats)."""
    data = np.asarray([v for v in values if v is not None], dtype=float)
    if data.size == 0:
        return Estimate(None, None, None, 0)
    value = float(metric.aggregate(data))
    if data.size == 1 or np.ptp(data) == 0:
        return Estimate(value, value, value, int(data.size))
    from scipy import stats

    res = stats.bootstrap((data,), lambda x, axis=-1: metric.aggregate(x, axis=axis), n_resamples=n_resamples,
                          confidence_level=confidence, method="percentile", vectorized=True,
                          rng=np.random.default_rng(seed))
    return Estimate(value, float(res.confidence_interval.low), float(res.confidence_interval.high), int(data.size))


def _ordered_types(samples: Iterable[Sample]) -> list[str]:
    present = {s.type for s in samples}
    return [t for t in TYPES if t in present] + sorted(present - set(TYPES))


def summarise(samples: Sequence[Sample], metrics: Sequence[Metric] | None = None, scores: Scores | None = None,
              n_resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Every metric overall and per question type, each {value, ci_low, ci_high, n}."""
    metrics = list(metrics) if metrics is not None else default_metrics()
    scores = scores if scores is not None else score_samples(samples, metrics)
    groups = {"overall": list(range(len(samples)))}
    by_type: dict[str, list[int]] = {t: [] for t in _ordered_types(samples)}
    for i, s in enumerate(samples):
        by_type[s.type].append(i)

    def block(indices: list[int]) -> dict[str, Any]:
        return {m.name: bootstrap_estimate(m, [scores[m.name][i] for i in indices], n_resamples, seed).to_dict()
                for m in metrics}

    return {"overall": block(groups["overall"]),
            "by_type": {t: {"n_questions": len(ix), **block(ix)} for t, ix in by_type.items()}}


def paired_test(a: Mapping[str, float | None], b: Mapping[str, float | None], n_resamples: int = 5000,
                seed: int = 0) -> dict[str, Any]:
    """Is mean(a) - mean(b) over the questions both scored real? Paired bootstrap CI + sign-flip p-value.

    `a` and `b` map question id -> score. The p-value is a paired randomisation test
    (scipy.stats.permutation_test, permutation_type='samples'): under "no difference" each question's
    two scores are exchangeable.
    """
    ids = [q for q in a if q in b and a[q] is not None and b[q] is not None]
    if not ids:
        return {"n": 0, "mean_a": None, "mean_b": None, "diff": None, "ci_low": None, "ci_high": None,
                "p_value": None}
    x = np.asarray([a[q] for q in ids], dtype=float)
    y = np.asarray([b[q] for q in ids], dtype=float)
    d = x - y
    out = {"n": len(ids), "mean_a": float(x.mean()), "mean_b": float(y.mean()), "diff": float(d.mean())}
    if not d.any():
        return {**out, "ci_low": 0.0, "ci_high": 0.0, "p_value": 1.0}
    if len(ids) < 2:  # one question cannot say whether a difference is real
        return {**out, "ci_low": None, "ci_high": None, "p_value": None}
    from scipy import stats

    def mean_diff(u: np.ndarray, v: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.mean(u - v, axis=axis)

    if np.ptp(d) == 0:  # every question moved by the same amount: the interval is that amount
        low = high = float(d.mean())
    else:
        ci = stats.bootstrap((x, y), mean_diff, paired=True, vectorized=True, n_resamples=n_resamples,
                             method="percentile", rng=np.random.default_rng(seed)).confidence_interval
        low, high = float(ci.low), float(ci.high)
    perm = stats.permutation_test((x, y), mean_diff, permutation_type="samples", vectorized=True,
                                  n_resamples=n_resamples, alternative="two-sided", rng=np.random.default_rng(seed))
    return {**out, "ci_low": low, "ci_high": high, "p_value": float(perm.pvalue)}


def question_score(sample: Sample, scores: Scores, index: int) -> float:
    """One number per question for "worst questions": answerable -> mean of MRR@10, key-fact recall and
    citation F1 (those defined); unanswerable -> 1 if it abstained else 0."""
    if not sample.answerable:
        return 1.0 if sample.abstained else 0.0
    parts = [scores.get(name, [None] * (index + 1))[index] for name in ("mrr@10", "key_fact_recall", "citation_f1")]
    parts = [p for p in parts if p is not None]
    return float(np.mean(parts)) if parts else math.nan


def worst_questions(samples: Sequence[Sample], scores: Scores, n: int = 10) -> list[tuple[int, float]]:
    """(index, question score) of the n lowest-scoring questions, worst first (ties: lower MRR, then id)."""
    mrr = scores.get("mrr@10", [None] * len(samples))
    ranked = sorted(((i, question_score(s, scores, i)) for i, s in enumerate(samples)),
                    key=lambda t: (t[1] if not math.isnan(t[1]) else 2.0, mrr[t[0]] if mrr[t[0]] is not None else 1.0,
                                   samples[t[0]].id))
    return ranked[:n]


def mean_of(values: Sequence[float | None]) -> float | None:
    """Mean of the values that are not None (None when there are none)."""
    data = [v for v in values if v is not None]
    return float(np.mean(data)) if data else None


