"""The SQLite catalog: the source of truth for what is indexed.

One row per decision (all metadata, content hash, source path, when ingested), one row per chunk, an FTS5
index over chunk headers and texts for lexical (BM25) retrieval, and one row of sentence vectors per decision
(ingest/sentences.py).
"""

from __future__ import annotations

import datetime as dt
import functools
import inspect
import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.errors import IndexBusyError, IndexStateError
from core.text import (
    category_path,
    query_terms,  # noqa: F401  (re-exported for callers)
    stem,
)
from core.types import Chunk, Decision, Filters
from ingest.sentences import SentenceVectors

if TYPE_CHECKING:
    from core.settings import Settings
    from ingest.catalog_pg import PgCatalog

log = logging.getLogger(__name__)

SCHEMA_VERSION = "1"

# A BM25 OR-query over words nearly every chunk contains scores nearly every row: 600 ms at 100 000 chunks
# (bench/NOTES.md). When the query's terms have more postings than this, its commonest terms (each in more
# than LEXICAL_COMMON_SHARE of the chunks, so with a BM25 weight near zero) are left out of the MATCH, the
# commonest first, never the last one. Small indexes (the gold set's) never reach the budget.
LEXICAL_POSTINGS_BUDGET = 20_000
LEXICAL_COMMON_SHARE = 0.05

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS decisions (
    doc_id TEXT PRIMARY KEY,
    case_number TEXT,
    authority TEXT,
    category TEXT,
    subcategory TEXT,
    outcome TEXT,
    decision_date TEXT,
    date_int INTEGER,
    summary TEXT,
    url TEXT,
    source_path TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    fictional INTEGER NOT NULL DEFAULT 0,
    n_chunks INTEGER NOT NULL,
    ingested_at TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_hash ON decisions(content_hash);
CREATE INDEX IF NOT EXISTS decisions_case ON decisions(case_number);
CREATE INDEX IF NOT EXISTS decisions_source ON decisions(source_path);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    chunk_id TEXT NOT NULL UNIQUE,
    doc_id TEXT NOT NULL REFERENCES decisions(doc_id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    section TEXT NOT NULL,
    paragraphs TEXT NOT NULL,
    header TEXT NOT NULL,
    text TEXT NOT NULL,
    meta TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id, position);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    header, text, content='chunks', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2'
);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_vocab USING fts5vocab(chunks_fts, 'row');
CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts(rowid, header, text) VALUES (new.id, new.header, new.text);
END;
CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, header, text) VALUES ('delete', old.id, old.header, old.text);
END;
CREATE TABLE IF NOT EXISTS sentence_vectors (
    doc_id TEXT PRIMARY KEY REFERENCES decisions(doc_id) ON DELETE CASCADE,
    items TEXT NOT NULL,
    dim INTEGER NOT NULL,
    vectors BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL,
    summary TEXT
);
"""

@dataclass(frozen=True, slots=True)
class DecisionState:
    """What the catalog knows about a decision, enough to decide whether to re-index it."""

    doc_id: str
    content_hash: str
    source_path: str
    chunk_ids: tuple[str, ...]
    has_sentence_vectors: bool = True


@dataclass(frozen=True, slots=True)
class CatalogStats:
    """Counts for the index status panel and the CLI."""

    decisions: int
    chunks: int
    last_ingest: str | None
    embedding_model: str | None


class Catalog:
    """SQLite catalog of decisions and chunks, with an FTS5 lexical index. Thread-safe (one lock)."""

    def __init__(self, path: Path | str, create: bool = True):
        self.path = Path(path)
        if not create and not self.path.exists():
            raise IndexStateError(
                f"No index catalog at {self.path}: ingest decisions first (python -m ingest data/sample "
                f"--index-dir {self.path.parent})."
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._stats_cache: dict[str, Any] = {"df": {}}
        self._stats_generation: tuple[int, int] | None = None
        try:
            self._conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30)
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.executescript(_SCHEMA)
            version = self.get_meta("schema_version")
            if version is None:
                self.set_meta("schema_version", SCHEMA_VERSION)
            elif version != SCHEMA_VERSION:
                raise IndexStateError(
                    f"The catalog {self.path} has schema version {version}, this program needs "
                    f"{SCHEMA_VERSION}: rebuild it with python -m ingest --rebuild PATH... --index-dir {self.path.parent}"
                )
            self._conn.execute("SELECT count(*) FROM chunks_fts").fetchone()
        except sqlite3.DatabaseError as exc:
            raise IndexStateError(
                f"The catalog {self.path} is unreadable or corrupt ({exc}). Rebuild the index: "
                f"python -m ingest --rebuild PATH... --index-dir {self.path.parent}"
            ) from None

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    # meta ----------------------------------------------------------------------------------------
    def data_version(self) -> int:
        """Changes whenever another connection (another process, or another Catalog) commits to the file."""
        with self._lock:
            return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def get_meta(self, key: str) -> str | None:
        """A value from the meta table."""
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        """Set a value in the meta table (committed at once)."""
        with self._lock:
            self._conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    # reads ---------------------------------------------------------------------------------------
    def state(self, doc_id: str) -> DecisionState | None:
        """Content hash, source path and chunk ids of a decision, if indexed."""
        with self._lock:
            row = self._conn.execute(
                "SELECT doc_id, content_hash, source_path, "
                "EXISTS(SELECT 1 FROM sentence_vectors s WHERE s.doc_id = d.doc_id) AS vectors "
                "FROM decisions d WHERE doc_id=?", (doc_id,)
            ).fetchone()
            if row is None:
                return None
            ids = tuple(r[0] for r in self._conn.execute(
                "SELECT chunk_id FROM chunks WHERE doc_id=? ORDER BY position", (doc_id,)))
        return DecisionState(row["doc_id"], row["content_hash"], row["source_path"], ids, bool(row["vectors"]))

    def doc_with_hash(self, content_hash: str) -> DecisionState | None:
        """The decision that already has this exact content, if any."""
        with self._lock:
            row = self._conn.execute("SELECT doc_id FROM decisions WHERE content_hash=?", (content_hash,)).fetchone()
        return self.state(row[0]) if row else None

    def all_sources(self) -> list[tuple[str, str]]:
        """(doc_id, source_path) of every decision."""
        with self._lock:
            return [(r[0], r[1]) for r in self._conn.execute("SELECT doc_id, source_path FROM decisions")]

    def chunk_ids(self) -> set[str]:
        """Every chunk id in the catalog."""
        with self._lock:
            return {r[0] for r in self._conn.execute("SELECT chunk_id FROM chunks")}

    def _stats(self) -> dict[str, Any]:
        """Counts cached until the database changes: data_version moves on another connection's commit,
        total_changes on this one's writes. Call with the lock held."""
        generation = (self._conn.execute("PRAGMA data_version").fetchone()[0], self._conn.total_changes)
        if generation != self._stats_generation or len(self._stats_cache["df"]) > 100_000:
            self._stats_cache = {"df": {}}
            self._stats_generation = generation
        return self._stats_cache

    def count_chunks(self) -> int:
        """Number of chunks (cached: count(*) reads the whole table, 1-10 ms at 100 000 chunks)."""
        with self._lock:
            stats = self._stats()
            if "chunks" not in stats:
                stats["chunks"] = self._conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
            return stats["chunks"]

    def count_decisions(self) -> int:
        """Number of decisions."""
        with self._lock:
            return self._conn.execute("SELECT count(*) FROM decisions").fetchone()[0]

    def stats(self) -> CatalogStats:
        """Counts, last finished ingest and the embedding model."""
        with self._lock:
            last = self._conn.execute(
                "SELECT finished_at FROM runs WHERE status='done' ORDER BY id DESC LIMIT 1").fetchone()
        return CatalogStats(self.count_decisions(), self.count_chunks(), last[0] if last else None,
                            self.get_meta("embedding_model"))

    def _row_to_chunk(self, row: sqlite3.Row) -> Chunk:
        meta = json.loads(row["meta"])
        return Chunk(
            chunk_id=row["chunk_id"], doc_id=row["doc_id"], case_number=meta.get("case_number"),
            section=row["section"], paragraphs=tuple(json.loads(row["paragraphs"])), text=row["text"],
            header=row["header"], position=row["position"], metadata=meta,
        )

    def get_chunks(self, chunk_ids: Sequence[str]) -> dict[str, Chunk]:
        """Chunks by id (missing ids are simply absent)."""
        out: dict[str, Chunk] = {}
        with self._lock:
            for start in range(0, len(chunk_ids), 500):
                part = list(chunk_ids[start:start + 500])
                marks = ",".join("?" * len(part))
                for row in self._conn.execute(f"SELECT * FROM chunks WHERE chunk_id IN ({marks})", part):
                    out[row["chunk_id"]] = self._row_to_chunk(row)
        return out

    def chunks_of(self, doc_id: str) -> list[Chunk]:
        """All chunks of one decision in page order."""
        with self._lock:
            rows = self._conn.execute("SELECT * FROM chunks WHERE doc_id=? ORDER BY position", (doc_id,)).fetchall()
        return [self._row_to_chunk(r) for r in rows]

    def iter_chunks(self, batch: int = 1000) -> Iterator[Chunk]:
        """Every chunk, in rowid order, without holding them all in memory."""
        last = 0
        while True:
            with self._lock:
                rows = self._conn.execute("SELECT * FROM chunks WHERE id > ? ORDER BY id LIMIT ?",
                                          (last, batch)).fetchall()
            if not rows:
                return
            for row in rows:
                yield self._row_to_chunk(row)
            last = rows[-1]["id"]

    def decisions(self, doc_ids: Iterable[str]) -> dict[str, Decision]:
        """Full decisions by document id."""
        ids = list(dict.fromkeys(doc_ids))
        out: dict[str, Decision] = {}
        with self._lock:
            for start in range(0, len(ids), 500):
                part = ids[start:start + 500]
                marks = ",".join("?" * len(part))
                for row in self._conn.execute(f"SELECT doc_id, data FROM decisions WHERE doc_id IN ({marks})", part):
                    out[row[0]] = Decision.from_dict(json.loads(row[1]))
        return out

    def docs_by_case_number(self, case_numbers: Iterable[str]) -> list[str]:
        """Document ids of decisions with these case numbers (or document ids), in the order asked."""
        found: list[str] = []
        with self._lock:
            for case in case_numbers:
                for row in self._conn.execute(
                        "SELECT doc_id FROM decisions WHERE case_number=? OR doc_id=? ORDER BY doc_id", (case, case)):
                    if row[0] not in found:
                        found.append(row[0])
        return found

    def a_case_number(self) -> str | None:
        """Any one case number the index holds (for warming up a lookup), or None."""
        with self._lock:
            row = self._conn.execute(
                "SELECT case_number FROM decisions WHERE case_number IS NOT NULL LIMIT 1").fetchone()
        return row[0] if row else None

    def distinct(self, column: str) -> list[str]:
        """Distinct non-empty values of authority, category or outcome (for filter choices)."""
        if column not in {"authority", "category", "outcome", "subcategory"}:
            raise ValueError(f"not a filterable column: {column}")
        with self._lock:
            rows = self._conn.execute(
                f"SELECT DISTINCT {column} FROM decisions WHERE {column} IS NOT NULL AND {column} != '' "
                f"ORDER BY {column}").fetchall()
        return [r[0] for r in rows]

    def category_paths(self) -> list[str]:
        """Every category the index holds, and each of its subcategories as "Category > Subcategory"."""
        with self._lock:
            rows = self._conn.execute(CATEGORY_ROWS).fetchall()
        return category_paths(rows)

    def date_range(self) -> tuple[str | None, str | None]:
        """Earliest and latest decision dates (ISO)."""
        with self._lock:
            row = self._conn.execute("SELECT min(decision_date), max(decision_date) FROM decisions").fetchone()
        return row[0], row[1]

    def filter_sql(self, filters: Filters, alias: str = "d") -> tuple[str, list[Any]]:
        """SQL condition on the decisions table for these filters (case-insensitive names)."""
        return filter_sql(filters, alias, "?")

    def count_matching(self, filters: Filters) -> int:
        """How many decisions these filters allow."""
        where, params = self.filter_sql(filters)
        with self._lock:
            return self._conn.execute(f"SELECT count(*) FROM decisions d WHERE {where}", params).fetchone()[0]

    def doc_ids_matching(self, filters: Filters, limit: int | None = None) -> list[str]:
        """Document ids these filters allow, the newest decisions first (undated last), at most `limit`."""
        where, params = self.filter_sql(filters)
        sql, params = limited(f"SELECT doc_id FROM decisions d WHERE {where} {NEWEST_FIRST}", params, limit, "?")
        with self._lock:
            return [r[0] for r in self._conn.execute(sql, params)]

    def document_frequency(self, terms: Sequence[str]) -> dict[str, int]:
        """How many chunks contain each (stemmed) term, from the FTS5 vocabulary (absent terms are left out).

        Cached until the catalog changes: fts5vocab counts by reading the term's whole posting list, about
        10 ms for a word in every chunk of 100 000 (bench/NOTES.md), and every question asks for its words.
        """
        if not terms:
            return {}
        with self._lock:
            cache = self._stats()["df"]
            missing = [t for t in dict.fromkeys(terms) if t not in cache]
            if missing:
                marks = ",".join("?" * len(missing))
                found = {r[0]: r[1] for r in self._conn.execute(
                    f"SELECT term, doc FROM chunks_vocab WHERE term IN ({marks})", missing)}
                for t in missing:
                    cache[t] = found.get(t, 0)
            return {t: cache[t] for t in terms if cache[t]}

    def term_counts(self) -> dict[str, int]:
        """Every indexed stem and how many chunks contain it (the FTS5 vocabulary)."""
        with self._lock:
            return {r[0]: int(r[1]) for r in self._conn.execute("SELECT term, doc FROM chunks_vocab")}

    def _prune_common_terms(self, terms: Sequence[str]) -> list[str]:
        """Leave the commonest words out of a large OR-query (see LEXICAL_POSTINGS_BUDGET)."""
        return prune_common_terms(terms, self.document_frequency, self.count_chunks)

    def lexical_search(self, terms: Sequence[str], limit: int, filters: Filters | None = None,
                       header_weight: float = 0.5) -> list[tuple[str, float]]:
        """BM25 over chunk header and text: [(chunk_id, score)] best first; score is -bm25 (higher is better)."""
        if not terms:
            return []
        terms = self._prune_common_terms(terms)
        match = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
        where, params = self.filter_sql(filters or Filters())
        if filters and filters.active:
            sql = ("SELECT c.chunk_id, bm25(chunks_fts, ?, 1.0) AS s FROM chunks_fts "
                   "JOIN chunks c ON c.id = chunks_fts.rowid JOIN decisions d ON d.doc_id = c.doc_id "
                   f"WHERE chunks_fts MATCH ? AND {where} ORDER BY s LIMIT ?")
        else:
            # Rank inside FTS5 first and join only the top rows: joining every match before the LIMIT
            # cost half the time of a common-word query (457 -> 243 ms at 100 000 chunks, bench/NOTES.md).
            sql = ("SELECT c.chunk_id, f.s FROM (SELECT rowid AS id, bm25(chunks_fts, ?, 1.0) AS s FROM chunks_fts "
                   "WHERE chunks_fts MATCH ? ORDER BY s LIMIT ?) f JOIN chunks c ON c.id = f.id ORDER BY f.s")
        args: list[Any] = [header_weight, match]
        if filters and filters.active:
            args.extend(params)
        args.append(limit)
        with self._lock:
            try:
                rows = self._conn.execute(sql, args).fetchall()
            except sqlite3.OperationalError as exc:
                log.warning("lexical search failed for %r: %s", match, exc)
                return []
        return [(r[0], -float(r[1])) for r in rows]

    def sentence_vectors(self, doc_ids: Iterable[str]) -> dict[str, SentenceVectors]:
        """The stored sentence vectors of these decisions (those ingested before they existed have none)."""
        ids = list(dict.fromkeys(doc_ids))
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        with self._lock:
            rows = self._conn.execute(
                f"SELECT doc_id, items, dim, vectors FROM sentence_vectors WHERE doc_id IN ({marks})", ids).fetchall()
        out: dict[str, SentenceVectors] = {}
        for row in rows:
            items = tuple((int(n), str(t)) for n, t in json.loads(row["items"]))
            matrix = np.frombuffer(row["vectors"], dtype="<f2")
            if matrix.size != len(items) * int(row["dim"]):  # damaged row: the evidence check embeds instead
                log.warning("sentence vectors of %s are damaged (%d values for %d sentences); ignoring them",
                            row["doc_id"], matrix.size, len(items))
                continue
            out[row["doc_id"]] = SentenceVectors(row["doc_id"], items, matrix.reshape(len(items), int(row["dim"])))
        return out

    def count_sentence_vectors(self) -> int:
        """Decisions with stored sentence vectors."""
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM sentence_vectors").fetchone()[0])

    # writes --------------------------------------------------------------------------------------
    def replace_decisions(self, items: Sequence[tuple[Decision, Sequence[Chunk]]],
                          sentences: Mapping[str, SentenceVectors] | None = None) -> None:
        """Insert or replace decisions, all their chunks and their sentence vectors in one transaction."""
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                for decision, chunks in items:
                    cur.execute("DELETE FROM chunks WHERE doc_id=?", (decision.doc_id,))
                    cur.execute("DELETE FROM decisions WHERE doc_id=?", (decision.doc_id,))
                    d = decision
                    cur.execute(
                        "INSERT INTO decisions(doc_id, case_number, authority, category, subcategory, outcome, "
                        "decision_date, date_int, summary, url, source_path, content_hash, fictional, n_chunks, "
                        "ingested_at, data) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (d.doc_id, d.case_number, d.authority, d.category, d.subcategory, d.outcome,
                         d.decision_date.isoformat() if d.decision_date else None,
                         int(d.decision_date.strftime("%Y%m%d")) if d.decision_date else None,
                         d.summary, d.url, d.source_path, d.content_hash, int(d.fictional), len(chunks), now,
                         json.dumps(d.to_dict(), ensure_ascii=False)),
                    )
                    cur.executemany(
                        "INSERT INTO chunks(chunk_id, doc_id, position, section, paragraphs, header, text, meta) "
                        "VALUES (?,?,?,?,?,?,?,?)",
                        [(c.chunk_id, c.doc_id, c.position, c.section, json.dumps(list(c.paragraphs)), c.header,
                          c.text, json.dumps(c.metadata, ensure_ascii=False)) for c in chunks],
                    )
                    if sentences and (sv := sentences.get(decision.doc_id)) is not None:
                        matrix = np.ascontiguousarray(sv.vectors, dtype="<f2")
                        cur.execute("INSERT INTO sentence_vectors(doc_id, items, dim, vectors) VALUES (?,?,?,?)",
                                    (d.doc_id, json.dumps(sv.items, ensure_ascii=False), int(matrix.shape[1]),
                                     matrix.tobytes()))
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise

    def update_source(self, doc_id: str, source_path: str) -> None:
        """Record that a decision's file moved (content unchanged)."""
        with self._lock:
            self._conn.execute("UPDATE decisions SET source_path=? WHERE doc_id=?", (source_path, doc_id))

    def delete_decisions(self, doc_ids: Sequence[str]) -> list[str]:
        """Remove decisions and their chunks in one transaction; returns the chunk ids removed."""
        removed: list[str] = []
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                for doc_id in doc_ids:
                    removed.extend(r[0] for r in cur.execute("SELECT chunk_id FROM chunks WHERE doc_id=?", (doc_id,)))
                    cur.execute("DELETE FROM chunks WHERE doc_id=?", (doc_id,))
                    cur.execute("DELETE FROM decisions WHERE doc_id=?", (doc_id,))
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        return removed

    def start_run(self) -> int:
        """Record the start of an ingest run."""
        with self._lock:
            cur = self._conn.execute(
                "INSERT INTO runs(started_at, status) VALUES (?, 'running')",
                (dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),))
            return int(cur.lastrowid or 0)

    def finish_run(self, run_id: int, summary: dict[str, Any]) -> None:
        """Record the end of an ingest run with its summary."""
        with self._lock:
            self._conn.execute(
                "UPDATE runs SET finished_at=?, status='done', summary=? WHERE id=?",
                (dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), json.dumps(summary), run_id))

    def optimize(self) -> None:
        """Nothing to do for SQLite (FTS5 keeps its own index); PgCatalog vacuums here. The same interface."""

    def clear(self) -> None:
        """Remove every decision and chunk (used by --rebuild)."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute("DELETE FROM chunks")
            self._conn.execute("DELETE FROM decisions")
            self._conn.execute("DELETE FROM meta WHERE key != 'schema_version'")
            self._conn.execute("COMMIT")



# Newest decisions first, undated ones last, ties by document id: the same order in SQLite and PostgreSQL.
NEWEST_FIRST = "ORDER BY d.decision_date IS NULL, d.decision_date DESC, d.doc_id"


CATEGORY_ROWS = "SELECT DISTINCT category, subcategory FROM decisions WHERE category IS NOT NULL AND category != ''"


def category_paths(rows: Iterable[Sequence[Any]]) -> list[str]:
    """(category, subcategory) rows -> each category and each "Category > Subcategory", sorted, once each."""
    out = {category_path(c) for c, _ in rows} | {category_path(c, s) for c, s in rows if s}
    return sorted(out)


def limited(sql: str, params: list[Any], limit: int | None, mark: str) -> tuple[str, list[Any]]:
    """The query with `LIMIT limit` added when a limit is given (`mark`: the driver's placeholder)."""
    return (f"{sql} LIMIT {mark}", [*params, limit]) if limit is not None else (sql, params)


def filter_sql(filters: Filters, alias: str = "d", mark: str = "?") -> tuple[str, list[Any]]:
    """SQL condition on the decisions table for these filters (case-insensitive names); `mark` is the driver's
    placeholder (? for sqlite3, %s for psycopg)."""
    clauses: list[str] = []
    params: list[Any] = []
    for name in ("authority", "outcome"):
        value = getattr(filters, name)
        if value:
            clauses.append(f"lower({alias}.{name}) = lower({mark})")
            params.append(value)
    if filters.category:
        clauses.append(f"(lower({alias}.category) = lower({mark}) OR lower({alias}.category || ' > ' || "
                       f"coalesce({alias}.subcategory, '')) = lower({mark}))")
        params.extend([filters.category, filters.category])
    if filters.since:
        clauses.append(f"{alias}.date_int >= {mark}")
        params.append(int(filters.since.strftime("%Y%m%d")))
    if filters.until:
        clauses.append(f"{alias}.date_int <= {mark}")
        params.append(int(filters.until.strftime("%Y%m%d")))
    return (" AND ".join(clauses) or "1=1"), params


def prune_common_terms(terms: Sequence[str], document_frequency: Callable[[list[str]], Mapping[str, int]],
                       count_chunks: Callable[[], int]) -> list[str]:
    """Leave the commonest words out of a large OR-query (see LEXICAL_POSTINGS_BUDGET)."""
    stems = {t: stem(t) for t in terms}
    df = document_frequency(list(dict.fromkeys(stems.values())))
    total = sum(df.get(s, 0) for s in set(stems.values()))
    if total <= LEXICAL_POSTINGS_BUDGET or len(terms) < 2:
        return list(terms)
    common = LEXICAL_COMMON_SHARE * count_chunks()
    dropped: set[str] = set()
    for t in sorted(terms, key=lambda t: -df.get(stems[t], 0)):
        n = df.get(stems[t], 0)
        if total <= LEXICAL_POSTINGS_BUDGET or len(terms) - len(dropped) <= 1 or n <= common:
            break
        dropped.add(t)
        total -= n
    return [t for t in terms if t not in dropped]



def open_catalog(settings: Settings, create: bool = True) -> Catalog | PgCatalog:
    """The catalog the settings name: PostgreSQL when OMBUDS_CATALOG_URL is set, else the SQLite file in the
    index folder (a reader does not create one)."""
    if settings.catalog_url:
        from ingest.catalog_pg import PgCatalog

        return PgCatalog(settings.catalog_url.get_secret_value(), create=create)
    return Catalog(settings.catalog_path, create=create or settings.catalog_path.exists())


def _unreadable(catalog: Catalog, exc: Exception) -> IndexStateError:
    if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
        return IndexBusyError(f"The catalog {catalog.path} is locked by another process ({exc}); try again when "
                              "it has finished.")
    return IndexStateError(
        f"The catalog {catalog.path} could not be read ({type(exc).__name__}: {str(exc)[:160]}): it is damaged or "
        f"was changed by something else. Rebuild the index: python -m ingest --rebuild PATH... "
        f"--index-dir {catalog.path.parent}"
    )


def _guarded(method):
    """Turn SQLite errors and undecodable rows met while reading or writing into IndexStateError.

    Corruption is only found when a damaged page is read (opening checks little), so it can surface in any
    query, mid-answer; it must reach people as the rebuild instruction, not as a traceback.
    """
    if inspect.isgeneratorfunction(method):
        @functools.wraps(method)
        def generator(self, *args, **kwargs):
            try:
                yield from method(self, *args, **kwargs)
            except (sqlite3.Error, json.JSONDecodeError) as exc:
                raise _unreadable(self, exc) from None
        return generator

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (sqlite3.Error, json.JSONDecodeError) as exc:
            raise _unreadable(self, exc) from None
    return wrapper


for _name, _method in list(vars(Catalog).items()):
    if inspect.isfunction(_method) and not _name.startswith("_") and _name != "close":
        setattr(Catalog, _name, _guarded(_method))
