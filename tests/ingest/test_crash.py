"""Crash safety: ingests killed with SIGKILL at 15 different moments, then run again, always end with catalog and
Chroma in exact agreement — every decision once, complete, no orphan vectors, nothing missing.

Each trial runs the real CLI (`tests/ingest/crash_driver.py` wraps `python -m ingest`) in a subprocess and kills
it either at an exact write event (the writer lock just taken, before/after a Chroma upsert or delete, before a
catalog COMMIT runs, after a catalog transaction) or at a seeded random moment while it writes. The kills cover a
first ingest, an update of changed files (stale vectors), `--prune`, a repair run that is itself killed, a
repair of vectors Chroma lost, and a `--rebuild` killed halfway through wiping the index.

One trial definition, two deployments: `embedded` (SQLite catalog file, Chroma folder) and `servers` (the catalog
on a real PostgreSQL server, tests/pgserver.py, and the vectors in a real `chroma run` server on loopback; a new
database and collection per trial). On the servers every exact kill point runs once and one random moment (the
embedded trials draw three). After every kill the next writer must get the lock the killed one held — on
PostgreSQL a session advisory lock, which must die with the killed process's connection — and everything checked
afterwards is read back from the deployment itself (for the servers: from PostgreSQL and the Chroma server, with
no local catalog file or Chroma folder made). The trials are printed in the test output and written to
test-output/crash_trials.txt.
"""

from __future__ import annotations

import collections
import contextlib
import importlib.util
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.errors import IndexBusyError
from core.settings import Settings, load_settings
from ingest.catalog import open_catalog
from ingest.catalog_pg import AdvisoryLock
from ingest.chunk import Chunker
from ingest.index import Indexer, IndexLock, open_index
from ingest.parse import parse_file
from ingest.store import VectorStore, make_client

try:  # the shared helpers in tests/, under either pytest import mode (prepend / importlib)
    from chromaserver import running_chroma_server
    from conftest import SAMPLE_DIR
except ImportError:
    from tests.chromaserver import running_chroma_server
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
    scenario: str  # fresh | update | prune | repair | lost | rebuild
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
    Trial("8 files changed: killed holding the writer lock, nothing written yet", "update", "after-lock:1"),
    Trial("--rebuild: vectors deleted, catalog not yet emptied", "rebuild", "after-wipe:1"),
]
# The servers repeat every exact kill point and one random moment: each server trial costs more (HTTP, SQL).
SERVER_TRIALS = [trial for trial in TRIALS if trial.crash_at or trial.seed == 1]
CASES = [pytest.param(name, trial, id=f"{name}-trial{TRIALS.index(trial) + 1:02d}")
         for name, trials in (("embedded", TRIALS), ("servers", SERVER_TRIALS)) for trial in trials]
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


def sqlite_dirty_flag(catalog: Path) -> str | None:
    """The dirty flag as another process sees it now (None before the catalog or its schema exists)."""
    if not catalog.exists():
        return None
    try:
        conn = sqlite3.connect(f"file:{catalog}?mode=ro", uri=True, timeout=1)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key='dirty'").fetchone()
            return row[0] if row else None
        finally:
            conn.close()
    except sqlite3.Error:
        return None  # schema not created yet


@contextlib.contextmanager
def dirty_flag_reader(settings: Settings) -> Iterator[Callable[[], str | None]]:
    """A function reading the catalog's dirty flag from outside the ingest: the SQLite file, or PostgreSQL
    through one connection kept for the whole wait."""
    if not settings.catalog_url:
        yield lambda: sqlite_dirty_flag(settings.catalog_path)
        return
    import psycopg

    with psycopg.connect(settings.catalog_url.get_secret_value(), autocommit=True) as conn:
        def read() -> str | None:
            try:
                row = conn.execute("SELECT value FROM meta WHERE key='dirty'").fetchone()
            except psycopg.errors.UndefinedTable:
                return None  # schema not created yet
            return row[0] if row else None

        yield read


def deployment_environment(settings: Settings) -> dict[str, str]:
    """The OMBUDS_* variables that make `python -m ingest` use the same catalog, Chroma and collection."""
    env = {"OMBUDS_COLLECTION": settings.collection}
    if settings.chroma_url:
        env["OMBUDS_CHROMA_URL"] = settings.chroma_url
    if settings.catalog_url:
        env["OMBUDS_CATALOG_URL"] = settings.catalog_url.get_secret_value()
    return env


