"""python -m eval fit-policy — fit the answer-or-decline model (rag/policy.py) on one split, report it on another.

    python -m eval fit-policy --fit eval/gold/dev.jsonl eval/gold/train.jsonl --report eval/gold/test.jsonl \
        --corpus data/sample eval/corpus/dev eval/corpus/test eval/corpus/archive --out rag/models/relevance.json

The fit split may be several gold files (dev.jsonl and the fitting-only train.jsonl): their questions are pooled,
and the cross-validated figures are also given per file ("by_part"). --baseline MODEL scores an already fitted
model on the same examined questions, so that a single look at the report split gives before and after.

Every candidate decision of every fit question becomes one labelled row (does it answer the question: is it a
gold decision?). A logistic regression over rag.policy.FEATURES is fitted (regularisation chosen by grouped
cross-validation, groups = questions); the two thresholds are chosen on the out-of-fold probabilities: the
answer threshold at the middle of the widest range that best separates answerable from unanswerable questions
(balanced accuracy), the citation threshold by F0.5 of the cited decisions (precision counts double). The report
split is then scored once, never used to choose anything.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eval.gold import GoldQuestion, load_gold
from rag.policy import (
    BACKGROUND_FILE,
    FEATURES,
    RULES,
    Candidate,
    RelevanceModel,
    WordStatistics,
    cited_decisions,
    decide,
    load_model,
    shifted,
)
from rag.query import asks_across_decisions

log = logging.getLogger(__name__)


@dataclass
class Examined:
    """One gold question as the policy sees it: its candidates (None when a fixed rule decided)."""

    question: GoldQuestion
    candidates: list[Candidate] | None
    labels: dict[str, str]  # doc_id -> label (case number or doc id)
    rule_answer: bool | None = None  # the fixed rules' verdict, when they decided
    filtered: bool = False

    def gold(self, doc_id: str) -> bool:
        """Whether a candidate decision is one of the question's gold decisions."""
        label = self.labels.get(doc_id, doc_id)
        return label in self.question.gold_cases or doc_id in self.question.gold_cases


def examine_all(assistant: Any, questions: Sequence[GoldQuestion], progress: bool = True) -> list[Examined]:
    """Run the assistant's examination (retrieval + evidence + signals, no answer) for each question."""
    from tqdm import tqdm

    out = []
    for q in tqdm(questions, desc="examining", unit="q", disable=not progress, file=sys.stderr):
        exam = assistant.examine(q.question, q.filters or None, [dict(m) for m in q.history])
        labels = {d: (dec.case_number or d) for d, dec in exam.decisions.items()}
        explicit = any(f not in exam.query.inferred_filters for f in exam.query.filters.to_dict())
        rule_decided = bool(exam.retrieval.looked_up) or exam.verdict.reason not in (None, _MODEL_REASON)
        out.append(Examined(q, None if rule_decided else exam.candidates, labels,
                            exam.verdict.answer if rule_decided else None, explicit))
    return out


_MODEL_REASON = RULES["no_decision_addresses"]  # declined by the fitted model, not by a fixed rule


