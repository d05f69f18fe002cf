"""Browsing the catalog: find decisions by keyword and filters, page through them, export them, open one.

The browse index lives in the catalog's SQLite file beside the tables it mirrors, kept in step by triggers on
the `decisions` table (so any ingest, in any process, updates it once it exists):

- `browse_docs`: one compact row per decision (the columns the table shows and filters on), indexed by date, so
  filtering and date-sorted pages never read the decisions' large JSON rows;
- `browse_fts`: an FTS5 index of each decision's heading (case number, council, category, outcome), summary and
  full text, ranked by BM25 when there is a query.

`DecisionBrowser.ensure_index()` creates both (and the triggers) the first time and rebuilds them when they are
out of step with `decisions` (for example a catalog written before browsing existed). Reads use their own
connection per thread, so browsing never waits for the chat's catalog lock.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import re
import sqlite3
import threading
import time
from array import array
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from core.casenum import case_number_slug, normalise_case_number
from core.errors import ConfigError, IndexStateError, QuestionError
from core.text import split_sentences
from core.types import Decision, DecisionNames, Filters
from ingest.catalog import Catalog

log = logging.getLogger(__name__)

BROWSE_SCHEMA_VERSION = "3"  # bump to rebuild every browse index on its next start
PAGE_SIZE = 25
MAX_PAGE_SIZE = 200
MAX_QUERY_CHARS = 300
# BM25 weights of the FTS columns: a word in the heading (council, category) or the summary says more about what
# the decision is about than the same word somewhere in its paragraphs.
BM25_WEIGHTS = (4.0, 2.0, 1.0)
CSV_COLUMNS = ("case_number", "council", "category", "outcome", "decision_date", "first_sentence", "url", "doc_id")

_COLUMNS = "doc_id, case_number, authority, category, subcategory, outcome, decision_date, date_int, url, summary"
_ROW_COLUMNS = "doc_id, case_number, authority, category, subcategory, outcome, decision_date, url, summary"
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

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?", re.UNICODE)
_PHRASE = re.compile(r'"([^"]+)"')


def first_sentence(text: str | None, limit: int = 240) -> str:
    """The first sentence of a summary (cut at a word boundary if very long); '' for none."""
    sentences = split_sentences(" ".join((text or "").split()))
    text = sentences[0] if sentences else ""
    if len(text) > limit:
        text = text[:limit - 1].rsplit(" ", 1)[0] + "…"
    return text


def fts_match(text: str) -> str | None:
    """An FTS5 MATCH expression for what someone typed: every word must appear (stemmed), "quoted words" as a
    phrase. Only words reach FTS5, each quoted, so no input is read as FTS5 syntax. None when there are no words."""
    parts: list[str] = []
    for phrase in _PHRASE.findall(text):
        words = _WORD.findall(phrase.lower())
        if words:
            parts.append('"' + " ".join(words) + '"')
    for word in _WORD.findall(_PHRASE.sub(" ", text).lower()):
        word = word.replace("’", "'")
        parts.append('"' + word.replace('"', "") + '"')
    return " AND ".join(dict.fromkeys(parts)) or None


@dataclass(frozen=True)
class BrowseQuery:
    """What the browser is asked: words (optional), filters, which page and how many rows per page."""

    text: str = ""
    filters: Filters = field(default_factory=Filters)
    page: int = 1
    page_size: int = PAGE_SIZE

    def __post_init__(self) -> None:
        if len(self.text) > MAX_QUERY_CHARS:
            raise QuestionError(f"The search is {len(self.text)} characters long; keep it under {MAX_QUERY_CHARS}.")
        if not isinstance(self.page, int) or self.page < 1:
            raise QuestionError(f"Page {self.page!r} does not exist: pages are numbered from 1.")
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise QuestionError(f"Page size {self.page_size} is out of range (1 to {MAX_PAGE_SIZE}).")

    @property
    def case_number(self) -> str | None:
        """The case number when the search is one (any spelling), else None."""
        return normalise_case_number(self.text) if self.text.strip() else None

    def with_page(self, page: int) -> BrowseQuery:
        """The same search on another page."""
        return dataclasses.replace(self, page=page)

    def to_params(self) -> dict[str, str]:
        """URL query parameters that reopen this search (for a link staff can share)."""
        params = {"q": self.text.strip()} if self.text.strip() else {}
        params.update(self.filters.to_dict())
        if self.page > 1:
            params["page"] = str(self.page)
        return {"view": "browse", **params}

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> BrowseQuery:
        """The search a shared link describes (q, authority, category, outcome, since, until, page); raises
        QuestionError or ConfigError with a message for the person when a value is not valid."""
        page_text = (params.get("page") or "1").strip()
        if not page_text.isdigit():
            raise QuestionError(f"The page number in the link, {page_text!r}, is not a number.")
        filters = Filters.from_dict({k: params.get(k) or None
                                     for k in ("authority", "category", "outcome", "since", "until")})
        return cls(text=(params.get("q") or "").strip(), filters=filters, page=int(page_text))


@dataclass(frozen=True)
class BrowseRow(DecisionNames):
    """One decision in the browser's table."""

    outcome: str | None
    decision_date: str | None
    url: str | None
    summary: str | None

    @property
    def first_sentence(self) -> str:
        """The summary's first sentence."""
        return first_sentence(self.summary)

    @property
    def link_ref(self) -> str:
        """What ?case= takes for this decision: the case number with hyphens, or the document id."""
        return case_number_slug(self.case_number) if self.case_number else self.doc_id


