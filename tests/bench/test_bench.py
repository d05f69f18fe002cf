"""The synthetic corpus and a smoke run of the benchmark (the real benchmark is `make bench`, not a test)."""

from __future__ import annotations

import json

import pytest

from bench import synth
from ingest.parse import SYNTHETIC_MARK, parse_file


def test_synthetic_corpus_is_deterministic_labelled_and_parseable(tmp_path):
    first = synth.write_corpus(12, tmp_path / "a", seed=7)
    again = synth.write_corpus(12, tmp_path / "b", seed=7)
    other = synth.write_corpus(12, tmp_path / "c", seed=8)
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in again]
    assert [p.read_bytes() for p in first] != [p.read_bytes() for p in other]
    cases = set()
    for path in first:
        assert path.read_text(encoding="utf-8").splitlines()[0] == SYNTHETIC_MARK
        d = parse_file(path)
        assert d.fictional  # so it can never enter the default index
        assert d.case_number.startswith("98 ")  # the reserved range
        assert d.authority and d.category and d.outcome and d.decision_date and d.summary
        assert len(d.sections) >= 5 and sum(len(s.paragraphs) for s in d.sections) >= 7
        cases.add(d.case_number)
    assert len(cases) == 12


def test_synthetic_files_are_refused_by_the_default_index(tmp_path, make_settings, embedder):
    from ingest.index import Indexer, open_index

    paths = synth.write_corpus(3, tmp_path / "synthetic")
    index = open_index(make_settings(), write=True, embedder=embedder)
    try:
        report = Indexer(index, allow_fictional=False).ingest(paths)
    finally:
        index.close()
    assert (report.added, report.failed, report.chunks_written) == (0, 3, 0)
    assert all("SYNTHETIC" in f["reason"] for f in report.failures)


@pytest.mark.slow
def test_quick_benchmark_writes_results_and_a_summary(tmp_path, capsys):
    from bench import run as bench

    code = bench.main(["--quick", "--n", "6", "--query-sizes", "60", "--out", str(tmp_path / "results"),
                       "--workdir", str(tmp_path), "--name", "smoke"])
    assert code == 0
    results = json.loads((tmp_path / "results" / "smoke.json").read_text())
    row = results["ingest"][0]
    assert row["n"] == 6
    assert row["raw"]["chunks"] == row["project"]["chunks"] > 6  # the same chunk texts, embedded twice
    assert row["naive"]["decisions"] == 6 and row["naive"]["chunks"] > 0
    for stage in ("raw", "project", "naive"):
        assert row[stage]["seconds"] > 0 and row[stage]["peak_rss_mb"] > 0
    assert row["ratios"]["project_vs_raw_cpu"] > 0
    query = results["query"][0]
    assert query["chunks"] >= 60 and query["chunks"] == query["vectors"]
    assert query["retrieval_ms"]["n"] == 5 and query["answer_ms"]["p50"] > 0
    assert results["naive_query"][0]["chunks"] >= 60
    assert "query_fill" in results["method"] and results["machine"]["cores"]
    out = capsys.readouterr().out
    assert "| 6 | project |" in out and "smoke.json" in out
    assert not list(tmp_path.glob("ombuds-bench-*"))  # the temporary corpus and indexes were removed


def test_vectors_of_one_cpu_compare_equal_and_a_shift_is_reported(tmp_path, capsys):
    """`python -m bench vectors`: the real encoder's vectors (gold questions, the samples' chunks and sentences as
    ingest makes them); the same file twice is within tolerance, a copy with one similarity moved by more than
    0.01 is not (exit 1), and a missing file is a usage error that says how to make it."""
    import numpy as np

    from bench.vectors import main

    here = tmp_path / "here.npz"
    assert main(["--out", str(here)]) == 0
    header = json.loads(capsys.readouterr().out)
    assert header["questions"] >= 279 and header["chunks"] > 0 and header["sentences"] > header["chunks"]
    assert main(["--compare", str(here), str(here)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["question_chunks_similarity_max_change"] == 0.0 and report["within_tolerance"]

    data = dict(np.load(here))
    moved = data["chunks"].copy()
    moved[0] = moved[0] + 0.05 * data["questions"][0] / np.linalg.norm(data["questions"][0])
    np.savez(tmp_path / "moved.npz", **{**data, "chunks": moved})
    assert main(["--compare", str(here), str(tmp_path / "moved.npz")]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["question_chunks_similarity_max_change"] > 0.01 and not report["within_tolerance"]

    assert main(["--compare", str(here), str(tmp_path / "absent.npz")]) == 2
    assert "python -m bench vectors --out" in capsys.readouterr().err
