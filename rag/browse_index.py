"""The storage behind the decisions browser: one small backend per catalog, behind one interface.

`DecisionBrowser` (rag/browse.py) keeps everything the two catalogs share — what was asked, the cache of ranked
ids, paging, the CSV — and asks a `BrowseIndex` for five things: build or check its index (`ensure_index`), a
token that moves whenever the decisions change (`generation`), the ids of every match in the table's order
(`ranked_ids`), the table rows of some ids (`rows`), and `close`.

Both backends order matches the same way, so one corpus gives one order on either catalog:

- with words, BM25 with SQLite FTS5's formula (k1 1.2, b 0.75, idf floored at 1e-6) over three columns — the
  heading (case number, council, category, outcome) weighted BM25_WEIGHTS[0], the summary [1], the full text
  [2] — every part of the query (a word, or a "quoted phrase") counted as one FTS5 phrase; the score rounded to
  SCORE_DECIMALS decimals (the two engines add the same numbers in different orders; the last bits must not
  decide), ties newest first, then by document id in byte order;
- without words, newest first (undated last), then by document id in byte order.

`SqliteBrowseIndex` (here): `browse_docs` and an FTS5 index `browse_fts` in the catalog's SQLite file, kept in
step by triggers on `decisions` and created or rebuilt by `ensure_index`. `PgBrowseIndex` (rag/browse_pg.py):
PostgreSQL's own text search over tables the catalog's schema migration creates.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
import time
from array import array
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from core.errors import IndexStateError
from ingest.catalog import Catalog

if TYPE_CHECKING:
    from ingest.catalog_pg import PgCatalog

log = logging.getLogger(__name__)

BROWSE_SCHEMA_VERSION = "3"  # bump to rebuild every SQLite browse index on its next start
# BM25 weights of the columns: a word in the heading (council, category) or the summary says more about what
# the decision is about than the same word somewhere in its paragraphs.
BM25_WEIGHTS = (4.0, 2.0, 1.0)
SCORE_DECIMALS = 9
ROW_COLUMNS = "doc_id, case_number, authority, category, subcategory, outcome, decision_date, url, summary"

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?", re.UNICODE)
_PHRASE = re.compile(r'"([^"]+)"')


def query_parts(text: str) -> tuple[tuple[str, ...], ...]:
    """The parts every match must contain: each "quoted phrase" (its words in order), then every other word;
    lower case, each once. Only words survive, so nothing typed is read as search syntax."""
    parts: list[tuple[str, ...]] = []
    for phrase in _PHRASE.findall(text):
        words = tuple(w.replace("’", "'") for w in _WORD.findall(phrase.lower()))
        if words:
            parts.append(words)
    parts += [(word.replace("’", "'"),) for word in _WORD.findall(_PHRASE.sub(" ", text).lower())]
    return tuple(dict.fromkeys(parts))


def fts_match(text: str) -> str | None:
    """An FTS5 MATCH expression for what someone typed: every word must appear (stemmed), "quoted words" as a
    phrase. Only words reach FTS5, each quoted, so no input is read as FTS5 syntax. None when there are no words."""
    return " AND ".join('"' + " ".join(part) + '"' for part in query_parts(text)) or None


@dataclass(frozen=True)
class SearchSpec:
    """One search as a backend takes it: a condition on `browse_docs b` (in the backend's placeholder style)
    with its parameters, and the parts every match must contain (none: what the condition allows, by date)."""

    where: str
    params: tuple[Any, ...]
    parts: tuple[tuple[str, ...], ...]


class BrowseIndex(Protocol):
    """What DecisionBrowser needs of a catalog's browse index."""

    mark: str  # the driver's placeholder

    def ensure_index(self) -> int:
        """Build the index, or rebuild it when out of step; how many decisions were indexed (0: in step)."""
        ...

    def generation(self) -> Hashable | None:
        """Moves on every change to the decisions, whichever process made it; None: cache nothing."""
        ...

    def ranked_ids(self, spec: SearchSpec) -> array:
        """The ids of every matching decision, in the table's order (an array of 8-byte integers)."""
        ...

    def rows(self, ids: Sequence[int]) -> dict[int, tuple[Any, ...]]:
        """The ROW_COLUMNS of these ids, by id."""
        ...

    def close(self) -> None:
        """Close what this thread holds."""
        ...


def open_browse_index(catalog: Catalog | PgCatalog) -> BrowseIndex:
    """The browse index of this catalog: in its SQLite file, or in its PostgreSQL database."""
    if isinstance(catalog, Catalog):
        return SqliteBrowseIndex(catalog.path)
    from rag.browse_pg import PgBrowseIndex

    return PgBrowseIndex(catalog)


# SQLite ----------------------------------------------------------------------------------------------------------
_COLUMNS = "doc_id, case_number, authority, category, subcategory, outcome, decision_date, date_int, url, summary"
# Every change to the decisions moves this counter, so cached search results are never served stale.
_BUMP = "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'browse_generation';"
_NEW = ", ".join(f"new.{c.strip()}" for c in _COLUMNS.split(","))
_BODY = ("(SELECT group_concat(json_extract(p.value, '$.text'), ' ') FROM json_each(new.data, '$.sections') s, "
         "json_each(s.value, '$.paragraphs') p)")
_HEADING = ("trim(coalesce(new.case_number, new.doc_id) || ' ' || coalesce(new.authority, '') || ' ' || "
            "coalesce(new.category, '') || ' ' || coalesce(new.subcategory, '') || ' ' || coalesce(new.outcome, ''))")
_INSERT = f"""
    INSERT INTO browse_docs({_COLUMNS}) VALUES ({_NEW});
    INSERT INTO browse_fts(rowid, heading, summary, body)
        VALUES ((SELECT id FROM browse_docs WHERE doc_id = new.doc_id), {_HEADING}, coalesce(new.summary, ''),
                coalesce({_BODY}, ''));
"""
_DELETE = """
    DELETE FROM browse_fts WHERE rowid = (SELECT id FROM browse_docs WHERE doc_id = old.doc_id);
    DELETE FROM browse_docs WHERE doc_id = old.doc_id;
"""
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS browse_docs (
    id INTEGER PRIMARY KEY,
    doc_id TEXT NOT NULL UNIQUE,
    case_number TEXT, authority TEXT, category TEXT, subcategory TEXT, outcome TEXT,
    decision_date TEXT, date_int INTEGER, url TEXT, summary TEXT
);
CREATE INDEX IF NOT EXISTS browse_docs_date ON browse_docs(date_int DESC, doc_id);
CREATE INDEX IF NOT EXISTS browse_docs_case ON browse_docs(case_number);
CREATE VIRTUAL TABLE IF NOT EXISTS browse_fts USING fts5(
    heading, summary, body, tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS browse_decisions_ai AFTER INSERT ON decisions BEGIN {_INSERT} {_BUMP} END;
CREATE TRIGGER IF NOT EXISTS browse_decisions_ad AFTER DELETE ON decisions BEGIN {_DELETE} {_BUMP} END;
CREATE TRIGGER IF NOT EXISTS browse_decisions_au AFTER UPDATE OF
    case_number, authority, category, subcategory, outcome, decision_date, date_int, url, summary, data
    ON decisions BEGIN {_DELETE} {_INSERT} {_BUMP} END;
"""
_DROP = """
DROP TRIGGER IF EXISTS browse_decisions_ai;
DROP TRIGGER IF EXISTS browse_decisions_ad;
DROP TRIGGER IF EXISTS browse_decisions_au;
DROP TABLE IF EXISTS browse_fts;
DROP TABLE IF EXISTS browse_docs;
"""
_FILL = f"""
INSERT INTO browse_docs({_COLUMNS}) SELECT {_COLUMNS} FROM decisions;
INSERT INTO browse_fts(rowid, heading, summary, body)
    SELECT b.id, {_HEADING.replace('new.', 'd.')}, coalesce(d.summary, ''), coalesce({_BODY.replace('new.', 'd.')}, '')
    FROM decisions d JOIN browse_docs b ON b.doc_id = d.doc_id;
"""
_REBUILD = ("BEGIN IMMEDIATE;" + _DROP + _SCHEMA + _FILL +
            f"INSERT OR REPLACE INTO meta(key, value) VALUES ('browse_schema', '{BROWSE_SCHEMA_VERSION}');"
            "INSERT OR REPLACE INTO meta(key, value) VALUES ('browse_generation', "
            "CAST(strftime('%s', 'now') AS TEXT)); COMMIT;")
_BY_DATE = "ORDER BY b.date_int DESC, b.doc_id"
_WEIGHTS = ", ".join(str(w) for w in BM25_WEIGHTS)
_BY_SCORE = f"ORDER BY round(bm25(browse_fts, {_WEIGHTS}), {SCORE_DECIMALS}), b.date_int DESC, b.doc_id"


class SqliteBrowseIndex:
    """The browse index inside the catalog's SQLite file (see the module docstring).

    `browse_docs` holds one compact row per decision (the columns the table shows and filters on), indexed by
    date, so filtering and date-sorted pages never read the decisions' large JSON rows; `browse_fts` is an FTS5
    index (Porter stems, unicode61 tokens, diacritics removed) of each decision's heading, summary and full text.
    Triggers on `decisions` keep both in step, so any ingest, in any process, updates them once they exist. Reads
    use their own connection per thread, so browsing never waits for the chat's catalog lock.
    """

    mark = "?"

    def __init__(self, path: Path):
        self.path = Path(path)
        self._local = threading.local()

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(str(self.path), check_same_thread=True, isolation_level=None, timeout=30)
            conn.execute("PRAGMA query_only=ON")
            self._local.conn = conn
        return conn

    def _read(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        try:
            return self._conn().execute(sql, list(args)).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                raise IndexStateError("The decisions browser has no index yet: restart the app to build it.") from None
            raise

    def _in_step(self, conn: sqlite3.Connection) -> bool:
        version = conn.execute("SELECT value FROM meta WHERE key='browse_schema'").fetchone()
        generation = conn.execute("SELECT value FROM meta WHERE key='browse_generation'").fetchone()
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE name LIKE 'browse_%'")}
        if not (version and version[0] == BROWSE_SCHEMA_VERSION and generation and
                {"browse_docs", "browse_fts"} <= tables):
            return False
        n_docs = conn.execute("SELECT count(*) FROM decisions").fetchone()[0]
        return n_docs == conn.execute("SELECT count(*) FROM browse_docs").fetchone()[0]

    def ensure_index(self) -> int:
        """Create the browse tables and triggers, or rebuild them when out of step with the catalog (for example
        a catalog written before browsing existed). Returns how many decisions were (re)indexed (0: in step)."""
        conn = sqlite3.connect(str(self.path), isolation_level=None, timeout=60)
        try:
            if self._in_step(conn):
                return 0
            started = time.perf_counter()
            try:
                conn.executescript(_REBUILD)  # one transaction: readers see the old index or the new one
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            n = conn.execute("SELECT count(*) FROM browse_docs").fetchone()[0]
            log.info("browse index built: %d decisions in %.1f s", n, time.perf_counter() - started)
            return n
        finally:
            conn.close()

    def generation(self) -> str | None:
        """The counter the triggers move; None when the catalog has lost it (cleared)."""
        rows = self._read("SELECT value FROM meta WHERE key='browse_generation'", ())
        return rows[0][0] if rows else None

    def ranked_ids(self, spec: SearchSpec) -> array:
        """browse_docs ids of every match: FTS5's BM25 with words, by date without."""
        if not spec.parts:
            sql = f"SELECT b.id FROM browse_docs b WHERE {spec.where} {_BY_DATE}"
            return array("q", (r[0] for r in self._read(sql, spec.params)))
        match = " AND ".join('"' + " ".join(part) + '"' for part in spec.parts)
        sql = (f"SELECT b.id FROM browse_fts f JOIN browse_docs b ON b.id = f.rowid "
               f"WHERE browse_fts MATCH ? AND {spec.where} {_BY_SCORE}")
        return array("q", (r[0] for r in self._read(sql, [match, *spec.params])))

    def rows(self, ids: Sequence[int]) -> dict[int, tuple[Any, ...]]:
        """Table rows by id (500 ids a query)."""
        found: dict[int, tuple[Any, ...]] = {}
        for start in range(0, len(ids), 500):
            part = list(ids[start:start + 500])
            marks = ",".join("?" * len(part))
            for r in self._read(f"SELECT id, {ROW_COLUMNS} FROM browse_docs WHERE id IN ({marks})", part):
                found[r[0]] = tuple(r[1:])
        return found

    def close(self) -> None:
        """Close this thread's read connection (others close with their threads)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
