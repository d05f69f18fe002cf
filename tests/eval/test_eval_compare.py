"""Configurations compared on the same gold subset: naive LangChain baseline, lexical-only and hybrid."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.settings import load_settings
from eval.compare import PAIRED_METRICS, build_table, parse_configs, run_configs, write_table
from eval.gold import load_gold

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_DIR = ROOT / "data" / "sample"


@pytest.fixture(scope="module")
def compared(sample_gold, embedder, tmp_path_factory):
    base = tmp_path_factory.mktemp("compare")
    questions = load_gold(sample_gold)
    settings = load_settings(log_dir=base / "logs")
    results = run_configs(questions, [SAMPLE_DIR], ["naive", "lexical", "hybrid"], settings, out=base / "out",
                          gold_path=sample_gold, progress=False, n_resamples=300, workdir=base / "work",
                          embedder=embedder)
    table = build_table(results, "hybrid", n_resamples=1000, gold_path=sample_gold, corpus=[SAMPLE_DIR])
    paths = write_table(base / "out", table)
    return base, results, table, paths


@pytest.mark.slow
def test_compare_writes_one_table_and_each_configurations_run(compared):
    base, _, table, paths = compared
    assert json.loads(paths["json"].read_text(encoding="utf-8"))["reference"] == "hybrid"
    md = paths["markdown"].read_text(encoding="utf-8")
    assert "## Difference from hybrid" in md
    for name in ("naive", "lexical", "hybrid"):
        assert f"| {name} |" in md or f"| **{name}** |" in md
        assert (base / "out" / name / "report.json").is_file() and (base / "out" / name / "results.jsonl").is_file()
    assert paths["plot"].read_bytes().startswith(b"\x89PNG")


@pytest.mark.slow
def test_every_configuration_is_tested_against_hybrid_on_the_same_questions(compared):
    _, _, table, _ = compared
    assert set(table["paired"]) == {"naive", "lexical"}
    for tests in table["paired"].values():
        assert set(tests) == set(PAIRED_METRICS)
        assert tests["mrr@10"]["n"] == 6  # the six answerable questions
        t = tests["mrr@10"]
        assert t["diff"] == pytest.approx(t["mean_a"] - t["mean_b"])
        assert t["p_value"] is None or 0.0 <= t["p_value"] <= 1.0
    # The baseline cites nothing, so there is no citation difference to test.
    assert table["paired"]["naive"]["citation_f1"]["n"] == 0


@pytest.mark.slow
def test_naive_baseline_is_scored_only_on_what_it_produces(compared):
    _, results, table, _ = compared
    naive = table["configs"]["naive"]
    overall = naive["metrics"]["overall"]
    assert overall["citation_f1"]["value"] is None and overall["cited_sentence_share"]["value"] is None
    assert overall["abstention_recall"]["value"] == 0.0  # it never declines
    assert overall["hit@10"]["value"] is not None and overall["key_fact_recall"]["n"] == 6
    assert naive["settings"]["chunk_size"] == 1000 and naive["settings"]["chunk_overlap"] == 200
    # It answers with its top k chunks of raw text.
    assert naive["answer_chars_mean"] > 1000
    assert all(s.retrieved for s in results["naive"].samples)


@pytest.mark.slow
def test_configurations_share_what_they_can_and_see_the_same_decisions(compared):
    base, _, table, _ = compared
    work = base / "work"
    assert (work / "index").is_dir() and (work / "naive-chroma").is_dir()
    assert not (work / "index-noheaders").exists()  # nobody asked for it
    fingerprints = {c["corpus"]["fingerprint"] for c in table["configs"].values()}
    assert len(fingerprints) == 1 and len(next(iter(fingerprints))) == 64
    assert table["configs"]["lexical"]["corpus"] == table["configs"]["hybrid"]["corpus"]  # one shared ingest
    assert table["configs"]["lexical"]["settings"]["retrieval_mode"] == "lexical"


def test_config_names_are_checked():
    assert parse_configs(None) == ["naive", "dense", "lexical", "hybrid", "hybrid-noheaders"]
    assert parse_configs(["naive,hybrid", "lexical", "naive"]) == ["naive", "hybrid", "lexical"]
    with pytest.raises(ValueError, match="unknown configuration"):
        parse_configs(["hybrid,semantic"])