def rows(examined: Sequence[Examined], features: Sequence[str] = FEATURES) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(X, y, group) over every candidate of every model-decided question."""
    xs, ys, groups = [], [], []
    for i, e in enumerate(examined):
        for c in e.candidates or []:
            xs.append([c.features[f] for f in features])
            ys.append(1 if e.gold(c.doc_id) else 0)
            groups.append(i)
    return np.asarray(xs, dtype=float), np.asarray(ys, dtype=int), np.asarray(groups, dtype=int)


def _fit_lr(x: np.ndarray, y: np.ndarray, c: float) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=c, class_weight="balanced", max_iter=2000)).fit(x, y)


def out_of_fold(x: np.ndarray, y: np.ndarray, groups: np.ndarray, c: float, folds: int = 5) -> np.ndarray:
    """Probabilities for each row from a model that never saw its question."""
    from sklearn.model_selection import GroupKFold

    p = np.zeros(len(y))
    for train, test in GroupKFold(n_splits=folds).split(x, y, groups):
        p[test] = _fit_lr(x[train], y[train], c).predict_proba(x[test])[:, 1]
    return p


def question_outcomes(examined: Sequence[Examined], probs: dict[int, dict[str, float]], answer_t: float,
                      cite_r: float) -> dict[str, float]:
    """Abstention precision/recall and citation precision/recall of the cited decisions, per question."""
    tp = fp = fn = 0  # abstention as the positive class
    cited_right = cited = gold_found = gold_total = 0
    for i, e in enumerate(examined):
        answerable = e.question.answerable
        if e.candidates is None:
            answered = bool(e.rule_answer)
            chosen: list[str] = []
        else:
            ps = probs.get(i, {})
            best = max(ps.values(), default=0.0)
            answered = best >= answer_t
            chosen = list(cited_decisions(ps, answer_t, cite_r, asks_across_decisions(e.question.question))
                          ) if answered else []
        if not answered and not answerable:
            tp += 1
        elif not answered and answerable:
            fp += 1
        elif answered and not answerable:
            fn += 1
        if answered and answerable and e.candidates is not None:
            cited += len(chosen)
            cited_right += sum(e.gold(d) for d in chosen)
            gold_found += len({e.labels.get(d, d) for d in chosen if e.gold(d)})
            gold_total += len(e.question.gold_cases)
    return {"abstention_precision": tp / (tp + fp) if tp + fp else 1.0,
            "abstention_recall": tp / (tp + fn) if tp + fn else 1.0,
            "declined_answerable": fp, "answered_unanswerable": fn, "declined_unanswerable": tp,
            "citation_precision": cited_right / cited if cited else 1.0,
            "citation_recall": gold_found / gold_total if gold_total else 1.0}


def _probs_by_question(examined: Sequence[Examined], p: np.ndarray) -> dict[int, dict[str, float]]:
    out: dict[int, dict[str, float]] = {}
    k = 0
    for i, e in enumerate(examined):
        for c in e.candidates or []:
            out.setdefault(i, {})[c.doc_id] = float(p[k])
            k += 1
    return out


def choose_answer_threshold(examined: Sequence[Examined], probs: dict[int, dict[str, float]]) -> float:
    """The middle of the widest run of thresholds with the best balanced accuracy (margin on both sides)."""
    grid = np.round(np.arange(0.02, 0.99, 0.01), 2)
    scores = []
    for t in grid:
        o = question_outcomes(examined, probs, float(t), 2.0)
        ans_total = sum(1 for e in examined if e.question.answerable) or 1
        un_total = sum(1 for e in examined if not e.question.answerable) or 1
        scores.append(0.5 * (1 - o["declined_answerable"] / ans_total) + 0.5 * o["declined_unanswerable"] / un_total)
    best = max(scores)
    runs, start = [], None
    for i, s in enumerate(scores + [-1]):
        if s >= best - 1e-9 and start is None:
            start = i
        elif s < best - 1e-9 and start is not None:
            runs.append((start, i - 1))
            start = None
    a, b = max(runs, key=lambda r: r[1] - r[0])
    return float((grid[a] + grid[b]) / 2)


def outcomes_by_part(examined: Sequence[Examined], probs: dict[int, dict[str, float]], answer_t: float,
                     cite_r: float, parts: Sequence[str]) -> dict[str, dict[str, float]]:
    """question_outcomes for each part of the examined questions (parts: one label per question)."""
    if len(parts) != len(examined):
        raise ValueError(f"{len(parts)} part labels for {len(examined)} questions")
    out = {}
    for part in dict.fromkeys(parts):
        idx = [i for i, p in enumerate(parts) if p == part]
        sub_probs = {k: probs[i] for k, i in enumerate(idx) if i in probs}
        figures = question_outcomes([examined[i] for i in idx], sub_probs, answer_t, cite_r)
        out[part] = {k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}
    return out


def choose_cite_ratio(examined: Sequence[Examined], probs: dict[int, dict[str, float]], answer_t: float) -> float:
    """The citation ratio (share of the best decision's probability) with the best F0.5 of cited decisions
    (precision weighs double)."""
    best_t, best_f = 0.5, -1.0
    for t in np.round(np.arange(0.3, 1.01, 0.01), 2):
        o = question_outcomes(examined, probs, answer_t, float(t))
        p, r = o["citation_precision"], o["citation_recall"]
        f = 1.25 * p * r / (0.25 * p + r) if p + r else 0.0
        if f > best_f + 1e-9:
            best_t, best_f = float(t), f
    return best_t


def fit(examined: Sequence[Examined], features: Sequence[str] = FEATURES, cs: Sequence[float] = (0.03, 0.1, 0.3, 1, 3),
        version: str = "relevance", provenance: dict[str, Any] | None = None,
        background: WordStatistics | None = None, parts: Sequence[str] | None = None
        ) -> tuple[RelevanceModel, dict[str, Any]]:
    """Fit the model and its thresholds on `examined`; returns it and the cross-validated figures.

    parts: one label per examined question (its gold file, when fitting on several); the cross-validated
    figures then also hold each part's own ("by_part"), from the same out-of-fold probabilities."""
    from sklearn.metrics import log_loss

    x, y, groups = rows(examined, features)
    if len(set(y)) < 2:
        raise ValueError("the fit split needs both answering and non-answering candidates")
    losses = {c: log_loss(y, out_of_fold(x, y, groups, c), labels=[0, 1]) for c in cs}
    c = min(losses, key=losses.get)
    oof = _probs_by_question(examined, out_of_fold(x, y, groups, c))
    answer_t = choose_answer_threshold(examined, oof)
    cite_r = choose_cite_ratio(examined, oof, answer_t)
    cv: dict[str, Any] = dict(question_outcomes(examined, oof, answer_t, cite_r))
    if parts is not None:
        cv["by_part"] = outcomes_by_part(examined, oof, answer_t, cite_r, parts)
    lr = _fit_lr(x, y, c)
    scaler, clf = lr.named_steps["standardscaler"], lr.named_steps["logisticregression"]
    fitted = {"C": c, "cv_log_loss": {str(k): round(v, 4) for k, v in losses.items()}, "rows": int(len(y)),
              "positives": int(y.sum()),
              "cross_validated": {k: round(v, 4) if isinstance(v, float) else v for k, v in cv.items()}}
    model = RelevanceModel(version=version, features=tuple(features), mean=tuple(map(float, scaler.mean_)),
                           scale=tuple(float(s) or 1.0 for s in scaler.scale_), coef=tuple(map(float, clf.coef_[0])),
                           intercept=float(clf.intercept_[0]), answer_threshold=round(answer_t, 4),
                           cite_ratio=round(cite_r, 4), filtered_answer_threshold=round(answer_t, 4),
                           provenance=dict(provenance or {}) | fitted, background=background)
    return model, cv


def score_split(examined: Sequence[Examined], model: RelevanceModel, delta: float = 0.0) -> dict[str, Any]:
    """Question-level figures of a fitted model on a split (similarities moved by delta, for the margin check)."""
    probs: dict[int, dict[str, float]] = {}
    for i, e in enumerate(examined):
        if e.candidates is not None:
            verdict = decide(shifted(e.candidates, delta) if delta else e.candidates, model, e.filtered)
            probs[i] = verdict.scores
    # decide() applies the filtered threshold; question_outcomes uses one threshold, so pass per-question through
    return question_outcomes(examined, probs, model.answer_threshold, model.cite_ratio)


def outcome_vector(examined: Sequence[Examined], model: RelevanceModel, delta: float = 0.0) -> list[bool]:
    """Answer (True) or decline for each question, with every similarity moved by delta."""
    out = []
    for e in examined:
        if e.candidates is None:
            out.append(bool(e.rule_answer))
        else:
            out.append(decide(shifted(e.candidates, delta) if delta else e.candidates, model, e.filtered).answer)
    return out


def flips(examined: Sequence[Examined], model: RelevanceModel, delta: float = 0.01) -> dict[str, Any]:
    """How many questions change answer/decline when every similarity moves by +delta or -delta."""
    base = outcome_vector(examined, model)
    up, down = outcome_vector(examined, model, delta), outcome_vector(examined, model, -delta)
    changed = [e.question.id for e, b, u, d in zip(examined, base, up, down) if b != u or b != d]
    return {"delta": delta, "flipped": len(changed), "questions": len(examined), "ids": changed}


def build_parser() -> argparse.ArgumentParser:
    """The `fit-policy` command line."""
    p = argparse.ArgumentParser(prog="python -m eval fit-policy", description=__doc__.split("\n\n")[0])
    p.add_argument("--fit", type=Path, nargs="+", required=True, help="gold split(s) to fit on")
    p.add_argument("--report", type=Path, nargs="*", default=[], help="gold split(s) to report on (never fitted)")
    p.add_argument("--corpus", type=Path, nargs="+", required=True, help="decision folders to index")
    p.add_argument("--out", type=Path, help="write the fitted model here (e.g. rag/models/relevance.json)")
    p.add_argument("--version", default=None, help="version label (default: relevance-<date>)")
    p.add_argument("--save-examined", type=Path, help="pickle the fit split's examined questions here (for "
                   "experiments in a notebook: refit without running retrieval again)")
    p.add_argument("--baseline", type=Path, help="also score this fitted model (e.g. rag/models/relevance.json) "
                   "on the same examined questions, so one look at the report split gives before and after")
    p.add_argument("--no-background", action="store_true",
                   help="fit without background word statistics (the word weights then come from the index alone)")
    p.add_argument("--quiet", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point: 0 done, 2 usage or configuration error."""
    from core.errors import OmbudsError, cli_error
    from core.logs import setup_logging
    from core.settings import apply_offline_environment, load_settings
    from eval.run import evaluation_index, git_state, open_assistant

    apply_offline_environment()
    args = build_parser().parse_args(argv)
    setup_logging("WARNING")
    try:
        fit_qs = [q for path in args.fit for q in load_gold(path)]
        parts = [str(path) for path in args.fit for _ in load_gold(path)]
        baseline = load_model(str(args.baseline)) if args.baseline else None
        report_qs = [q for path in args.report for q in load_gold(path)]
        settings = load_settings()
        started = time.perf_counter()
        with evaluation_index(settings, args.corpus, None, show_bar=not args.quiet) as (eval_settings, corpus):
            with open_assistant(eval_settings) as assistant:
                catalog = assistant.index.catalog
                # The fit index's own word counts become the background shipped beside the model (rag/policy.py).
                background = None if args.no_background else WordStatistics(
                    catalog.count_chunks(), catalog.term_counts(),
                    {"corpus": [str(p) for p in args.corpus], "decisions": catalog.count_decisions(),
                     "what": "chunks containing each Porter stem (SQLite FTS5 vocabulary)"})
                assistant.relevance = dataclasses.replace(assistant.relevance, background=background)
                fit_ex = examine_all(assistant, fit_qs, not args.quiet)
                report_ex = examine_all(assistant, report_qs, not args.quiet)
                backend = assistant.index.embedder.backend
    except OmbudsError as exc:
        return cli_error(exc)
    from ingest.cpu import cpu_info

    if args.save_examined:
        import pickle

        args.save_examined.write_bytes(pickle.dumps(fit_ex))
    version = args.version or f"relevance-{dt.date.today().isoformat()}"
    provenance = {"fit": [str(p) for p in args.fit], "corpus": [str(p) for p in args.corpus],
                  "fit_questions": len(fit_qs), "commit": git_state().get("commit"), "embedding_backend": backend,
                  "cpu": cpu_info().describe(), "fitted": dt.datetime.now().isoformat(timespec="seconds")}
    model, cv = fit(fit_ex, version=version, provenance=provenance, background=background,
                    parts=parts if len(args.fit) > 1 else None)
    result = {"model": model.to_dict(), "cross_validated_on_fit_split": cv,
              "fit_split": score_split(fit_ex, model), "fit_flips": flips(fit_ex, model),
              "seconds": round(time.perf_counter() - started, 1)}
    if report_ex:
        result["report_split"] = score_split(report_ex, model)
        result["report_flips"] = flips(report_ex, model)
    if baseline is not None:
        result["baseline"] = {"version": baseline.version, "fit_split": score_split(fit_ex, baseline),
                              "fit_flips": flips(fit_ex, baseline)}
        if report_ex:
            result["baseline"] |= {"report_split": score_split(report_ex, baseline),
                                   "report_flips": flips(report_ex, baseline)}
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(model.to_dict(), indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
        if background is not None:
            target = args.out.parent / BACKGROUND_FILE
            target.write_text(json.dumps(background.to_dict(), indent=0, ensure_ascii=False) + "\n", encoding="utf-8")
            print(f"wrote {target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
