"""The decisions browser's index on the PostgreSQL catalog: PostgreSQL's own text search, ranked as on SQLite.

Tables (created and filled by the catalog's schema migration 2, ingest/catalog_pg.py): `browse_docs`, one compact
row per decision (the columns the table shows and filters on, and its length in tokens), and `browse_terms`, a
postings table — lexeme, decision, occurrences in the heading, the summary and the full text, and the positions.
A trigger on `decisions` fills both for every decision written, in the writing transaction, whichever process
writes; deleting a decision cascades.

Terms. `to_tsvector` with a text search configuration of our own, `browse_words`: PostgreSQL's Snowball build of
*Porter's original stemmer* (`Language = porter`, the algorithm SQLite FTS5's `porter` tokenizer implements,
rather than `english`, which is Porter2) and no stopword list (FTS5 has none: "the" must match on both; with
PostgreSQL's English stopwords a search for "not investigate" would ignore "not"). The text is first cut into
runs of letters and digits, as FTS5's unicode61 tokenizer does, so PostgreSQL's parser never sees an e-mail
address, URL, decimal or hyphenated word it would keep whole; words of one or two characters (and over 64) are
left unstemmed, as FTS5 leaves them ("us" is not "u"). A decision is indexed piece by piece — heading, summary,
each paragraph — with positions running on through it, so the postings say in which column each occurrence is
and tsvector's limits (256 positions per word, positions up to 16 383) apply to a paragraph, not a decision.

Why a postings table rather than a GIN index with `websearch_to_tsquery` and `ts_rank`: the browser ranks by
BM25 with FTS5's formula (rag/browse_index.py), which needs each term's document frequency and per-column counts
and each decision's length; ts_rank has no inverse document frequency, so a common word would count as much as a
rare one and the two catalogs would list the same search in different orders. The primary key (lexeme, doc) is
the inverted index: a word's postings are one index range. A "quoted phrase" is found from the stored positions
(its words at consecutive positions, in one column), so it matches and counts as an FTS5 phrase does. PgCatalog's
`chunk_terms` cannot serve: it indexes chunks (their headers repeat per chunk), not the decision's heading,
summary and full text, and a catalog may hold decisions without chunks.

Where the two catalogs can still differ (tests/app/test_browse.py checks that the sample decisions, and 130
synthetic ones, hold the same terms and give the same decisions in the same order for 25 searches):
- stems: FTS5 follows Porter's own C version, which turns "-logi" into "-log" and "-bli" into "-ble"; Snowball's
  Porter does neither. "apology" is "apolog" on SQLite and "apologi" on PostgreSQL, but "apologies" goes with it
  on both, so searches find the same; "possibly" and "possible" share a stem on SQLite only, so there a search
  for one also finds the other;
- diacritics: FTS5 removes them ("café" = "cafe"); PostgreSQL keeps them (no `unaccent` needed or assumed);
- letters outside ASCII: the runs of letters and digits follow the database's locale (ctype) on PostgreSQL,
  Unicode's categories on FTS5; identical for English text;
- a single paragraph of more than 16 383 words, or with one word more than 256 times, counts less on PostgreSQL.
"""

from __future__ import annotations

import logging
import threading
import time
from array import array
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import psycopg

from core.errors import IndexStateError
from ingest.catalog_pg import MIGRATION_LOCK_KEY, PgCatalog, raw_connect
from rag.browse_index import BM25_WEIGHTS, ROW_COLUMNS, SCORE_DECIMALS, SearchSpec

log = logging.getLogger(__name__)

K1, B = 1.2, 0.75  # FTS5's bm25() constants
T = TypeVar("T")

_BY_DATE = 'ORDER BY b.date_int DESC NULLS LAST, b.doc_id COLLATE "C"'
_WH, _WS, _WB = BM25_WEIGHTS
# Each query part's lexemes and their offsets in the part; a word's postings give its weighted count per
# decision, a phrase's are the starts where all its words follow each other in one column; then BM25 as FTS5.
_RANKED = f"""
WITH q AS (
    SELECT p.i, u.lexeme, x.pos - 1 AS off, count(*) OVER (PARTITION BY p.i) AS k
    FROM unnest(%s::text[]) WITH ORDINALITY AS p(words, i), unnest(browse_tsvector(p.words)) AS u,
         unnest(u.positions) AS x(pos)
), words AS (
    SELECT q.i, t.doc, ({_WH} * t.tf_heading + {_WS} * t.tf_summary + {_WB} * t.tf_body)::float8 AS f
    FROM q JOIN browse_terms t USING (lexeme) WHERE q.k = 1
), starts AS (
    SELECT q.i, t.doc, min(x.w) AS w
    FROM q JOIN browse_terms t USING (lexeme), unnest(t.positions, t.weights) AS x(pos, w)
    WHERE q.k > 1
    GROUP BY q.i, t.doc, x.pos - q.off HAVING count(*) = max(q.k) AND min(x.w) = max(x.w)
), phrases AS (
    SELECT i, doc, sum(CASE w WHEN 'A' THEN {_WH} WHEN 'B' THEN {_WS} ELSE {_WB} END)::float8 AS f
    FROM starts GROUP BY i, doc
), tf AS (
    SELECT i, doc, f FROM words UNION ALL SELECT i, doc, f FROM phrases
), df AS (
    SELECT i, count(*)::float8 AS n FROM tf GROUP BY i
), corpus AS (
    SELECT count(*)::float8 AS n, coalesce(sum(n_tokens), 0)::float8 / greatest(count(*), 1) AS avgdl
    FROM browse_docs
)
SELECT b.id FROM tf JOIN df USING (i) JOIN browse_docs b ON b.id = tf.doc CROSS JOIN corpus c
WHERE {{where}}
GROUP BY b.id HAVING count(*) = {{parts}}
ORDER BY round(sum(greatest(ln((c.n - df.n + 0.5) / (df.n + 0.5)), 1e-6) * (tf.f * {K1 + 1})
               / (tf.f + {K1} * (1 - {B} + {B} * b.n_tokens / greatest(c.avgdl, 1e-9))))::numeric,
               {SCORE_DECIMALS}) DESC,
         b.date_int DESC NULLS LAST, b.doc_id COLLATE "C"
"""


