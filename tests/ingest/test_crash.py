"""Crash safety: ingests killed with SIGKILL at 13 different moments, then run again, always end with catalog and
Chroma in exact agreement — every decision once, complete, no orphan vectors, nothing missing.

Each trial runs the real CLI (`tests/ingest/crash_driver.py` wraps `python -m ingest`) in a subprocess and kills
it either at an exact write event (before/after a Chroma upsert or delete, before a catalog COMMIT runs, after a
catalog transaction) or at a seeded random moment while it writes. The kills cover a first ingest, an update
of changed files (stale vectors), `--prune`, a repair run that is itself killed, and a repair of vectors
Chroma lost. The trials are printed in the test output and written to test-output/crash_trials.txt.
"""

from __future__ import annotations

import collections
import importlib.util
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.settings import load_settings
from ingest.catalog import Catalog
from ingest.chunk import Chunker
from ingest.index import Indexer, open_index
from ingest.parse import parse_file
from ingest.store import VectorStore, make_client

try:  # the shared helpers in tests/conftest.py, under either pytest import mode (prepend / importlib)
    from conftest import SAMPLE_DIR
except ImportError:
    from tests.conftest import SAMPLE_DIR

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).resolve().parent / "crash_driver.py"
COPIES = 5  # 5 x 5 samples = 25 decisions, about 115 chunks, about 8 write batches of 16 chunks

_spec = importlib.util.spec_from_file_location("crash_driver", DRIVER)
crash_driver = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(crash_driver)
HashEmbedder = crash_driver.HashEmbedder


@dataclass(frozen=True)
class Trial:
    label: str
    scenario: str  # fresh | update | prune | repair | lost
    crash_at: str | None = None  # "kind:N" for an exact event, None for a timed kill
    seed: int | None = None  # timed kills: seconds after the first write, drawn from this seed
    then: str | None = None  # repair: the kill point of the second (repairing) run


TRIALS = [
    Trial("first ingest: index marked dirty, before the first Chroma write", "fresh", "before-upsert:1"),
    Trial("first ingest: batch 1 in Chroma, its catalog transaction not begun", "fresh", "after-upsert:1"),
    Trial("first ingest: inside catalog transaction 3, before COMMIT", "fresh", "before-commit:3"),
    Trial("first ingest: just after catalog commit 4", "fresh", "after-commit:4"),
    Trial("first ingest: batch 5 in Chroma, near the end", "fresh", "after-upsert:5"),
    Trial("first ingest: random moment A", "fresh", seed=1),
    Trial("first ingest: random moment B", "fresh", seed=2),
    Trial("first ingest: random moment C", "fresh", seed=3),
    Trial("8 files changed: new vectors written, catalog still old", "update", "before-commit:1"),
    Trial("8 files changed: catalog replaced, stale vectors not yet deleted", "update", "before-delete:1"),
    Trial("--prune of 5 gone files: catalog rows deleted, vectors not yet", "prune", "before-delete:1"),
    Trial("killed after batch 2, then killed again while repairing (deleting orphans)", "repair", "after-upsert:2",
          then="before-delete:1"),
    Trial("Chroma lost 20 vectors; re-run killed after restoring the first 16", "lost", "after-upsert:1"),
]
EMBED_DELAY = 0.15  # timed trials: each embedding call takes this long, so writing lasts > 0.75 s after the first


def make_corpus(folder: Path) -> None:
    """25 distinct decisions: each sample copied with new case numbers (or, without one, a new summary)."""
    folder.mkdir(parents=True)
    for k in range(COPIES):
        for sample in sorted(SAMPLE_DIR.glob("*.txt")):
            text = sample.read_text(encoding="utf-8")
            d = parse_file(sample)
            if d.case_number:
                text = text.replace(d.case_number, f"{30 + k}{d.case_number[2:]}")
            else:
                text = text.replace("Summary: ", f"Summary: (Copy {k}.) ", 1)
            (folder / f"copy{k:02d}_{sample.name}").write_text(text, encoding="utf-8")


def expected_chunks(folder: Path) -> dict[str, frozenset[str]]:
    """doc_id -> the chunk ids a complete ingest of folder holds."""
    s = load_settings()
    chunker = Chunker(s.chunk_target_tokens, s.chunk_max_tokens, s.token_encoding)
    out = {}
    for path in sorted(folder.iterdir()):
        d = parse_file(path)
        out[d.doc_id] = frozenset(c.chunk_id for c in chunker.chunk(d))
    return out


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


