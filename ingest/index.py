"""Incremental, idempotent, crash-safe ingestion into the catalog (SQLite) and the dense index (Chroma).

Write order per batch, so that a SIGKILL at any moment leaves something `reconcile` can repair:
  1. mark the index dirty (committed);
  2. upsert the new chunks' vectors into Chroma (ids are content hashes: repeating this is harmless);
  3. replace the decisions and chunks in the catalog in ONE SQLite transaction (the point of truth);
  4. delete the replaced chunks' vectors from Chroma.
A crash before 3 leaves extra vectors; after 3, stale vectors. `reconcile` deletes vectors the catalog
does not list and re-embeds catalog chunks Chroma lacks, so catalog and Chroma always end up agreeing.
"""

from __future__ import annotations

import fcntl
import logging
import os
import queue
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import ConfigError, IndexBusyError, IndexMismatchError, IndexStateError, ParseError
from core.settings import Settings
from core.types import Chunk, Decision
from ingest.catalog import Catalog, open_catalog
from ingest.chunk import Chunker
from ingest.embed import Embedder
from ingest.exact import SNAPSHOT_NAME
from ingest.parse import SUPPORTED_SUFFIXES, parse_file
from ingest.sentences import SENTENCE_VECTORS_KIND, SentenceStats, embed_chunks_and_sentences
from ingest.store import VectorStore, make_client

if TYPE_CHECKING:
    from ingest.catalog_pg import PgCatalog

log = logging.getLogger(__name__)


class IndexLock:
    """An advisory lock on the index folder: shared for readers, exclusive for writers."""

    def __init__(self, index_dir: Path, exclusive: bool):
        self.path = index_dir / ".lock"
        self.exclusive = exclusive
        self._fd: int | None = None

    def acquire(self) -> IndexLock:
        """Take the lock now or raise IndexBusyError saying what to do."""
        folder = self.path.parent
        if folder.exists() and not folder.is_dir():
            raise ConfigError(f"{folder} is a file, not an index folder: point --index-dir (or OMBUDS_INDEX_DIR) "
                              "at a folder.")
        if not self.exclusive and not folder.exists():  # a reader must not create an empty index folder
            raise IndexStateError(
                f"No index at {folder}: ingest decisions first (python -m ingest data/sample --index-dir {folder})."
            )
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:  # a file where the folder should be, no permission, no such parent
            raise ConfigError(
                f"The index folder {folder} cannot be used ({type(exc).__name__}: {exc.strerror or exc}): point "
                "--index-dir (or OMBUDS_INDEX_DIR) at a folder that can be created and written."
            ) from None
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if self.exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            what = "changed (an ingest is running)" if not self.exclusive else "in use by another process"
            raise IndexBusyError(
                f"The embedded index in {self.path.parent} is {what}. Wait for it to finish or stop it; to share "
                "one index between the app, ingests and evaluations at once, run Chroma as a server "
                "(make chroma) and set OMBUDS_CHROMA_URL=http://127.0.0.1:8000."
            ) from None
        self._fd = fd
        return self

    def upgrade(self) -> None:
        """Shared -> exclusive (for an ingest from inside the app)."""
        if self._fd is None:
            raise RuntimeError("lock not held")
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IndexBusyError(
                f"The index in {self.path.parent} is open in another process; cannot write to it now. "
                "Use the Chroma server mode (make chroma) to ingest while others read."
            ) from None

    def downgrade(self) -> None:
        """Exclusive -> shared."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_SH)

    def release(self) -> None:
        """Let go of the lock."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class Locks:
    """Several locks held and changed together: the index folder's (embedded Chroma) and the PostgreSQL
    catalog's advisory lock."""

    def __init__(self, locks: Sequence[object]):
        self.locks = list(locks)

    def upgrade(self) -> None:
        """Shared -> exclusive, all or none."""
        done = []
        try:
            for held in self.locks:
                held.upgrade()
                done.append(held)
        except BaseException:
            for held in reversed(done):
                held.downgrade()
            raise

    def downgrade(self) -> None:
        """Exclusive -> shared."""
        for held in reversed(self.locks):
            held.downgrade()

    def release(self) -> None:
        """Let go of every lock."""
        for held in reversed(self.locks):
            held.release()