def open_store(settings: Settings) -> VectorStore:
    """The collection the settings name, embedded or on the server, opened without any check against a catalog."""
    return VectorStore(make_client(settings.chroma_path, settings.chroma_url), settings.collection,
                       settings.embedding_model, settings.contextual_headers,
                       settings.chroma_url or str(settings.index_dir))


def writer_lock_free_after(settings: Settings, limit: float = 30.0) -> float:
    """Seconds until a new writer takes the lock a killed ingest held: the index folder's file lock, or with a
    PostgreSQL catalog the session advisory lock, which only the end of the killed process's connection frees.
    Fails if it is still held after `limit` seconds (the next ingest would be refused for good)."""
    started = time.monotonic()
    while True:
        lock = (AdvisoryLock(settings.catalog_url.get_secret_value(), exclusive=True) if settings.catalog_url
                else IndexLock(settings.index_dir, exclusive=True))
        try:
            lock.acquire()
        except IndexBusyError:
            lock.release()
            if time.monotonic() - started > limit:
                pytest.fail(f"the writer lock is still held {limit:.0f} s after the ingest holding it was killed")
            time.sleep(0.01)
            continue
        lock.release()
        return time.monotonic() - started


def fresh_chroma_clients() -> None:
    """Forget Chroma clients cached in this process: a subprocess has changed the files since."""
    from chromadb.api.client import SharedSystemClient

    SharedSystemClient.clear_system_cache()