@dataclass(frozen=True)
class BrowsePage:
    """One page of matching decisions, how many match in all, and how long it took."""

    query: BrowseQuery
    rows: tuple[BrowseRow, ...]
    total: int
    elapsed_ms: float

    @property
    def pages(self) -> int:
        """Number of pages (at least 1)."""
        return max(1, -(-self.total // self.query.page_size))

    @property
    def first(self) -> int:
        """1-based position of the first row shown (0 when none)."""
        return (self.query.page - 1) * self.query.page_size + 1 if self.rows else 0

    @property
    def last(self) -> int:
        """1-based position of the last row shown."""
        return self.first + len(self.rows) - 1 if self.rows else 0

    @property
    def sorted_by(self) -> str:
        """'relevance' when there are search words, else 'date'."""
        return "relevance" if fts_match(self.query.text) and not self.query.case_number else "date"


class DecisionBrowser:
    """Keyword and filter search over the catalog's decisions, paged; CSV export; decisions by reference.

    A search is answered once in full — the ids of every matching decision, in the table's order — and that list
    is cached (an array of 8-byte ids: 400 kB for 50 000 matches) until the catalog changes, so the count is its
    length and any page, or the CSV export, is a slice of it plus one indexed look-up.
    """

    def __init__(self, catalog: Catalog, cache_size: int = 64):
        self.catalog = catalog
        self.path = Path(catalog.path)
        # Its tables and FTS5 index live in the SQLite file; a PostgreSQL catalog has none yet (issue 15).
        self.unavailable = None if isinstance(catalog, Catalog) else (
            f"The decisions browser needs the SQLite catalog for now: this app uses the PostgreSQL catalog at "
            f"{catalog.path}. Ask the assistant instead, or unset OMBUDS_CATALOG_URL.")
        self._local = threading.local()
        self._cache_lock = threading.Lock()
        self._results: OrderedDict[tuple[Any, ...], array] = OrderedDict()
        self._cache_size = cache_size

    # connections and the index -----------------------------------------------------------------
    def _check_available(self) -> None:
        if self.unavailable:
            raise ConfigError(self.unavailable)

    def _conn(self) -> sqlite3.Connection:
        self._check_available()
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(str(self.path), check_same_thread=True, isolation_level=None, timeout=30)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA query_only=ON")
            self._local.conn = conn
        return conn

    def ensure_index(self) -> int:
        """Create the browse tables and triggers, or rebuild them when out of step with the catalog.
        Returns how many decisions were (re)indexed (0 when it was already up to date)."""
        self._check_available()
        conn = sqlite3.connect(str(self.path), isolation_level=None, timeout=60)
        try:
            version = conn.execute("SELECT value FROM meta WHERE key='browse_schema'").fetchone()
            generation = conn.execute("SELECT value FROM meta WHERE key='browse_generation'").fetchone()
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE name LIKE 'browse_%'")}
            if version and version[0] == BROWSE_SCHEMA_VERSION and generation and \
                    {"browse_docs", "browse_fts"} <= tables:
                n_docs = conn.execute("SELECT count(*) FROM decisions").fetchone()[0]
                n_browse = conn.execute("SELECT count(*) FROM browse_docs").fetchone()[0]
                if n_docs == n_browse:
                    return 0
            started = time.perf_counter()
            try:
                # One transaction: readers see the old index or the new one, never half of it.
                conn.executescript(
                    "BEGIN IMMEDIATE;" + _DROP + _SCHEMA + _FILL +
                    f"INSERT OR REPLACE INTO meta(key, value) VALUES ('browse_schema', '{BROWSE_SCHEMA_VERSION}');"
                    "INSERT OR REPLACE INTO meta(key, value) VALUES ('browse_generation', "
                    "CAST(strftime('%s', 'now') AS TEXT)); COMMIT;")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            n = conn.execute("SELECT count(*) FROM browse_docs").fetchone()[0]
            log.info("browse index built: %d decisions in %.1f s", n, time.perf_counter() - started)
            self.forget_results()
            return n
        finally:
            conn.close()

    def _generation(self, conn: sqlite3.Connection) -> str | None:
        """Moves on every change to the decisions (the triggers count them), whichever process made it; None when
        the catalog has lost it (cleared), and then nothing is cached."""
        row = conn.execute("SELECT value FROM meta WHERE key='browse_generation'").fetchone()
        return row[0] if row else None

    def forget_results(self) -> None:
        """Drop every cached search result (the next search of each is computed afresh)."""
        with self._cache_lock:
            self._results.clear()

    # searching ---------------------------------------------------------------------------------
    def _where(self, query: BrowseQuery) -> tuple[str, list[Any], str | None]:
        """(SQL condition on browse_docs b, parameters, FTS MATCH or None)."""
        where, params = self.catalog.filter_sql(query.filters, alias="b")
        case = query.case_number
        if case:
            return f"(b.case_number = ? OR b.doc_id = ?) AND {where}", [case, case_number_slug(case), *params], None
        return where, list(params), fts_match(query.text)

    def _ids(self, conn: sqlite3.Connection, query: BrowseQuery) -> array:
        """The ids (browse_docs.id) of every matching decision in the table's order, cached per catalog state."""
        generation = self._generation(conn)
        key = (query.text.strip().lower(), query.filters, generation)
        if generation is not None:
            with self._cache_lock:
                if key in self._results:
                    self._results.move_to_end(key)
                    return self._results[key]
        where, params, match = self._where(query)
        weights = ", ".join(str(w) for w in BM25_WEIGHTS)
        if match is None:
            sql, args = f"SELECT b.id FROM browse_docs b WHERE {where} ORDER BY b.date_int DESC, b.doc_id", params
        elif where == "1=1":
            sql = f"SELECT rowid FROM browse_fts WHERE browse_fts MATCH ? ORDER BY bm25(browse_fts, {weights}), rowid"
            args = [match]
        else:
            sql = (f"SELECT f.rowid FROM browse_fts f JOIN browse_docs b ON b.id = f.rowid "
                   f"WHERE browse_fts MATCH ? AND {where} ORDER BY bm25(browse_fts, {weights}), f.rowid")
            args = [match, *params]
        ids = array("q", (r[0] for r in conn.execute(sql, args)))
        if generation is not None:
            with self._cache_lock:
                self._results[key] = ids
                while len(self._results) > self._cache_size:
                    self._results.popitem(last=False)
        return ids

    def _rows(self, conn: sqlite3.Connection, ids: Sequence[int]) -> list[BrowseRow]:
        """Table rows for these ids, in the order given."""
        found: dict[int, BrowseRow] = {}
        for start in range(0, len(ids), 500):
            part = list(ids[start:start + 500])
            marks = ",".join("?" * len(part))
            for r in conn.execute(f"SELECT id, {_ROW_COLUMNS} FROM browse_docs WHERE id IN ({marks})", part):
                found[r[0]] = BrowseRow(*tuple(r)[1:])
        return [found[i] for i in ids if i in found]

    def search(self, query: BrowseQuery) -> BrowsePage:
        """One page of the decisions matching the query: by relevance with words, by date (newest) without.
        A page past the end is answered with the last page."""
        started = time.perf_counter()
        conn = self._conn()
        try:
            ids = self._ids(conn, query)
            pages = max(1, -(-len(ids) // query.page_size))
            if query.page > pages:
                query = query.with_page(pages)
            offset = (query.page - 1) * query.page_size
            rows = tuple(self._rows(conn, ids[offset:offset + query.page_size]))
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                raise IndexStateError("The decisions browser has no index yet: restart the app to build it.") from None
            raise
        return BrowsePage(query, rows, len(ids), (time.perf_counter() - started) * 1000)

    def iter_rows(self, query: BrowseQuery, batch: int = 500) -> Iterator[BrowseRow]:
        """Every matching decision in the table's order (the whole result, not one page)."""
        conn = self._conn()
        ids = self._ids(conn, query)
        for start in range(0, len(ids), batch):
            yield from self._rows(conn, ids[start:start + batch])

    def write_csv(self, query: BrowseQuery, out: IO[str]) -> int:
        """Write the whole result as CSV (header row first); returns the number of decisions written."""
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        n = 0
        for row in self.iter_rows(query):
            writer.writerow([_csv_safe(x) for x in (row.case_number or "", row.authority or "", row.category_path,
                                                    row.outcome or "", row.decision_date or "", row.first_sentence,
                                                    row.url or "", row.doc_id)])
            n += 1
        return n

    # single decisions --------------------------------------------------------------------------
    def resolve(self, ref: str) -> str | None:
        """The document id a reference names: a case number in any spelling ("23 009 429", "23-009-429",
        "23009429") or a document id; None when the catalog has no such decision."""
        ref = (ref or "").strip()
        if not ref or len(ref) > 200:
            return None
        case = normalise_case_number(ref)
        found = self.catalog.docs_by_case_number([case] if case else [ref])
        return found[0] if found else None

    def decision(self, ref: str) -> Decision | None:
        """The whole decision a reference names, or None."""
        doc_id = self.resolve(ref)
        if doc_id is None:
            return None
        return self.catalog.decisions([doc_id]).get(doc_id)

    def close(self) -> None:
        """Close this thread's read connection (others close with their threads)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def _csv_safe(value: str) -> str:
    """Keep a spreadsheet from reading a cell as a formula (=, +, -, @ at the start)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
