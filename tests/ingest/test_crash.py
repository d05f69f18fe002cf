"""Crash safety: an ingest killed with SIGKILL at different moments, then run again, leaves catalog and
Chroma in exact agreement, every decision once, nothing missing. Run with -s to see the trials."""

from __future__ import annotations

import collections
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ingest.chunk import Chunker
from ingest.index import open_index
from ingest.parse import parse_file

try:  # the shared helper in tests/conftest.py, under either pytest import mode (prepend / importlib)
    from conftest import SAMPLE_DIR, build_index
except ImportError:
    from tests.conftest import SAMPLE_DIR, build_index

ROOT = Path(__file__).resolve().parents[2]
COPIES = 5  # 5 x 5 samples = 25 decisions, about 115 chunks

# The real CLI, with write batches of 16 chunks instead of 256: a 25-file run then passes through about ten
# Chroma-upsert / catalog-commit points, so that kills land before, inside and between them.
DRIVER = """\
import functools, sys
from ingest.__main__ import main
import ingest.index
ingest.index.Indexer = functools.partial(ingest.index.Indexer, batch_chunks=16)
sys.exit(main(sys.argv[1:]))
"""


def make_corpus(folder: Path) -> None:
    """25 distinct decisions: each sample copied with new case numbers (or, without one, a new summary)."""
    folder.mkdir()
    for k in range(COPIES):
        for sample in sorted(SAMPLE_DIR.glob("*.txt")):
            text = sample.read_text(encoding="utf-8")
            d = parse_file(sample)
            if d.case_number:
                text = text.replace(d.case_number, f"{30 + k}{d.case_number[2:]}")
            else:
                text = text.replace("Summary: ", f"Summary: (Copy {k}.) ", 1)
            (folder / f"copy{k:02d}_{sample.name}").write_text(text, encoding="utf-8")


def catalog_progress(catalog: Path) -> tuple[int, str | None]:
    """(decisions committed, dirty flag) as another process sees them now."""
    if not catalog.exists():
        return 0, None
    try:
        conn = sqlite3.connect(f"file:{catalog}?mode=ro", uri=True, timeout=1)
        try:
            n = conn.execute("SELECT count(*) FROM decisions").fetchone()[0]
            row = conn.execute("SELECT value FROM meta WHERE key='dirty'").fetchone()
            return n, row[0] if row else None
        finally:
            conn.close()
    except sqlite3.Error:
        return 0, None  # schema not created yet


def state_of(settings, embedder):
    index = open_index(settings, write=False, embedder=embedder)
    try:
        got = index.store.collection.get(include=["metadatas"])
        per_doc = collections.Counter(m["doc_id"] for m in got["metadatas"])
        return dict(decisions={d for d, _ in index.catalog.all_sources()}, catalog_ids=index.catalog.chunk_ids(),
                    chroma_ids=set(got["ids"]), chroma_per_doc=per_doc, dirty=index.catalog.get_meta("dirty"))
    finally:
        index.close()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """The corpus files and the chunk ids a complete ingest must end with, per decision."""
    folder = tmp_path_factory.mktemp("crash") / "decisions"
    make_corpus(folder)
    from rag.settings import load_settings

    s = load_settings()
    chunker = Chunker(s.chunk_target_tokens, s.chunk_max_tokens, s.token_encoding)
    expected: dict[str, set[str]] = {}
    for path in sorted(folder.iterdir()):
        d = parse_file(path)
        expected[d.doc_id] = {c.chunk_id for c in chunker.chunk(d)}
    assert len(expected) == 5 * COPIES
    return folder, expected


# Kill when the first batch is being written (dirty flag up), at about a quarter and at about 60 %.
TRIALS = [("first write under way", 0), ("6 decisions committed", 6), ("15 decisions committed", 15)]


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(len(TRIALS)))
def test_killed_ingest_recovers_to_an_exact_index(trial, corpus, make_settings, embedder, tmp_path):
    folder, expected = corpus
    label, threshold = TRIALS[trial]
    settings = make_settings()
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMBUDS_")}
    env["PYTHONPATH"] = str(ROOT)
    started = time.monotonic()
    stderr = tmp_path / "stderr.txt"
    with stderr.open("wb") as err:  # a file, not a pipe: a full pipe would stall the run
        proc = subprocess.Popen([sys.executable, str(driver), str(folder), "--index-dir", str(settings.index_dir),
                                 "--json"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)
    try:
        while True:
            committed, dirty = catalog_progress(settings.catalog_path)
            if dirty == "1" and committed >= threshold:
                break
            if proc.poll() is not None:
                pytest.fail(f"ingest ended (exit {proc.returncode}) before the kill point {label!r}:\n"
                            f"{stderr.read_text()[-3000:]}")
            if time.monotonic() - started > 240:
                pytest.fail(f"kill point {label!r} not reached in 240 s")
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    killed_at = time.monotonic() - started
    assert proc.returncode == -signal.SIGKILL

    found = state_of(settings, embedder)
    extra = found["chroma_ids"] - found["catalog_ids"]
    missing = found["catalog_ids"] - found["chroma_ids"]
    n_found = len(found["decisions"])
    # The catalog only ever holds whole decisions: every one it lists has all its chunks.
    for doc_id in found["decisions"]:
        assert expected[doc_id] <= found["catalog_ids"]
    assert found["catalog_ids"] <= set().union(*expected.values())

    recovery = build_index(settings, [folder], embedder)
    print(f"\ntrial {trial + 1} ({label}): SIGKILL at {killed_at:.1f} s; found {n_found} decisions, "
          f"{len(found['catalog_ids'])} catalog chunks, {len(found['chroma_ids'])} Chroma vectors "
          f"({len(extra)} not in the catalog, {len(missing)} missing), dirty={found['dirty']}; re-run: "
          f"repaired {recovery.recovered or 'nothing'}, {recovery.added} added, {recovery.unchanged} unchanged, "
          f"{recovery.chunks_written} chunks written in {recovery.seconds:.1f} s")

    # The re-run saw what the kill left and repaired exactly that.
    if found["dirty"] == "1" or extra or missing:
        assert recovery.recovered == {"extra_vectors_deleted": len(extra), "missing_vectors_restored": len(missing)}
    else:
        assert recovery.recovered == {}
    assert (recovery.unchanged, recovery.added, recovery.updated) == (n_found, len(expected) - n_found, 0)
    assert (recovery.failed, recovery.duplicate) == (0, 0)
    assert recovery.chunks_written == sum(len(expected[d]) for d in expected if d not in found["decisions"])

    # Afterwards: catalog and Chroma agree exactly, every decision once, complete, nothing else.
    final = state_of(settings, embedder)
    all_ids = set().union(*expected.values())
    assert final["decisions"] == set(expected)
    assert final["catalog_ids"] == final["chroma_ids"] == all_ids
    assert final["chroma_per_doc"] == {d: len(ids) for d, ids in expected.items()}
    assert final["dirty"] == "0"

    # And the index is settled: one more run changes nothing.
    settled = build_index(settings, [folder], embedder)
    assert (settled.unchanged, settled.chunks_written, settled.recovered) == (len(expected), 0, {})
