"""The answer-or-decline policy: its signals, its model file, and its verdicts on real retrieval."""

from __future__ import annotations

import json

import pytest

from core.errors import ConfigError
from core.text import query_terms, stem
from rag.policy import (
    FEATURES,
    MODEL_PATH,
    Candidate,
    RelevanceModel,
    cited_decisions,
    decide,
    load_model,
    own_terms,
    phrase_coverage,
    shifted,
)


def _positions(text: str) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for i, t in enumerate(stem(w) for w in query_terms(text)):
        out.setdefault(t, []).append(i)
    return out


def test_phrase_coverage_needs_the_words_together_not_just_somewhere():
    question = [stem(w) for w in query_terms("hospital waiting times")]
    together = _positions("The family complained about hospital waiting times for an operation.")
    apart = _positions("He was waiting at home. Later the hospital discharged him; at times the carers were late.")
    assert phrase_coverage(question, together) == 1.0
    assert phrase_coverage(question, apart) < 1.0


def test_a_follow_up_keeps_only_the_subject_words_it_adds():
    assert own_terms("And what about broken street lights?", "potholes on my road And what about broken street "
                     "lights?") == ["broken", "street", "lights"]
    assert own_terms("How much did they pay?", "EHC plan delay How much did they pay?") == []
    assert own_terms("What is a council tax reduction?", "What is a council tax reduction?") == \
        query_terms("What is a council tax reduction?")


def _model(**kw) -> RelevanceModel:
    base = dict(version="t", features=("sim_best",), mean=(0.5,), scale=(0.1,), coef=(2.0,), intercept=0.0,
                answer_threshold=0.5, cite_ratio=0.8, filtered_answer_threshold=0.3)
    return RelevanceModel(**(base | kw))


def _c(doc: str, sim: float, rank: int = 0) -> Candidate:
    return Candidate(doc, rank, {f: 0.0 for f in FEATURES} | {"sim_best": sim})


def test_decide_answers_from_the_decisions_likely_to_answer_and_cites_only_those():
    verdict = decide([_c("a", 0.7), _c("b", 0.62, 1), _c("c", 0.4, 2)], _model())
    assert verdict.answer and verdict.relevant == ("a", "b") and verdict.reason is None
    assert set(verdict.scores) == {"a", "b", "c"}


def test_a_question_across_decisions_cites_every_decision_that_answers_on_its_own():
    candidates = [_c("a", 0.7), _c("b", 0.62, 1), _c("c", 0.52, 2), _c("d", 0.45, 3)]
    # c's probability (0.60) is over the answer threshold (0.5) but under 0.8 x the best (0.98 x 0.8 = 0.79)
    assert decide(candidates, _model()).relevant == ("a", "b")
    assert decide(candidates, _model(), survey=True).relevant == ("a", "b", "c")
    assert cited_decisions({"a": 0.9, "b": 0.55, "c": 0.4}, 0.5, 0.8, survey=True) == ("a", "b")
    assert cited_decisions({"a": 0.9, "b": 0.55}, 0.5, 0.8) == ("a",)


def test_decide_declines_with_a_reason_when_no_decision_addresses_the_question():
    verdict = decide([_c("a", 0.45), _c("b", 0.3, 1)], _model())
    assert not verdict.answer and verdict.relevant == () and "addresses" in verdict.reason
    assert decide([_c("a", 0.46)], _model(), filtered=True).answer  # chosen decisions need less


def test_shifting_similarities_moves_only_similarity_features():
    c = Candidate("a", 0, {f: 0.5 for f in FEATURES})
    moved = shifted([c], 0.01)[0].features
    assert moved["sim_best"] == pytest.approx(0.51) and moved["coverage"] == 0.5


def test_the_shipped_model_is_fitted_and_documents_where_it_came_from():
    model = load_model()
    assert set(model.features) <= set(FEATURES) and len(model.features) >= 3
    assert 0 < model.answer_threshold < 1 and 0 < model.cite_ratio <= 1
    assert model.provenance.get("fit") and model.provenance.get("fit_questions", 0) >= 100
    assert not any("test" in path for path in model.provenance["fit"])  # never fitted on the test split


def test_a_malformed_model_file_names_the_fix(tmp_path):
    bad = tmp_path / "m.json"
    bad.write_text(json.dumps({"version": "x", "features": ["sim_best"]}))
    with pytest.raises(ConfigError, match="fit-policy"):
        load_model(str(bad))
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_model(str(bad))
    with pytest.raises(ConfigError, match="unknown"):
        _model(features=("sim_best_typo",))


def test_the_shipped_model_carries_background_word_statistics():
    model = load_model()
    assert model.background is not None and model.background.n_chunks > 500
    assert model.background.df.get(stem("council"), 0) > 100  # an ordinary word of decisions is common there


def test_a_model_naming_missing_background_statistics_names_the_fix(tmp_path):
    data = json.loads(MODEL_PATH.read_text(encoding="utf-8"))
    target = tmp_path / "relevance.json"
    target.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ConfigError, match="background word statistics .* cannot be read"):
        load_model(str(target))
    (tmp_path / data["background"]).write_text('{"n_chunks": "many"}', encoding="utf-8")
    with pytest.raises(ConfigError, match="malformed"):
        load_model(str(target))


def test_background_statistics_keep_a_small_index_from_treating_ordinary_words_as_rare():
    """Over five decisions "handle" appears nowhere, so without a background it weighs as much as the subject
    ("rectification") and the decision about rectification covers only part of the question."""
    from rag.policy import WordStatistics, idf_table

    terms = [stem("handle"), stem("rectification")]
    index_df, n = {stem("rectification"): 3}, 23
    alone = idf_table(terms, index_df, n)
    background = WordStatistics(600, {stem("handle"): 40, stem("rectification"): 3})
    both = idf_table(terms, {t: index_df.get(t, 0) + background.df.get(t, 0) for t in terms},
                     n + background.n_chunks)
    share_alone = alone[stem("rectification")] / sum(alone.values())
    share_both = both[stem("rectification")] / sum(both.values())
    assert share_alone < 0.5 < share_both


def test_settings_tune_the_two_weights_and_the_version_says_so():
    model = _model()
    assert model.tuned() is model
    stricter = model.tuned(answer_threshold=0.99)
    assert stricter.answer_threshold == stricter.filtered_answer_threshold == 0.99
    assert stricter.version == f"{model.version}+threshold=0.99"
    candidates = [_c("a", 0.7), _c("b", 0.62, 1)]
    assert decide(candidates, model).answer and not decide(candidates, stricter).answer
    assert decide(candidates, model.tuned(cite_ratio=1.0)).relevant == ("a",)