def _take_locks(settings: Settings, write: bool) -> Locks | None:
    """The file lock while Chroma is embedded (or the SQLite catalog is written); the advisory lock of a
    PostgreSQL catalog (writers take it now, readers hold a connection to take it for an upload)."""
    locks: list[object] = []
    try:
        if not settings.chroma_url or (write and not settings.catalog_url):
            locks.append(IndexLock(settings.index_dir, exclusive=write).acquire())
        if settings.catalog_url:
            from ingest.catalog_pg import AdvisoryLock

            locks.append(AdvisoryLock(settings.catalog_url.get_secret_value(), exclusive=write).acquire())
    except BaseException:
        Locks(locks).release()
        raise
    return Locks(locks) if locks else None


@dataclass
class Index:
    """The opened index: catalog + vector store + embedder (+ the lock that guards them)."""

    catalog: Catalog | PgCatalog
    store: VectorStore
    embedder: Embedder
    settings: Settings
    lock: Locks | None = None

    @property
    def location(self) -> str:
        """Where the vectors live, for messages."""
        return self.store.location

    def close(self) -> None:
        """Release the lock and close the catalog."""
        self.catalog.close()
        if self.lock:
            self.lock.release()


def _wipe(settings: Settings) -> None:
    """Delete the collection (embedded folder or server collection), then empty the catalog (delete its files, or
    its PostgreSQL rows).

    Vectors first: a wipe killed halfway then leaves the old catalog and no vectors, which readers report as damaged
    and any re-run repairs (re-embedding what the catalog lists) or rebuilds. The other order left an empty catalog
    beside a server collection still marked as another catalog's (the catalog_id the emptied catalog no longer
    holds), and every later ingest without --rebuild was refused as a second catalog on that collection.
    """
    _drop_vectors(settings)
    _empty_catalog(settings)


def _empty_catalog(settings: Settings) -> None:
    """The second half of a wipe: the catalog's rows (PostgreSQL) or files (SQLite) go."""
    if settings.catalog_url:
        catalog = open_catalog(settings)
        try:
            catalog.clear()
        finally:
            catalog.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{settings.catalog_path}{suffix}").unlink(missing_ok=True)


def _drop_vectors(settings: Settings) -> None:
    """The first half of a wipe: the server collection, or the embedded Chroma folder, goes."""
    if settings.chroma_url:
        client = make_client(settings.chroma_path, settings.chroma_url)
        try:
            client.delete_collection(settings.collection)
        except Exception as exc:  # absent collection: nothing to delete
            log.debug("delete_collection: %s", exc)
    elif settings.chroma_path.exists():
        shutil.rmtree(settings.chroma_path)


def open_index(settings: Settings, *, write: bool = False, embedder: Embedder | None = None,
               create: bool | None = None, lock: bool = True, rebuild: bool = False) -> Index:
    """Open catalog and Chroma as configured. Writers get an exclusive lock on an embedded index.

    In server mode the vectors are shared through the server, so only writers lock the local catalog; a
    PostgreSQL catalog is locked for writers by an advisory lock in the database instead of a file.
    `rebuild` (writers only) first deletes the catalog and the collection, whatever state they are in.
    """
    create = write if create is None else create
    index_lock = None
    catalog = None
    if lock:
        index_lock = _take_locks(settings, write)
    try:
        if rebuild:
            if not write:
                raise ValueError("rebuild needs write=True")
            _wipe(settings)
        # A server is reached before the catalog is made, so a wrong or stopped server leaves no empty catalog.
        server = make_client(settings.chroma_path, settings.chroma_url) if settings.chroma_url else None
        catalog = open_catalog(settings, create=create)
        if not write and not settings.chroma_url and not settings.chroma_path.is_dir() and catalog.count_chunks():
            raise IndexStateError(_damaged(settings, catalog.count_chunks(), 0))
        client = server or make_client(settings.chroma_path, None)
        location = settings.chroma_url or str(settings.index_dir)
        store = VectorStore(client, settings.collection, settings.embedding_model, settings.contextual_headers,
                            location, create=True, exact=settings.exact_search, freshness=catalog.data_version,
                            members=catalog.chunk_ids, snapshot=settings.index_dir / SNAPSHOT_NAME)
        if settings.chroma_url:
            _pair_with_server_collection(catalog, store, settings, write)
        embedder = embedder or Embedder(settings.embedding_model, settings.embed_batch_size,
                                        settings.embedding_backend, cache_dir=settings.model_cache_dir)
        recorded = catalog.get_meta("embedding_model")
        if recorded and recorded != settings.embedding_model:
            raise IndexMismatchError(
                f"The catalog in {settings.index_dir} was built with embedding model {recorded!r}, not "
                f"{settings.embedding_model!r}. Set OMBUDS_EMBEDDING_MODEL={recorded!r} or rebuild: "
                f"python -m ingest --rebuild PATH... --index-dir {settings.index_dir}"
            )
        if not write:
            # Fewer vectors than catalog chunks is never a state a write passes through (vectors are written
            # first, deleted last): the Chroma data was lost or replaced, and dense search would silently miss.
            chunks, vectors = catalog.count_chunks(), store.count()
            if vectors < chunks:
                raise IndexStateError(_damaged(settings, chunks, vectors))
        return Index(catalog, store, embedder, settings, index_lock)
    except BaseException:
        if catalog is not None:
            catalog.close()
        if index_lock:
            index_lock.release()
        raise