def fresh_chroma_clients() -> None:
    """Forget Chroma clients cached in this process: a subprocess has changed the files since."""
    from chromadb.api.client import SharedSystemClient

    SharedSystemClient.clear_system_cache()


def run_driver(folder: Path, settings, log: Path, crash_at: str | None = None, prune: bool = False,
               kill_after: float | None = None) -> tuple[int, float]:
    """Run the ingest CLI in a subprocess; returns (exit code, seconds until it ended or was killed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMBUDS_", "CRASH_AT", "EMBED_DELAY"))}
    env["PYTHONPATH"] = str(ROOT)
    if crash_at:
        env["CRASH_AT"] = crash_at
    if kill_after is not None:
        env["EMBED_DELAY"] = str(EMBED_DELAY)
    args = [sys.executable, str(DRIVER), str(folder), "--index-dir", str(settings.index_dir), "--json"]
    if prune:
        args.append("--prune")
    started = time.monotonic()
    with log.open("ab") as err:  # a file, not a pipe: a full pipe would stall the run
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)
    try:
        if kill_after is not None:
            while catalog_progress(settings.catalog_path)[1] != "1":
                if proc.poll() is not None or time.monotonic() - started > 120:
                    pytest.fail(f"ingest ended or stalled before writing (exit {proc.returncode}):\n"
                                f"{log.read_text()[-3000:]}")
                time.sleep(0.005)
            time.sleep(kill_after)
            if proc.poll() is not None:
                pytest.fail(f"ingest finished before the timed kill at +{kill_after:.2f} s")
            proc.send_signal(signal.SIGKILL)
        proc.wait(180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    fresh_chroma_clients()
    return proc.returncode, time.monotonic() - started


def state_of(settings, embedder) -> dict:
    """What catalog and Chroma hold, read without any repair or consistency check."""
    fresh_chroma_clients()
    catalog = Catalog(settings.catalog_path, create=False)
    try:
        store = VectorStore(make_client(settings.chroma_path, None), settings.collection, settings.embedding_model,
                            settings.contextual_headers, str(settings.index_dir))
        got = store.collection.get(include=["metadatas"])
        per_doc = {doc_id: frozenset(catalog.state(doc_id).chunk_ids) for doc_id, _ in catalog.all_sources()}
        return dict(per_doc=per_doc, catalog_ids=catalog.chunk_ids(), chroma_ids=set(got["ids"]),
                    chroma_per_doc=collections.Counter(m["doc_id"] for m in got["metadatas"]),
                    sentence_docs=set(catalog.sentence_vectors(per_doc)), dirty=catalog.get_meta("dirty"))
    finally:
        catalog.close()


def rerun(settings, folder: Path, embedder, prune: bool):
    """Run the ingest again, in this process, as someone would after the crash."""
    fresh_chroma_clients()
    index = open_index(settings, write=True, embedder=embedder)
    try:
        return Indexer(index, batch_chunks=16).ingest([folder], prune=prune)
    finally:
        index.close()


@pytest.fixture(scope="module")
def trial_log(test_output):
    path = test_output / "crash_trials.txt"
    path.write_text("SIGKILL trials (tests/ingest/test_crash.py)\n", encoding="utf-8")
    return path


@pytest.mark.slow
@pytest.mark.parametrize("trial", TRIALS, ids=[f"trial{i + 1:02d}" for i in range(len(TRIALS))])
def test_killed_ingest_recovers_to_an_exact_index(trial, tmp_path, trial_log, capsys):
    embedder = HashEmbedder()
    settings = load_settings(index_dir=tmp_path / "index", log_dir=tmp_path / "logs")
    folder = tmp_path / "decisions"
    make_corpus(folder)
    log = tmp_path / "ingest-stderr.txt"
    before = expected_chunks(folder)
    prune = trial.scenario == "prune"

    # The state the killed run starts from.
    if trial.scenario in ("update", "prune", "lost"):
        code, _ = run_driver(folder, settings, log)
        assert code == 0, log.read_text()[-3000:]
    if trial.scenario == "update":
        for path in sorted(folder.iterdir())[:8]:
            path.write_text(path.read_text(encoding="utf-8").replace("Summary: ", "Summary: (Amended.) ", 1),
                            encoding="utf-8")
    elif trial.scenario == "prune":
        for path in sorted(folder.iterdir())[:5]:
            path.unlink()
    elif trial.scenario == "lost":
        state = state_of(settings, embedder)
        lost = sorted(state["chroma_ids"])[::5][:20]
        store = VectorStore(make_client(settings.chroma_path, None), settings.collection, settings.embedding_model,
                            settings.contextual_headers, str(settings.index_dir))
        store.delete(lost)
        fresh_chroma_clients()
    target = expected_chunks(folder)
    valid_versions = collections.defaultdict(set)  # doc_id -> chunk-id sets a whole decision may have
    for versions in (before, target):
        for doc_id, ids in versions.items():
            valid_versions[doc_id].add(ids)

    # The kill.
    if trial.scenario == "repair":
        code, _ = run_driver(folder, settings, log, trial.crash_at)
        assert code == -signal.SIGKILL, log.read_text()[-3000:]
        code, seconds = run_driver(folder, settings, log, trial.then)
        where = f"{trial.crash_at}, then {trial.then}"
    elif trial.crash_at:
        code, seconds = run_driver(folder, settings, log, trial.crash_at, prune=prune)
        where = trial.crash_at
    else:
        delay = random.Random(trial.seed).uniform(0.02, 0.4)
        code, seconds = run_driver(folder, settings, log, kill_after=delay)
        where = f"+{delay:.2f} s after the first write"
    assert code == -signal.SIGKILL, f"not killed (exit {code}):\n{log.read_text()[-3000:]}"

    # What the kill left: the catalog only ever holds whole decisions, in one of their versions.
    found = state_of(settings, embedder)
    for doc_id, ids in found["per_doc"].items():
        assert ids in valid_versions[doc_id], f"{doc_id} is half-written in the catalog"
    extra = found["chroma_ids"] - found["catalog_ids"]
    missing = found["catalog_ids"] - found["chroma_ids"]

    recovery = rerun(settings, folder, embedder, prune)
    line = (f"{trial_log_prefix(trial)} {trial.label} [{where}] SIGKILL at {seconds:.1f} s: "
            f"{len(found['per_doc'])} decisions, {len(found['catalog_ids'])} catalog chunks, "
            f"{len(found['chroma_ids'])} Chroma vectors ({len(extra)} orphan, {len(missing)} missing), "
            f"dirty={found['dirty']} -> re-run repaired {recovery.recovered or 'nothing'}; "
            f"{recovery.added} added, {recovery.updated} updated, {recovery.unchanged} unchanged, "
            f"{recovery.pruned} pruned, {recovery.chunks_written} chunks written")
    with capsys.disabled():
        print("\n" + line)
    with trial_log.open("a", encoding="utf-8") as fh:
        fh.write(line + "\n")

    # The re-run saw what the kill left and repaired exactly that.
    if found["dirty"] == "1" or extra or missing:
        assert recovery.recovered == {"extra_vectors_deleted": len(extra), "missing_vectors_restored": len(missing)}
    else:
        assert recovery.recovered == {}
    unchanged = {d for d in target if found["per_doc"].get(d) == target[d]}
    updated = {d for d in target if d in found["per_doc"] and d not in unchanged}
    added = set(target) - set(found["per_doc"])
    pruned = set(found["per_doc"]) - set(target)
    assert (recovery.unchanged, recovery.updated, recovery.added) == (len(unchanged), len(updated), len(added))
    assert recovery.pruned == (len(pruned) if prune else 0)
    assert (recovery.failed, recovery.duplicate) == (0, 0)
    assert recovery.chunks_written == sum(len(target[d]) for d in updated | added)

    # Afterwards: catalog and Chroma agree exactly, every decision once, complete, nothing else.
    final = state_of(settings, embedder)
    all_ids = set().union(*target.values())
    assert set(final["per_doc"]) == set(target)
    assert final["per_doc"] == target
    assert final["catalog_ids"] == final["chroma_ids"] == all_ids
    assert final["chroma_per_doc"] == {d: len(ids) for d, ids in target.items()}
    assert final["sentence_docs"] == set(target)  # every decision's sentence vectors, written with it
    assert final["dirty"] == "0"

    # And the index is settled: one more run changes nothing.
    settled = rerun(settings, folder, embedder, prune)
    assert (settled.unchanged, settled.chunks_written, settled.recovered) == (len(target), 0, {})


def trial_log_prefix(trial: Trial) -> str:
    return f"trial {TRIALS.index(trial) + 1:2d}/{len(TRIALS)}:"