def start_driver(folder: Path, settings: Settings, log: Path, crash_at: str | None = None,
                 flags: tuple[str, ...] = (), **variables: str) -> subprocess.Popen:
    """Start the ingest CLI in a subprocess on the settings' deployment (more driver variables as keywords)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMBUDS_", "CRASH_", "EMBED_DELAY"))}
    env.update(deployment_environment(settings), PYTHONPATH=str(ROOT), **variables)
    if crash_at:
        env["CRASH_AT"] = crash_at
    args = [sys.executable, str(DRIVER), str(folder), "--index-dir", str(settings.index_dir), "--json", *flags]
    with log.open("ab") as err:  # a file, not a pipe: a full pipe would stall the run
        return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)


def run_driver(folder: Path, settings, log: Path, crash_at: str | None = None, flags: tuple[str, ...] = (),
               kill_after: float | None = None) -> tuple[int, float]:
    """Run the ingest CLI in a subprocess; returns (exit code, seconds until it ended or was killed)."""
    started = time.monotonic()
    delay = {} if kill_after is None else {"EMBED_DELAY": str(EMBED_DELAY)}
    proc = start_driver(folder, settings, log, crash_at, flags, **delay)
    try:
        if kill_after is not None:
            with dirty_flag_reader(settings) as dirty:
                while dirty() != "1":
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
    """What catalog and Chroma hold (the servers, for the servers), read without any repair or consistency
    check."""
    fresh_chroma_clients()
    catalog = open_catalog(settings, create=False)
    try:
        got = open_store(settings).collection.get(include=["metadatas"])
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
    path.write_text("SIGKILL trials (tests/ingest/test_crash.py). embedded: SQLite catalog file + Chroma folder; "
                    "servers: PostgreSQL catalog + `chroma run` server on loopback\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def crash_chroma_url(tmp_path_factory):
    """One `chroma run` server on loopback for the server trials (each trial writes its own collection)."""
    with running_chroma_server(tmp_path_factory.mktemp("crash-chroma")) as url:
        yield url


@pytest.fixture
def deployment(request, tmp_path) -> Settings:
    """The settings of one trial: embedded in tmp_path, or a new PostgreSQL database and Chroma collection on
    the servers (started on first use, so the embedded trials alone start neither)."""
    if request.param == "embedded":
        return load_settings(index_dir=tmp_path / "index", log_dir=tmp_path / "logs")
    name = "crash_" + re.sub(r"[^a-z0-9]+", "_", request.node.callspec.id.lower())
    return load_settings(index_dir=tmp_path / "index", log_dir=tmp_path / "logs", collection=name,
                         catalog_url=request.getfixturevalue("postgres_server").create_database(name),
                         chroma_url=request.getfixturevalue("crash_chroma_url"))


@pytest.mark.slow
@pytest.mark.parametrize("deployment, trial", CASES, indirect=["deployment"])
def test_killed_ingest_recovers_to_an_exact_index(deployment, trial, tmp_path, trial_log, capsys):
    embedder = HashEmbedder()
    settings = deployment
    folder = tmp_path / "decisions"
    make_corpus(folder)
    log = tmp_path / "ingest-stderr.txt"
    before = expected_chunks(folder)
    prune = trial.scenario == "prune"

    # The state the killed run starts from.
    if trial.scenario in ("update", "prune", "lost", "rebuild"):
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
        open_store(settings).delete(lost)
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
        flags = {"prune": ("--prune",), "rebuild": ("--rebuild",)}.get(trial.scenario, ())
        code, seconds = run_driver(folder, settings, log, trial.crash_at, flags)
        where = trial.crash_at
    else:
        delay = random.Random(trial.seed).uniform(0.02, 0.4)
        code, seconds = run_driver(folder, settings, log, kill_after=delay)
        where = f"+{delay:.2f} s after the first write"
    assert code == -signal.SIGKILL, f"not killed (exit {code}):\n{log.read_text()[-3000:]}"
    lock_wait = writer_lock_free_after(settings)  # the killed writer's lock did not outlive it

    # What the kill left: the catalog only ever holds whole decisions, in one of their versions.
    found = state_of(settings, embedder)
    for doc_id, ids in found["per_doc"].items():
        assert ids in valid_versions[doc_id], f"{doc_id} is half-written in the catalog"
    extra = found["chroma_ids"] - found["catalog_ids"]
    missing = found["catalog_ids"] - found["chroma_ids"]

    recovery = rerun(settings, folder, embedder, prune)
    line = (f"{trial_log_prefix(settings, trial)} {trial.label} [{where}] SIGKILL at {seconds:.1f} s, writer lock "
            f"free {lock_wait:.2f} s later: "
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
    if settings.catalog_url:  # it was all read from the servers: nothing went to a local catalog or Chroma folder
        assert not settings.catalog_path.exists() and not settings.chroma_path.exists()

    # And the index is settled: one more run changes nothing.
    settled = rerun(settings, folder, embedder, prune)
    assert (settled.unchanged, settled.chunks_written, settled.recovered) == (len(target), 0, {})


def trial_log_prefix(settings: Settings, trial: Trial | None = None) -> str:
    where = "servers " if settings.catalog_url else "embedded"
    return f"{where} trial {TRIALS.index(trial) + 1:2d}/{len(TRIALS)}:" if trial else f"{where} lock trial:"


@pytest.mark.slow
@pytest.mark.parametrize("deployment", ["embedded", "servers"], indirect=True)
def test_a_killed_writers_lock_dies_with_it(deployment, tmp_path, trial_log, capsys):
    """The ingest is stopped (SIGSTOP) just after taking the writer lock: another ingest is refused, and on
    PostgreSQL the advisory lock is seen held by the stopped ingest's session. Then SIGKILL: the lock goes with
    the process (its connection), and the next ingest runs to the end."""
    settings = deployment
    folder = tmp_path / "decisions"
    make_corpus(folder)
    log = tmp_path / "ingest-stderr.txt"
    proc = start_driver(folder, settings, log, "after-lock:1", CRASH_SIGNAL="SIGSTOP")
    try:
        _, status = os.waitpid(proc.pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status), log.read_text()[-3000:]
        with pytest.raises(IndexBusyError):
            open_index(settings, write=True, embedder=HashEmbedder())
        held_by = advisory_lock_holders(settings)
        if settings.catalog_url:
            assert len(held_by) == 1, held_by  # the stopped ingest's session, nobody else
        proc.kill()
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lock_wait = writer_lock_free_after(settings)
    assert advisory_lock_holders(settings) == []
    report = rerun(settings, folder, HashEmbedder(), prune=False)
    assert (report.added, report.failed, report.recovered) == (len(expected_chunks(folder)), 0, {})
    line = (f"{trial_log_prefix(settings)} stopped holding the writer lock{held_by_text(held_by)}: the next ingest "
            f"refused; SIGKILL: lock free {lock_wait:.2f} s later, the next ingest added {report.added} decisions")
    with capsys.disabled():
        print("\n" + line)
    with trial_log.open("a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def advisory_lock_holders(settings: Settings) -> list[int]:
    """Backend pids holding the PostgreSQL catalog's writer lock in its database (none without PostgreSQL)."""
    if not settings.catalog_url:
        return []
    import psycopg

    from ingest.catalog_pg import WRITER_LOCK_KEY

    with psycopg.connect(settings.catalog_url.get_secret_value(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = 0 AND objid = %s "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            (WRITER_LOCK_KEY,)).fetchall()
    return [r[0] for r in rows]


def held_by_text(pids: list[int]) -> str:
    return f" (PostgreSQL backend {pids[0]} holds the advisory lock)" if pids else " (the index folder's file lock)"