def _damaged(settings: Settings, chunks: int, vectors: int) -> str:
    """The message for an index whose Chroma data lacks vectors the catalog lists."""
    where = f"the Chroma server {settings.chroma_url}" if settings.chroma_url else f"{settings.chroma_path}"
    target = (f"--chroma-url {settings.chroma_url} --index-dir {settings.index_dir}" if settings.chroma_url
              else f"--index-dir {settings.index_dir}")
    return (f"The index in {settings.index_dir} is damaged: its catalog lists {chunks} chunks but {where} holds "
            f"{vectors} vectors (missing, emptied or replaced). Repair it with python -m ingest PATH... {target} "
            f"(re-embeds what is missing), or rebuild it: python -m ingest --rebuild PATH... {target}")


def _pair_with_server_collection(catalog: Catalog | PgCatalog, store: VectorStore, settings: Settings,
                                 write: bool) -> None:
    """One catalog per server collection. Every catalog reconciles Chroma to itself, so a second catalog on
    the same collection (an evaluation's temporary index, another index folder) would delete the first one's
    vectors: refuse instead, saying how to give it a collection of its own."""
    owner = catalog.get_meta("catalog_id")
    if owner is None:
        if not write:
            return  # a catalog from before this check, opened to read: nothing to compare yet
        owner = uuid.uuid4().hex
        catalog.set_meta("catalog_id", owner)
    meta = store.collection.metadata or {}
    found = meta.get("catalog_id")
    if found == owner:
        return
    if found is None and write and (catalog.count_chunks() > 0 or store.count() == 0):
        store.set_metadata(catalog_id=owner, catalog_path=settings.catalog_label)
        return
    if found is None and not write:
        return
    elsewhere = meta.get("catalog_path") or "another index folder"
    raise IndexMismatchError(
        f"The collection {settings.collection!r} on the Chroma server {settings.chroma_url} belongs to the "
        f"catalog in {elsewhere}, not to {settings.catalog_label}"
        + ("" if found else f" (it holds {store.count()} vectors this empty catalog does not list)")
        + ". Writing here would delete its vectors. Point OMBUDS_INDEX_DIR (--index-dir) at that folder, or give "
        "this index its own collection: OMBUDS_COLLECTION=another_name (--collection)."
    )


@dataclass
class IngestReport:
    """What an ingest did; printed by the CLI (and as one JSON object with --json)."""

    files_seen: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicate: int = 0
    failed: int = 0
    pruned: int = 0
    replaced: int = 0  # decisions whose file now holds another case number (the old one is removed)
    chunks_written: int = 0
    chunks_deleted: int = 0
    seconds: float = 0.0
    chunks_per_second: float = 0.0
    failures: list[dict[str, str]] = field(default_factory=list)
    duplicates: list[dict[str, str]] = field(default_factory=list)
    no_case_number: list[dict[str, str]] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)
    recovered: dict[str, int] = field(default_factory=dict)
    sentences: SentenceStats = field(default_factory=SentenceStats)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return asdict(self)


def iter_decision_files(paths: Iterable[Path | str]) -> Iterator[tuple[Path, str | None]]:
    """(file, problem) for each candidate: directories walked recursively, hidden files skipped.

    A file named explicitly with an unsupported suffix is yielded with a problem; inside directories such
    files are skipped quietly (a folder of decisions often holds other things).
    """
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if name.startswith("."):
                        continue
                    candidate = Path(root) / name
                    if candidate.suffix.lower() in SUPPORTED_SUFFIXES:
                        yield candidate, None
        elif path.is_file():
            if path.suffix.lower() in SUPPORTED_SUFFIXES:
                yield path, None
            else:
                yield path, f"unsupported file type {path.suffix or '(none)'}: use .txt, .html, .htm or .md"
        else:
            yield path, "no such file or directory"


