"""python -m ingest as people run it: a real subprocess, its summary, its exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BAD_PROSE = ROOT / "tests" / "fixtures" / "bad" / "not_a_decision.txt"
REPORT_KEYS = {"files_seen", "added", "updated", "unchanged", "duplicate", "failed", "chunks_written", "seconds",
               "chunks_per_second"}


def run_ingest(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMBUDS_")}
    return subprocess.run([sys.executable, "-m", "ingest", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.slow
def test_ingest_then_reingest_then_a_bad_file(tmp_path):
    index_dir = tmp_path / "index"

    first = run_ingest("data/sample", "--index-dir", str(index_dir))
    assert first.returncode == 0, first.stderr
    out = first.stdout
    assert "files seen: 5" in out
    assert "decisions: 5 added, 0 updated, 0 unchanged, 0 duplicate, 0 failed" in out
    assert "no case number: " in out and "002_7d099216e168a9a0.txt (indexed as 002_7d099216e168a9a0)" in out
    assert "chunks written: " in out and "FAILED" not in out
    assert (index_dir / "catalog.sqlite").is_file() and (index_dir / "chroma").is_dir()

    again = run_ingest("data/sample", "--index-dir", str(index_dir), "--json")
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)  # the whole of stdout is one JSON object
    assert REPORT_KEYS <= set(report)
    assert (report["files_seen"], report["added"], report["updated"], report["unchanged"], report["duplicate"],
            report["failed"], report["chunks_written"]) == (5, 0, 0, 5, 0, 0, 0)
    assert isinstance(report["seconds"], float) and report["chunks_per_second"] == 0.0

    bad = tmp_path / "incoming"
    bad.mkdir()
    (bad / "empty.txt").write_bytes(b"")
    (bad / "minutes.txt").write_bytes(BAD_PROSE.read_bytes())
    third = run_ingest("data/sample", str(bad), "--index-dir", str(index_dir))
    assert third.returncode == 1, third.stdout + third.stderr
    assert "decisions: 0 added, 0 updated, 5 unchanged, 0 duplicate, 2 failed" in third.stdout
    assert f"FAILED: {bad / 'empty.txt'}: empty file" in third.stdout
    assert f"FAILED: {bad / 'minutes.txt'}: no recognisable decision text" in third.stdout


@pytest.mark.parametrize("args, expected", [
    ([], "the following arguments are required: paths"),
    (["data/sample", "--frobnicate"], "unrecognized arguments: --frobnicate"),
])
def test_usage_errors_exit_2(tmp_path, args, expected):
    result = run_ingest(*args, "--index-dir", str(tmp_path / "index"), timeout=60)
    assert result.returncode == 2
    assert "usage: python -m ingest" in result.stderr and expected in result.stderr
    assert not (tmp_path / "index").exists()


def test_a_bad_chroma_url_exits_2_with_a_clear_message(tmp_path):
    result = run_ingest("data/sample", "--index-dir", str(tmp_path / "index"), "--chroma-url", "ftp://x",
                        timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ")
    assert "'ftp://x' is not an http(s) URL" in result.stderr and "http://127.0.0.1:8000" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert not (tmp_path / "index").exists()


def test_a_stopped_chroma_server_is_said_and_leaves_no_empty_catalog(tmp_path):
    import socket

    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = run_ingest("data/sample", "--index-dir", str(tmp_path / "index"), "--chroma-url",
                        f"http://127.0.0.1:{port}", timeout=120)
    assert result.returncode == 2, result.stderr
    assert f"Cannot reach the Chroma server at http://127.0.0.1:{port}" in result.stderr
    assert "make chroma" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "index" / "catalog.sqlite").exists()
