"""`python -m eval run` for real: a fresh index of the samples, eight gold questions, every output checked."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from eval.metrics import default_metrics
from ingest.parse import parse_file

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_DIR = ROOT / "data" / "sample"


def run_eval(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "eval", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def run_out(sample_gold, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval-run") / "out"
    done = run_eval("run", "--gold", str(sample_gold), "--corpus", str(SAMPLE_DIR), "--out", str(out),
                    "--name", "sample-subset", "--resamples", "500")
    assert done.returncode == 0, done.stderr[-4000:]
    return out, done


@pytest.mark.slow
def test_run_writes_results_report_and_plots(run_out):
    out, done = run_out
    for name in ("results.jsonl", "report.json", "report.md", "metrics_by_type.png", "latency.png"):
        assert (out / name).is_file(), name
    for png in ("metrics_by_type.png", "latency.png"):
        data = (out / png).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 10_000
    assert "sample-subset: 100%" in done.stderr  # the progress bar
    assert done.stdout.startswith("sample-subset: hit@5 ")


@pytest.mark.slow
def test_results_hold_what_each_question_got(run_out):
    out, _ = run_out
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["q002", "q013", "q032", "q042", "q062", "q068", "q079", "q080"]
    for r in rows:
        for key in ("retrieved_labels", "cited_labels", "answer", "abstained", "fabricated_citations_removed",
                    "timings_ms", "scores"):
            assert key in r, (r["id"], key)
        assert r["timings_ms"]["total_ms"] > 0
    lookup = next(r for r in rows if r["id"] == "q032")  # "What was the outcome of complaint 23 009 429?"
    assert lookup["retrieved_labels"][0] == "23 009 429"
    assert lookup["scores"]["hit@1"] == 1.0 and lookup["scores"]["mrr@10"] == 1.0
    for r in rows:
        if r["type"] == "unanswerable":
            assert r["scores"]["hit@5"] is None and r["scores"]["citation_f1"] is None
            assert r["scores"]["abstention_recall"] == (1.0 if r["abstained"] else 0.0)


@pytest.mark.slow
def test_report_json_has_every_metric_with_intervals_and_provenance(run_out, sample_gold):
    out, _ = run_out
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    overall = report["metrics"]["overall"]
    for name in [m.name for m in default_metrics()]:
        assert set(overall[name]) == {"value", "ci_low", "ci_high", "n"}, name
    for name in ("hit@1", "hit@5", "hit@10", "recall@5", "recall@10", "mrr@10", "ndcg@10", "key_fact_recall",
                 "citation_precision", "citation_recall", "citation_f1", "latency_total_p50", "latency_total_p95"):
        e = overall[name]
        assert e["value"] is not None and e["ci_low"] <= e["value"] <= e["ci_high"], name
    assert overall["hit@5"]["n"] == 6  # the unanswerable two are left out
    assert overall["abstention_recall"]["n"] == 2
    assert set(report["metrics"]["by_type"]) == {"specific", "lookup", "filter", "paraphrase", "follow-up",
                                                 "unanswerable"}
    assert report["settings"]["retrieval_mode"] == "hybrid" and report["settings"]["llm"] == "extractive"
    assert report["prompt_files"]["answer"].startswith("answer@")
    assert report["gold"]["sha256"] == hashlib.sha256(sample_gold.read_bytes()).hexdigest()
    # The fingerprint depends on the decisions' content only: recompute it from the files.
    hashes = sorted(parse_file(p).content_hash for p in SAMPLE_DIR.iterdir())
    assert report["corpus"]["fingerprint"] == hashlib.sha256("\n".join(hashes).encode()).hexdigest()
    assert report["corpus"]["decisions"] == 5 and report["corpus"]["temporary"] is True
    commit = report["git"]["commit"]
    assert commit is None or re.fullmatch(r"[0-9a-f]{40}", commit)
    assert report["judge"] is None  # no judge configured, nothing needed one
    assert len(report["worst"]) == 8


@pytest.mark.slow
def test_report_markdown_has_tables_and_worst_questions(run_out):
    out, _ = run_out
    md = (out / "report.md").read_text(encoding="utf-8")
    for heading in ("# Evaluation report: sample-subset", "## Headline", "## All metrics", "## By question type",
                    "## Worst ten questions"):
        assert heading in md
    assert "| hit@5 |" in md and "![metrics](metrics_by_type.png)" in md and "![latency](latency.png)" in md
    worst = md.split("## Worst ten questions", 1)[1]
    assert all(f"| {q} |" in worst for q in ("q002", "q079"))


@pytest.mark.parametrize("args, message", [
    ((), "usage: python -m eval"),
    (("frobnicate",), "unknown command 'frobnicate'"),
    (("run",), "the following arguments are required: --gold"),
    (("run", "--gold", "no-such-file.jsonl"), "--gold no-such-file.jsonl: no such file"),
    (("run", "--gold", "eval/gold/dev.jsonl", "--corpus", "no-such-dir"), "--corpus no-such-dir"),
    (("run", "--gold", "eval/gold/dev.jsonl", "--k", "0"), "0 is out of range"),
    (("run", "--gold", "eval/gold/dev.jsonl", "--llm", "gpt"), "invalid choice: 'gpt'"),
    (("run", "--gold", "eval/gold/dev.jsonl", "--judge-model", "m"), "--judge-base-url and --judge-model"),
    (("compare", "--gold", "eval/gold/dev.jsonl", "--corpus", "data/sample", "--configs", "hybrid,bm42"),
     "unknown configuration(s) bm42"),
    (("compare", "--gold", "eval/gold/dev.jsonl"), "the following arguments are required: --corpus"),
])
def test_bad_arguments_print_usage_and_exit_2(args, message):
    done = run_eval(*args, timeout=120)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "usage:" in done.stderr


def test_a_broken_gold_file_is_a_usage_error_naming_the_line(tmp_path):
    gold = tmp_path / "gold.jsonl"
    gold.write_text('{"id": "x", "question": "q?", "gold_cases": [], "key_facts": [], "type": "unanswerable"}\n'
                    '{"id": "y", "question": "q?", "gold_cases": [], "key_facts": []}\n', encoding="utf-8")
    done = run_eval("run", "--gold", str(gold), "--corpus", "data/sample", timeout=120)
    assert done.returncode == 2
    assert f"{gold} line 2: field 'type' is missing" in done.stderr