@dataclass
class _Parsed:
    path: Path
    decision: Decision | None
    chunks: list[Chunk]
    error: str | None


@dataclass
class _Run:
    """One ingest run's bookkeeping: the report, the batch waiting to be written, what this run has seen."""

    report: IngestReport
    pending: list[tuple[Decision, list[Chunk], list[str], str]] = field(default_factory=list)
    pending_chunks: int = 0
    seen_docs: dict[str, tuple[str, str]] = field(default_factory=dict)  # doc_id -> (content_hash, path)
    seen_hashes: dict[str, tuple[str, str]] = field(default_factory=dict)  # content_hash -> (doc_id, path)
    from_path: dict[str, str] = field(default_factory=dict)  # path -> the doc_id its file holds now (~100 B each)

    def note(self, d: Decision, path_str: str, doc_id: str | None = None) -> None:
        """Warnings only for decisions indexed, not for duplicates skipped ("indexed as" would be untrue)."""
        doc_id = doc_id or d.doc_id
        for w in d.warnings:
            self.report.warnings.append({"path": path_str, "doc_id": doc_id, "warning": w})
        if d.case_number is None:
            self.report.no_case_number.append({"path": path_str, "doc_id": doc_id})

    def duplicate(self, path_str: str, of: str, doc_id: str) -> None:
        self.report.duplicate += 1
        self.report.duplicates.append({"path": path_str, "duplicate_of": of, "doc_id": doc_id})

    def seen_before(self, d: Decision, path_str: str) -> bool:
        """Whether this run already read the decision (same case number, or the same content under another file
        name: its doc_id, taken from the file name when there is no case number, differs); records it if not."""
        if d.doc_id in self.seen_docs:
            first_hash, first_path = self.seen_docs[d.doc_id]
            if first_hash == d.content_hash:
                self.duplicate(path_str, first_path, d.doc_id)
            else:
                self.report.failed += 1
                self.report.failures.append({"path": path_str, "reason": (
                    f"case {d.label} is also in {first_path} with different content; kept that one — "
                    "remove or rename one of them")})
            return True
        if d.content_hash in self.seen_hashes:
            first_id, first_path = self.seen_hashes[d.content_hash]
            self.duplicate(path_str, first_path, first_id)
            return True
        self.seen_docs[d.doc_id] = (d.content_hash, path_str)
        self.seen_hashes[d.content_hash] = (d.doc_id, path_str)
        self.from_path[path_str] = d.doc_id
        return False


