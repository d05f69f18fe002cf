"""Fitting the answer-or-decline model on several gold files: pooled questions, figures per file, a baseline."""

from __future__ import annotations

import random

import pytest

from eval.gold import GoldQuestion
from eval.policy_fit import Examined, build_parser, fit, outcomes_by_part, question_outcomes, score_split
from rag.policy import FEATURES, Candidate


def _examined(n: int, seed: int) -> list[Examined]:
    """n questions, two in three answerable; the gold decision's signals are higher, with noise."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        answerable = i % 3 != 0
        q = GoldQuestion(f"x{seed}_{i}", f"question {i}", ("d0",) if answerable else (), (),
                         "specific" if answerable else "unanswerable")
        cands = []
        for rank in range(3):
            good = answerable and rank == 0
            level = (0.7 if good else 0.35) + rnd.gauss(0, 0.12)
            cands.append(Candidate(f"d{rank}", rank, {f: level + rnd.gauss(0, 0.05) for f in FEATURES}))
        out.append(Examined(q, cands, {}))
    return out


def test_several_fit_files_and_a_baseline_are_accepted():
    args = build_parser().parse_args(["--fit", "eval/gold/dev.jsonl", "eval/gold/train.jsonl", "--corpus", "c",
                                      "--baseline", "rag/models/relevance.json"])
    assert [str(p) for p in args.fit] == ["eval/gold/dev.jsonl", "eval/gold/train.jsonl"]
    assert str(args.baseline) == "rag/models/relevance.json"


def test_a_fit_on_pooled_files_reports_each_files_cross_validated_figures():
    first, second = _examined(45, 1), _examined(60, 2)
    parts = ["dev"] * len(first) + ["train"] * len(second)
    model, cv = fit(first + second, parts=parts)
    by = cv["by_part"]
    assert set(by) == {"dev", "train"}
    for key in ("declined_answerable", "answered_unanswerable", "declined_unanswerable"):
        assert by["dev"][key] + by["train"][key] == cv[key]  # the same out-of-fold verdicts, split by file
    assert model.provenance["cross_validated"]["by_part"] == by
    assert "by_part" not in fit(first)[1]
    # --baseline scores any fitted model the same way
    assert score_split(first, model)["abstention_recall"] > 0.5


def test_outcomes_by_part_keeps_each_questions_own_probabilities():
    examined = _examined(6, 3)
    probs = {i: {c.doc_id: (0.9 if e.question.answerable and c.doc_id == "d0" else 0.1) for c in e.candidates}
             for i, e in enumerate(examined)}
    parts = ["a", "b"] * 3
    by = outcomes_by_part(examined, probs, 0.5, 0.9, parts)
    whole = question_outcomes(examined, probs, 0.5, 0.9)
    assert by["a"]["abstention_precision"] == by["b"]["abstention_precision"] == whole["abstention_precision"] == 1.0
    with pytest.raises(ValueError, match="part labels"):
        outcomes_by_part(examined, probs, 0.5, 0.9, parts[:-1])