class PgBrowseIndex:
    """The browse index in the PostgreSQL catalog's database (see the module docstring).

    Reads use one connection of its own (not the catalog's, so browsing never waits for the chat's catalog lock),
    shared by the app's threads under a lock: one search at a time per app process, each a single statement.
    """

    mark = "%s"

    def __init__(self, catalog: PgCatalog):
        self.catalog = catalog
        self._lock = threading.Lock()
        self._conn: psycopg.Connection | None = None

    def _run(self, work: Callable[[psycopg.Connection], T]) -> T:
        """Run work on the browser's connection (connected on first use, replaced after the server dropped it);
        a database error becomes IndexStateError naming the server."""
        with self._lock:
            try:
                if self._conn is None or self._conn.closed or self._conn.broken:
                    self._conn = raw_connect(self.catalog.url)
                return work(self._conn)
            except psycopg.Error as exc:
                raise IndexStateError(
                    f"The decisions browser could not read the PostgreSQL catalog at {self.catalog.location} "
                    f"({type(exc).__name__}: {str(exc).strip()[:160]}). Check that the server is running and "
                    "reachable; the next search reconnects.") from None

    def _read(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        return self._run(lambda conn: conn.execute(sql, list(args)).fetchall())

    def ensure_index(self) -> int:
        """Refill the browse tables when they are out of step with `decisions` (they are created, filled and kept
        in step by the catalog's schema); returns how many decisions were indexed (0: in step)."""
        return self._run(self._refill_if_needed)

    @staticmethod
    def _counts(conn: psycopg.Connection) -> tuple[int, int]:
        row = conn.execute("SELECT (SELECT count(*) FROM decisions), (SELECT count(*) FROM browse_docs)").fetchone()
        return int(row[0]), int(row[1])

    def _refill_if_needed(self, conn: psycopg.Connection) -> int:
        if len(set(self._counts(conn))) == 1:
            return 0
        started = time.perf_counter()
        with conn.transaction():  # one process at a time; readers see the old rows or the new ones
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
            if len(set(self._counts(conn))) == 1:
                return 0
            conn.execute("TRUNCATE browse_terms, browse_docs")
            n = int(conn.execute("SELECT browse_fill(coalesce(array_agg(doc_id), '{}')) FROM decisions").fetchone()[0])
        log.info("browse index rebuilt: %d decisions in %.1f s", n, time.perf_counter() - started)
        return n

    def generation(self) -> tuple[Any, ...]:
        """PgCatalog's data_version (moves when an ingest starts or finishes) and its change counter (moved in
        every transaction that writes decisions, in or outside an ingest run)."""
        return (*self.catalog.data_version(), self.catalog.get_meta("generation"))

    def ranked_ids(self, spec: SearchSpec) -> array:
        """browse_docs ids of every match: BM25 as FTS5 computes it with words, by date without."""
        if not spec.parts:
            sql = f"SELECT b.id FROM browse_docs b WHERE {spec.where} {_BY_DATE}"
            return array("q", (r[0] for r in self._read(sql, spec.params)))
        sql = _RANKED.format(where=spec.where, parts=len(spec.parts))
        parts = [" ".join(part) for part in spec.parts]
        return array("q", (r[0] for r in self._read(sql, [parts, *spec.params])))

    def rows(self, ids: Sequence[int]) -> dict[int, tuple[Any, ...]]:
        """Table rows by id."""
        rows = self._read(f"SELECT id, {ROW_COLUMNS} FROM browse_docs WHERE id = ANY(%s)", [list(ids)])
        return {r[0]: tuple(r[1:]) for r in rows}

    def close(self) -> None:
        """Close the browser's connection."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