class Indexer:
    """Ingests decision files into an opened Index."""

    def __init__(self, index: Index, chunker: Chunker | None = None, allow_fictional: bool = True,
                 batch_chunks: int = 256):
        self.index = index
        s = index.settings
        self.chunker = chunker or Chunker(s.chunk_target_tokens, s.chunk_max_tokens, s.token_encoding)
        self.allow_fictional = allow_fictional
        self.batch_chunks = batch_chunks
        self.max_bytes = s.max_file_bytes

    # recovery ------------------------------------------------------------------------------------
    def needs_reconcile(self) -> bool:
        """True when the last run did not finish cleanly or the two stores disagree in size."""
        catalog, store = self.index.catalog, self.index.store
        return catalog.get_meta("dirty") == "1" or catalog.count_chunks() != store.count()

    def reconcile(self) -> dict[str, int]:
        """Make Chroma hold exactly the catalog's chunks: delete extras, re-embed missing ones."""
        catalog, store = self.index.catalog, self.index.store
        wanted = catalog.chunk_ids()
        present = set(store.ids())
        extra = sorted(present - wanted)
        missing = wanted - present
        if extra:
            log.warning("removing %d vectors the catalog does not list (left by an interrupted run)", len(extra))
            store.delete(extra)
        if missing:
            log.warning("re-embedding %d catalog chunks missing from Chroma", len(missing))
            chunks = list(catalog.get_chunks(sorted(missing)).values())
            for start in range(0, len(chunks), self.batch_chunks):
                part = chunks[start:start + self.batch_chunks]
                vectors = self.index.embedder.embed([c.embedding_text(store.contextual_headers) for c in part])
                store.check_dimension(vectors.shape[1])
                store.upsert(part, vectors)
        catalog.set_meta("dirty", "0")
        return {"extra_vectors_deleted": len(extra), "missing_vectors_restored": len(missing)}

    # parsing (overlapped with embedding) ---------------------------------------------------------
    def _parse(self, path: Path) -> _Parsed:
        try:
            # Absolute, as the run compares it: a relative path would not match on the next run (5 unchanged
            # files reported as duplicates) and --prune would depend on the working directory.
            decision = parse_file(path.resolve(), self.max_bytes)
        except ParseError as exc:
            return _Parsed(path, None, [], str(exc))
        except Exception as exc:  # a parser bug must not stop the whole ingest; the file is listed as failed
            log.exception("unexpected error parsing %s", path)
            return _Parsed(path, None, [], f"unexpected parser error: {type(exc).__name__}: {exc}")
        if decision.fictional and not self.allow_fictional:
            return _Parsed(path, None, [], "marked FICTIONAL — evaluation only (or SYNTHETIC — benchmark only): "
                                           "not ingested into the default index (use --index-dir for an "
                                           "evaluation index)")
        return _Parsed(path, decision, self.chunker.chunk(decision), None)

    def _parsed_stream(self, files: list[tuple[Path, str | None]]) -> Iterator[_Parsed]:
        """Parse in a background thread so that parsing overlaps with embedding."""
        q: queue.Queue[_Parsed | None] = queue.Queue(maxsize=64)
        stop = threading.Event()

        def produce() -> None:
            try:
                for path, problem in files:
                    if stop.is_set():
                        return
                    q.put(_Parsed(path, None, [], problem) if problem else self._parse(path))
            finally:
                q.put(None)

        worker = threading.Thread(target=produce, name="ingest-parse", daemon=True)
        worker.start()
        try:
            while (item := q.get()) is not None:
                yield item
        finally:
            stop.set()
            while worker.is_alive():
                try:
                    q.get_nowait()
                except queue.Empty:
                    worker.join(0.05)

    # the run ------------------------------------------------------------------------------------
    def ingest(self, paths: Sequence[Path | str], prune: bool = False,
               progress: Callable[[int, int], None] | None = None, show_bar: bool = False) -> IngestReport:
        """Ingest files/directories; returns the report. Bad files are listed, the rest still ingested."""
        started = time.perf_counter()
        run = _Run(IngestReport())
        catalog = self.index.catalog
        run_id = catalog.start_run()
        if self.needs_reconcile():
            run.report.recovered = self.reconcile()
        files = list(iter_decision_files(paths))
        run.report.files_seen = len(files)
        bar = None
        if show_bar:
            from tqdm import tqdm

            bar = tqdm(total=len(files), unit="file", desc="ingest", leave=False)
        for done, parsed in enumerate(self._parsed_stream(files), start=1):
            if bar:
                bar.update(1)
            if progress:
                progress(done, len(files))
            self._take(run, parsed)
            if run.pending_chunks >= self.batch_chunks:
                self._flush(run)
        self._flush(run)
        if bar:
            bar.close()
        self._remove_gone(run, prune)
        self._record_meta(run.report)
        report = run.report
        report.seconds = round(time.perf_counter() - started, 3)
        report.chunks_per_second = round(report.chunks_written / report.seconds, 2) if report.seconds else 0.0
        catalog.finish_run(run_id, {k: v for k, v in report.to_dict().items() if not isinstance(v, list)})
        self.index.store.save_snapshot()
        return report

    def _flush(self, run: _Run) -> None:
        if run.pending:
            self._write(run.pending, run.report)
        run.pending, run.pending_chunks = [], 0

    def _take(self, run: _Run, parsed: _Parsed) -> None:
        """One parsed file: a failure, a duplicate, unchanged, or a decision to (re)index."""
        report, path_str = run.report, str(parsed.path.resolve())
        if parsed.error or parsed.decision is None:
            report.failed += 1
            report.failures.append({"path": path_str, "reason": parsed.error or "unknown"})
            return
        d = parsed.decision
        if run.seen_before(d, path_str):
            return
        state = self.index.catalog.state(d.doc_id)
        # Indexed before ingest stored sentence vectors: re-indexed (as "updated") to add them.
        if state and state.content_hash == d.content_hash and state.has_sentence_vectors:
            if state.source_path != path_str:
                if Path(state.source_path).exists():
                    run.duplicate(path_str, state.source_path, d.doc_id)
                    return
                self.index.catalog.update_source(d.doc_id, path_str)
            run.note(d, path_str)
            report.unchanged += 1
            return
        if self._same_content_elsewhere(run, d, path_str):
            return
        run.note(d, path_str)
        run.pending.append((d, parsed.chunks, list(state.chunk_ids) if state else [], "updated" if state else "added"))
        run.pending_chunks += len(parsed.chunks)

    def _same_content_elsewhere(self, run: _Run, d: Decision, path_str: str) -> bool:
        """Whether the catalog holds this content under another id: the same file renamed or moved (it keeps its
        id; calling it a duplicate of a file that is gone would let --prune drop the content), or a duplicate."""
        same = self.index.catalog.doc_with_hash(d.content_hash)
        if not same or same.doc_id == d.doc_id:
            return False
        if same.source_path == path_str or not Path(same.source_path).exists():
            if same.source_path != path_str:
                self.index.catalog.update_source(same.doc_id, path_str)
            run.from_path[path_str] = same.doc_id
            run.note(d, path_str, same.doc_id)
            run.report.unchanged += 1
        else:
            run.duplicate(path_str, same.source_path, same.doc_id)
        return True

    def _remove_gone(self, run: _Run, prune: bool) -> None:
        """A file edited to hold another case number: the decision it used to hold is no longer in any file read
        here (unless another file was skipped as its duplicate, which keeps it). With prune, decisions whose
        file is gone too."""
        catalog, report = self.index.catalog, run.report
        kept = {item["doc_id"] for item in report.duplicates}
        replaced = [doc_id for doc_id, source in catalog.all_sources()
                    if source in run.from_path and run.from_path[source] != doc_id and doc_id not in kept]
        report.replaced = len(replaced)
        report.chunks_deleted += self._remove(replaced)
        if prune:
            gone = [doc_id for doc_id, source in catalog.all_sources() if not Path(source).exists()]
            report.pruned = len(gone)
            report.chunks_deleted += self._remove(gone)

    def _record_meta(self, report: IngestReport) -> None:
        catalog = self.index.catalog
        catalog.set_meta("embedding_model", self.index.settings.embedding_model)
        catalog.set_meta("contextual_headers", str(self.index.settings.contextual_headers))
        if report.chunks_written:  # which encoder wrote the vectors, on which CPU (vectors differ a little by both)
            from ingest.cpu import cpu_info

            catalog.set_meta("sentence_vectors", SENTENCE_VECTORS_KIND)
            catalog.set_meta("embedding_backend", str(getattr(self.index.embedder, "backend", "unknown")))
            catalog.set_meta("ingest_cpu", cpu_info().describe())
        catalog.set_meta("dirty", "0")

    def _remove(self, doc_ids: list[str]) -> int:
        """Delete decisions from the catalog, then their vectors (marked dirty meanwhile, for a crash); chunks
        deleted."""
        if not doc_ids:
            return 0
        self.index.catalog.set_meta("dirty", "1")
        removed = self.index.catalog.delete_decisions(doc_ids)
        self.index.store.delete(removed)
        return len(removed)

    def _write(self, items: list[tuple[Decision, list[Chunk], list[str], str]], report: IngestReport) -> None:
        catalog, store = self.index.catalog, self.index.store
        chunks = [c for _, cs, _, _ in items for c in cs]
        vectors, sentences, stats = embed_chunks_and_sentences(
            self.index.embedder, [(d, cs) for d, cs, _, _ in items], store.contextual_headers)
        store.check_dimension(vectors.shape[1])
        catalog.set_meta("dirty", "1")
        store.upsert(chunks, vectors)
        catalog.replace_decisions([(d, cs) for d, cs, _, _ in items], sentences)
        report.sentences.add(stats)
        new_ids = {c.chunk_id for c in chunks}
        stale = [i for _, _, old, _ in items for i in old if i not in new_ids]
        if stale:
            store.delete(stale)
            report.chunks_deleted += len(stale)
        report.chunks_written += len(chunks)
        for _, _, _, kind in items:
            if kind == "added":
                report.added += 1
            else:
                report.updated += 1


