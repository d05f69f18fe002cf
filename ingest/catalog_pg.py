"""The catalog on PostgreSQL: the same interface as the SQLite Catalog, for several machines sharing one catalog.

Lexical search. PostgreSQL's own text search makes the terms: each chunk keeps
`setweight(to_tsvector('english', header), 'A') || to_tsvector('english', text)` (Snowball English stems,
PostgreSQL's stopwords). Ranking is BM25 with FTS5's own formula and constants (k1 1.2, b 0.75, idf floored at
1e-6, a header occurrence weighted like FTS5's column weight), computed in SQL from a postings table
(`chunk_terms`: lexeme, chunk, occurrences in header and text) filled from each chunk's tsvector when it is
written. Not ts_rank_cd: it has no inverse document frequency and no length normalisation against the corpus,
so a common word counts as much as a rare one; the retrieval and the answer-or-decline model were tuned on
BM25 scores, which this reproduces up to the stemmer. The postings table is the inverted index (a B-tree on
lexeme): a GIN index on the tsvector cannot give the per-term counts BM25 needs, so none is kept.

Stems. Questions are stemmed in Python with Porter's stemmer (as SQLite FTS5 does); PostgreSQL stems with
Snowball English (Porter2). `document_frequency` maps each Porter stem to a lexeme by running it through
`to_tsvector('english', ...)`: the two stemmers agree on most words, and re-stemming a stem nearly always gives
the same stem; where they differ (Porter "gener" for "generous", Snowball "generous") the count is that of the
lexeme the Porter stem becomes, or absent. `term_counts` lists PostgreSQL lexemes.

The decisions browser's index: schema version 2 adds `browse_docs` and `browse_terms` (one row per decision, and
its words' postings with positions), filled by a trigger on `decisions` in every writing transaction; the search
over them is rag/browse_pg.py's, whose docstring says why it is built this way.

Two ingests at once: a writer holds a session-level advisory lock (pg_try_advisory_lock) for its whole run, on
its own connection; the second writer is refused with IndexBusyError. Readers take no lock (MVCC).
"""

from __future__ import annotations

import datetime as dt
import functools
import inspect
import json
import logging
import math
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import psycopg

from core.errors import IndexBusyError, IndexStateError
from core.settings import redact_url
from core.types import Chunk, Decision, Filters
from ingest.catalog import (
    CATEGORY_ROWS,
    NEWEST_FIRST,
    CatalogStats,
    DecisionState,
    category_paths,
    filter_sql,
    limited,
    prune_common_terms,
)
from ingest.sentences import SentenceVectors

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3
# One number for "an ingest is writing this catalog" and one for "a process is migrating the schema".
WRITER_LOCK_KEY = 0x0B_D5_0001
MIGRATION_LOCK_KEY = 0x0B_D5_0002
BM25_K1, BM25_B = 1.2, 0.75
# FTS5's unicode61 tokens (letters and digits runs): the document length BM25 normalises by, counted as FTS5 does
# (stopwords included), so lengths match the SQLite catalog's.
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)

# Each entry moves the schema from the previous version to its own; applied in order, once, at start.
MIGRATIONS: dict[int, str] = {
    1: """
CREATE TABLE decisions (
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
    fictional BOOLEAN NOT NULL DEFAULT FALSE,
    n_chunks INTEGER NOT NULL,
    ingested_at TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX decisions_hash ON decisions(content_hash);
CREATE INDEX decisions_case ON decisions(case_number);
CREATE INDEX decisions_source ON decisions(source_path);
CREATE TABLE chunks (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chunk_id TEXT NOT NULL UNIQUE,
    doc_id TEXT NOT NULL REFERENCES decisions(doc_id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    section TEXT NOT NULL,
    paragraphs TEXT NOT NULL,
    header TEXT NOT NULL,
    text TEXT NOT NULL,
    meta TEXT NOT NULL,
    n_tokens INTEGER NOT NULL,
    tsv TSVECTOR GENERATED ALWAYS AS
        (setweight(to_tsvector('english', header), 'A') || to_tsvector('english', text)) STORED
);
CREATE INDEX chunks_doc ON chunks(doc_id, position);
CREATE TABLE chunk_terms (
    lexeme TEXT NOT NULL,
    chunk BIGINT NOT NULL REFERENCES chunks(id) ON DELETE CASCADE,
    tf_header INTEGER NOT NULL,
    tf_text INTEGER NOT NULL,
    PRIMARY KEY (lexeme, chunk)
);
CREATE INDEX chunk_terms_chunk ON chunk_terms(chunk);
CREATE TABLE sentence_vectors (
    doc_id TEXT PRIMARY KEY REFERENCES decisions(doc_id) ON DELETE CASCADE,
    items TEXT NOT NULL,
    dim INTEGER NOT NULL,
    vectors BYTEA NOT NULL
);
CREATE TABLE runs (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL,
    summary TEXT
);
""",
    # The decisions browser's index (rag/browse_pg.py): one row per decision and a postings table of its words,
    # kept in step by a trigger on `decisions` (deletes cascade), filled here for the decisions already held.
    2: """
CREATE TEXT SEARCH DICTIONARY browse_porter (TEMPLATE = snowball, Language = porter);
CREATE TEXT SEARCH CONFIGURATION browse_words (PARSER = default);
ALTER TEXT SEARCH CONFIGURATION browse_words ADD MAPPING FOR asciiword, word, numword, uint WITH browse_porter;
-- Runs of letters and digits, as FTS5's unicode61 tokens; words of 1-2 or over 64 characters are left unstemmed
-- as FTS5's porter leaves them (a suffix no rule touches, removed again afterwards).
CREATE FUNCTION browse_tsvector(t text) RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(string_agg(quote_literal(regexp_replace(u.lexeme, 'qzq$', '')) || ':' ||
                               array_to_string(u.positions, ','), ' '), '')::tsvector
    FROM unnest(to_tsvector('browse_words', regexp_replace(
        regexp_replace(coalesce(t, ''), '[^[:alnum:]]+', ' ', 'g'),
        '\\m([[:alnum:]]{1,2}|[[:alnum:]]{65,})\\M', '\\1qzq', 'g'))) AS u
$$;
CREATE FUNCTION browse_length(t text) RETURNS integer LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
    $$ SELECT count(*)::integer FROM regexp_matches(coalesce(t, ''), '[[:alnum:]]+', 'g') $$;
CREATE TABLE browse_docs (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    doc_id TEXT NOT NULL UNIQUE REFERENCES decisions(doc_id) ON DELETE CASCADE,
    case_number TEXT, authority TEXT, category TEXT, subcategory TEXT, outcome TEXT,
    decision_date TEXT, date_int INTEGER, url TEXT, summary TEXT,
    n_tokens INTEGER NOT NULL
);
CREATE INDEX browse_docs_date ON browse_docs(date_int DESC NULLS LAST, doc_id COLLATE "C");
CREATE INDEX browse_docs_case ON browse_docs(case_number);
CREATE TABLE browse_terms (
    lexeme TEXT NOT NULL,
    doc BIGINT NOT NULL REFERENCES browse_docs(id) ON DELETE CASCADE,
    tf_heading INTEGER NOT NULL,
    tf_summary INTEGER NOT NULL,
    tf_body INTEGER NOT NULL,
    positions INTEGER[] NOT NULL,
    weights TEXT[] NOT NULL,
    PRIMARY KEY (lexeme, doc)
);
CREATE INDEX browse_terms_doc ON browse_terms(doc);
-- Each decision as pieces (heading A, summary B, each paragraph D), each piece's words placed after the tokens of
-- the pieces before it: positions run on through the decision (a phrase may cross paragraphs, as in FTS5's text
-- column) and no tsvector limit applies to a whole decision (256 positions per word, positions up to 16 383).
CREATE FUNCTION browse_fill(ids text[]) RETURNS integer LANGUAGE sql AS $$
WITH src AS (
    SELECT d.*, trim(coalesce(d.case_number, d.doc_id) || ' ' || coalesce(d.authority, '') || ' ' ||
                     coalesce(d.category, '') || ' ' || coalesce(d.subcategory, '') || ' ' ||
                     coalesce(d.outcome, '')) AS heading
    FROM decisions d JOIN unnest(ids) AS x(doc_id) ON x.doc_id = d.doc_id
), pieces AS (
    SELECT doc_id, 'A' AS w, 0::bigint AS n, heading AS t FROM src
    UNION ALL SELECT doc_id, 'B', 1, summary FROM src
    UNION ALL SELECT src.doc_id, 'D', 1 + row_number() OVER (PARTITION BY src.doc_id ORDER BY s.n, p.n), p.v->>'text'
    FROM src, jsonb_array_elements(src.data::jsonb->'sections') WITH ORDINALITY s(v, n),
         jsonb_array_elements(s.v->'paragraphs') WITH ORDINALITY p(v, n)
), placed AS (
    SELECT doc_id, w, t, coalesce(sum(browse_length(t)) OVER (PARTITION BY doc_id ORDER BY n ROWS BETWEEN
           UNBOUNDED PRECEDING AND 1 PRECEDING), 0)::integer AS start, browse_length(t) AS len
    FROM pieces
), docs AS (
    INSERT INTO browse_docs(doc_id, case_number, authority, category, subcategory, outcome, decision_date,
                            date_int, url, summary, n_tokens)
    SELECT doc_id, case_number, authority, category, subcategory, outcome, decision_date, date_int, url, summary,
           (SELECT sum(len) FROM placed WHERE placed.doc_id = src.doc_id)
    FROM src RETURNING id, doc_id
), terms AS (
    INSERT INTO browse_terms(lexeme, doc, tf_heading, tf_summary, tf_body, positions, weights)
    SELECT u.lexeme, docs.id, count(*) FILTER (WHERE pl.w = 'A'), count(*) FILTER (WHERE pl.w = 'B'),
           count(*) FILTER (WHERE pl.w = 'D'), array_agg(pl.start + x.pos ORDER BY pl.start + x.pos),
           array_agg(pl.w ORDER BY pl.start + x.pos)
    FROM docs JOIN placed pl USING (doc_id), unnest(browse_tsvector(pl.t)) AS u, unnest(u.positions) AS x(pos)
    GROUP BY u.lexeme, docs.id
    RETURNING 1
)
SELECT count(*)::integer FROM docs
$$;
CREATE FUNCTION browse_decision_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        DELETE FROM browse_docs WHERE doc_id = OLD.doc_id;
    END IF;
    PERFORM browse_fill(ARRAY[NEW.doc_id]);
    RETURN NULL;
END
$$;
CREATE TRIGGER browse_decisions_ai AFTER INSERT ON decisions FOR EACH ROW EXECUTE FUNCTION browse_decision_changed();
CREATE TRIGGER browse_decisions_au AFTER UPDATE OF
    doc_id, case_number, authority, category, subcategory, outcome, decision_date, date_int, url, summary, data
    ON decisions FOR EACH ROW EXECUTE FUNCTION browse_decision_changed();
SELECT browse_fill(coalesce(array_agg(doc_id), '{}')) FROM decisions;
""",
    # Lexical search reads only the postings: each carries its chunk's length, and an index on the lexeme holds
    # every column scoring needs (an index-only range per query word, like an FTS5 doclist). Before, scoring joined
    # every posting of the query's words to its chunk row: 1.06 s p50 at 100 002 chunks (bench/NOTES.md §12).
    3: """
ALTER TABLE chunk_terms ADD COLUMN n_tokens INTEGER;
UPDATE chunk_terms p SET n_tokens = c.n_tokens FROM chunks c WHERE c.id = p.chunk;
ALTER TABLE chunk_terms ALTER COLUMN n_tokens SET NOT NULL;
CREATE INDEX chunk_terms_scoring ON chunk_terms(lexeme) INCLUDE (chunk, tf_header, tf_text, n_tokens);
""",
}

_FILL_TERMS = """
INSERT INTO chunk_terms(lexeme, chunk, tf_header, tf_text, n_tokens)
SELECT u.lexeme, c.id,
       (SELECT count(*) FROM unnest(u.weights) w WHERE w = 'A'),
       (SELECT count(*) FROM unnest(u.weights) w WHERE w <> 'A'),
       c.n_tokens
FROM chunks c, unnest(c.tsv) u WHERE c.doc_id = %s
"""

# BM25 as SQLite FTS5 computes it (fts5_aux.c): weighted term frequency f = w_header*tf_header + tf_text,
# idf = ln((N - n + 0.5) / (n + 0.5)) floored at 1e-6, length = every token of the row. The query's lexemes with
# their idf, the corpus size and average length come in as parameters (cached in Python until the catalog
# changes); the postings alone are scored and only the best chunks are joined to their rows.
_LEXICAL = """
WITH scored AS (
    SELECT p.chunk, sum(q.idf * ((%s * p.tf_header + p.tf_text) * ({k1} + 1))
        / ((%s * p.tf_header + p.tf_text) + {k1} * (1 - {b} + {b} * p.n_tokens / %s))) AS s
    FROM unnest(%s::text[], %s::float8[]) AS q(lexeme, idf)
    JOIN chunk_terms p ON p.lexeme = q.lexeme
    {filtered}
    GROUP BY p.chunk ORDER BY s DESC, p.chunk LIMIT %s
)
SELECT c.chunk_id, scored.s FROM scored JOIN chunks c ON c.id = scored.chunk ORDER BY scored.s DESC, c.id
"""
_FILTERED = "WHERE p.chunk IN (SELECT c.id FROM chunks c JOIN decisions d ON d.doc_id = c.doc_id WHERE {where})"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


# A writer's advisory lock lives as long as its connection. A killed process closes it at once (measured 0.00-0.04
# s, tests/ingest/test_crash.py); a machine that loses power or network does not, and the server would hold the
# lock until its TCP keepalive gives up (about two hours with Linux defaults). These server-side settings make it
# notice a dead client after about 60 + 3 x 10 s.
_SESSION_OPTIONS = ("-c jit=off -c tcp_keepalives_idle=60 -c tcp_keepalives_interval=10 "
                    "-c tcp_keepalives_count=3")


def raw_connect(url: str) -> psycopg.Connection:
    """An autocommit connection with JIT off (JIT compiling a browser search cost 41 ms of its 66 ms at 1 000
    decisions, search p50 81 -> 7.6 ms without; every query here is short) and keepalives that free a dead
    client's lock in about 90 s."""
    return psycopg.connect(url, autocommit=True, connect_timeout=10, options=_SESSION_OPTIONS)


def _connect(url: str) -> psycopg.Connection:
    """An autocommit connection, or IndexStateError saying which server could not be reached."""
    try:
        return raw_connect(url)
    except psycopg.Error as exc:
        raise IndexStateError(
            f"Cannot reach the PostgreSQL catalog at {redact_url(url)} ({str(exc).strip()[:200]}). Start the "
            "server, or check OMBUDS_CATALOG_URL (unset it for the embedded SQLite catalog)."
        ) from None


class AdvisoryLock:
    """The ingest lock of a PostgreSQL catalog: a session advisory lock on a connection of its own.

    Shaped like the index folder's file lock (acquire, upgrade, downgrade, release): readers hold nothing, a
    writer holds the lock until release; a second writer is refused, not queued.
    """

    def __init__(self, url: str, exclusive: bool):
        self.url = url
        self.exclusive = exclusive
        self._conn: psycopg.Connection | None = None
        self._held = False

    def acquire(self) -> AdvisoryLock:
        """Connect; a writer takes the lock now or raises IndexBusyError."""
        self._conn = _connect(self.url)
        if self.exclusive:
            self.upgrade()
        return self

    def upgrade(self) -> None:
        """Take the writer lock now or raise IndexBusyError."""
        if self._conn is None:
            raise RuntimeError("lock not acquired")
        got = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (WRITER_LOCK_KEY,)).fetchone()[0]
        if not got:
            raise IndexBusyError(
                f"Another ingest is writing the catalog at {redact_url(self.url)}. Wait for it to finish or stop "
                "it; the app instances keep answering meanwhile."
            )
        self._held = True

    def downgrade(self) -> None:
        """Let other writers in again (the connection stays)."""
        if self._conn is not None and self._held:
            self._conn.execute("SELECT pg_advisory_unlock(%s)", (WRITER_LOCK_KEY,))
            self._held = False

    def release(self) -> None:
        """Unlock and close the connection (closing alone also frees the lock, as a killed ingest's does)."""
        if self._conn is not None:
            try:
                self.downgrade()
            finally:
                self._conn.close()
                self._conn = None


class PgCatalog:
    """The catalog in a PostgreSQL database. Thread-safe (one connection, one lock)."""

    def __init__(self, url: str, create: bool = True):
        self.url = url
        self.location = redact_url(url)
        self._lock = threading.RLock()
        self._cache: dict[str, Any] = {"lex": {}, "ldf": {}}
        self._cache_generation: str | None = None
        self._conn = _connect(url)
        try:
            self._migrate(create)
        except BaseException:
            self._conn.close()
            raise

    @property
    def path(self) -> str:
        """Where the catalog is, for messages (the URL without its password)."""
        return self.location

    def _migrate(self, create: bool) -> None:
        """Create or bring the schema up to SCHEMA_VERSION, one process at a time."""
        with self._conn.transaction():
            self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
            self._conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            row = self._conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise IndexStateError(
                    f"The catalog at {self.location} has schema version {version}; this program knows up to "
                    f"{SCHEMA_VERSION}. Upgrade the program, or point OMBUDS_CATALOG_URL at another database.")
            if version == 0 and not create:
                raise IndexStateError(f"No index catalog at {self.location}: ingest decisions first "
                                      "(python -m ingest data/sample with OMBUDS_CATALOG_URL set).")
            for step in range(version + 1, SCHEMA_VERSION + 1):
                log.info("catalog %s: migrating schema to version %d", self.location, step)
                self._conn.execute(MIGRATIONS[step])
            if version != SCHEMA_VERSION:
                self._set(self._conn, "schema_version", str(SCHEMA_VERSION))
        if 0 < version < 3:  # migration 3 rewrote every posting: make them readable from the index alone
            self.optimize()

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def _one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        with self._lock:
            return self._conn.execute(sql, params).fetchone()

    # meta ----------------------------------------------------------------------------------------
    @staticmethod
    def _set(conn: Any, key: str, value: str) -> None:
        conn.execute("INSERT INTO meta(key, value) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = "
                     "EXCLUDED.value", (key, value))

    def data_version(self) -> tuple[int, str | None]:
        """Changes when an ingest starts or finishes (exact search reloads its vectors then, ingest/store.py)."""
        row = self._one("SELECT coalesce(max(id), 0), max(finished_at) FROM runs")
        return (int(row[0]), row[1]) if row else (0, None)

    def get_meta(self, key: str) -> str | None:
        """A value from the meta table."""
        row = self._one("SELECT value FROM meta WHERE key=%s", (key,))
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        """Set a value in the meta table (committed at once)."""
        with self._lock:
            self._set(self._conn, key, value)

    def _changed(self, conn: Any) -> None:
        """Move the generation the other processes' caches are keyed by (inside the writing transaction)."""
        conn.execute("INSERT INTO meta(key, value) VALUES ('generation', '1') ON CONFLICT (key) DO UPDATE SET "
                     "value = (meta.value::bigint + 1)::text")

    def _stats(self) -> dict[str, Any]:
        """Counts cached until any process writes (one indexed read of the generation). Call with the lock."""
        row = self._conn.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
        generation = row[0] if row else "0"
        if generation != self._cache_generation or len(self._cache["lex"]) > 100_000:
            self._cache = {"lex": {}, "ldf": {}}
            self._cache_generation = generation
        return self._cache

    # reads ---------------------------------------------------------------------------------------
    def state(self, doc_id: str) -> DecisionState | None:
        """Content hash, source path and chunk ids of a decision, if indexed."""
        row = self._one("SELECT doc_id, content_hash, source_path, EXISTS(SELECT 1 FROM sentence_vectors s "
                        "WHERE s.doc_id = d.doc_id) FROM decisions d WHERE doc_id=%s", (doc_id,))
        if row is None:
            return None
        ids = tuple(r[0] for r in self._rows("SELECT chunk_id FROM chunks WHERE doc_id=%s ORDER BY position",
                                             (doc_id,)))
        return DecisionState(row[0], row[1], row[2], ids, bool(row[3]))

    def doc_with_hash(self, content_hash: str) -> DecisionState | None:
        """The decision that already has this exact content, if any."""
        row = self._one("SELECT doc_id FROM decisions WHERE content_hash=%s LIMIT 1", (content_hash,))
        return self.state(row[0]) if row else None

    def all_sources(self) -> list[tuple[str, str]]:
        """(doc_id, source_path) of every decision."""
        return [(r[0], r[1]) for r in self._rows("SELECT doc_id, source_path FROM decisions")]

    def chunk_ids(self) -> set[str]:
        """Every chunk id in the catalog."""
        return {r[0] for r in self._rows("SELECT chunk_id FROM chunks")}

    def count_chunks(self) -> int:
        """Number of chunks (cached until the catalog changes)."""
        return int(self._corpus()[0])

    def count_decisions(self) -> int:
        """Number of decisions."""
        return int(self._one("SELECT count(*) FROM decisions")[0])

    def stats(self) -> CatalogStats:
        """Counts, last finished ingest and the embedding model."""
        last = self._one("SELECT finished_at FROM runs WHERE status='done' ORDER BY id DESC LIMIT 1")
        return CatalogStats(self.count_decisions(), self.count_chunks(), last[0] if last else None,
                            self.get_meta("embedding_model"))

    _CHUNK_COLUMNS = "chunk_id, doc_id, position, section, paragraphs, header, text, meta, id"

    @staticmethod
    def _chunk(row: Sequence[Any]) -> Chunk:
        meta = json.loads(row[7])
        return Chunk(chunk_id=row[0], doc_id=row[1], case_number=meta.get("case_number"), section=row[3],
                     paragraphs=tuple(json.loads(row[4])), text=row[6], header=row[5], position=row[2],
                     metadata=meta)

    def get_chunks(self, chunk_ids: Sequence[str]) -> dict[str, Chunk]:
        """Chunks by id (missing ids are simply absent)."""
        rows = self._rows(f"SELECT {self._CHUNK_COLUMNS} FROM chunks WHERE chunk_id = ANY(%s)", (list(chunk_ids),))
        return {r[0]: self._chunk(r) for r in rows}

    def chunks_of(self, doc_id: str) -> list[Chunk]:
        """All chunks of one decision in page order."""
        rows = self._rows(f"SELECT {self._CHUNK_COLUMNS} FROM chunks WHERE doc_id=%s ORDER BY position", (doc_id,))
        return [self._chunk(r) for r in rows]

    def iter_chunks(self, batch: int = 1000) -> Iterator[Chunk]:
        """Every chunk, in insertion order, without holding them all in memory."""
        last = 0
        while rows := self._rows(f"SELECT {self._CHUNK_COLUMNS} FROM chunks WHERE id > %s ORDER BY id LIMIT %s",
                                 (last, batch)):
            yield from (self._chunk(r) for r in rows)
            last = rows[-1][8]

    def decisions(self, doc_ids: Iterable[str]) -> dict[str, Decision]:
        """Full decisions by document id."""
        ids = list(dict.fromkeys(doc_ids))
        rows = self._rows("SELECT doc_id, data FROM decisions WHERE doc_id = ANY(%s)", (ids,))
        return {r[0]: Decision.from_dict(json.loads(r[1])) for r in rows}

    def docs_by_case_number(self, case_numbers: Iterable[str]) -> list[str]:
        """Document ids of decisions with these case numbers (or document ids), in the order asked."""
        found: list[str] = []
        for case in case_numbers:
            for row in self._rows("SELECT doc_id FROM decisions WHERE case_number=%s OR doc_id=%s ORDER BY doc_id",
                                  (case, case)):
                if row[0] not in found:
                    found.append(row[0])
        return found

    def a_case_number(self) -> str | None:
        """Any one case number the index holds (for warming up a lookup), or None."""
        row = self._one("SELECT case_number FROM decisions WHERE case_number IS NOT NULL LIMIT 1")
        return row[0] if row else None

    def distinct(self, column: str) -> list[str]:
        """Distinct non-empty values of authority, category or outcome (for filter choices)."""
        if column not in {"authority", "category", "outcome", "subcategory"}:
            raise ValueError(f"not a filterable column: {column}")
        # COLLATE "C": the byte order SQLite sorts by, whatever the database's locale
        return [r[0] for r in self._rows(
            f"SELECT DISTINCT {column} COLLATE \"C\" AS v FROM decisions WHERE {column} IS NOT NULL AND "
            f"{column} != '' ORDER BY v")]

    def category_paths(self) -> list[str]:
        """Every category the index holds, and each of its subcategories as "Category > Subcategory"."""
        return category_paths(self._rows(CATEGORY_ROWS))

    def date_range(self) -> tuple[str | None, str | None]:
        """Earliest and latest decision dates (ISO)."""
        row = self._one("SELECT min(decision_date), max(decision_date) FROM decisions")
        return row[0], row[1]

    def filter_sql(self, filters: Filters, alias: str = "d") -> tuple[str, list[Any]]:
        """SQL condition on the decisions table for these filters (case-insensitive names)."""
        return filter_sql(filters, alias, "%s")

    def count_matching(self, filters: Filters) -> int:
        """How many decisions these filters allow."""
        where, params = self.filter_sql(filters)
        return int(self._one(f"SELECT count(*) FROM decisions d WHERE {where}", params)[0])

    def doc_ids_matching(self, filters: Filters, limit: int | None = None) -> list[str]:
        """Document ids these filters allow, the newest decisions first (undated last), at most `limit`."""
        where, params = self.filter_sql(filters)
        return [r[0] for r in self._rows(*limited(f"SELECT doc_id FROM decisions d WHERE {where} {NEWEST_FIRST}",
                                                  params, limit, "%s"))]

    def document_frequency(self, terms: Sequence[str]) -> dict[str, int]:
        """How many chunks contain each (Porter-stemmed) term, through the (first) lexeme PostgreSQL makes of it
        (absent terms are left out). Cached until the catalog changes."""
        if not terms:
            return {}
        with self._lock:
            lex, ldf = self._lexemes_and_counts(terms)
            return {t: ldf[lex[t][0]] for t in terms if lex[t] and ldf[lex[t][0]]}

    def _lexemes_and_counts(self, terms: Sequence[str]) -> tuple[dict[str, list[str]], dict[str, int]]:
        """The cached maps term -> its lexemes and lexeme -> chunks holding it, filled for these terms. Call with
        the lock."""
        cache = self._stats()
        lex, ldf = cache["lex"], cache["ldf"]
        missing = [t for t in dict.fromkeys(terms) if t not in lex]
        if missing:
            for t in missing:
                lex[t] = []
            for term, lexeme in self._conn.execute(
                    "SELECT t.word, u.lexeme FROM unnest(%s::text[]) AS t(word), "
                    "unnest(to_tsvector('english', t.word)) AS u", (missing,)).fetchall():
                lex[term].append(lexeme)
        unknown = list(dict.fromkeys(x for t in terms for x in lex[t] if x not in ldf))
        if unknown:
            ldf.update({x: 0 for x in unknown})
            ldf.update(dict(self._conn.execute("SELECT lexeme, count(*) FROM chunk_terms WHERE lexeme = ANY(%s) "
                                               "GROUP BY lexeme", (unknown,)).fetchall()))
        return lex, ldf

    def term_counts(self) -> dict[str, int]:
        """Every indexed lexeme (Snowball English) and how many chunks contain it."""
        return {r[0]: int(r[1]) for r in self._rows("SELECT lexeme, count(*) FROM chunk_terms GROUP BY lexeme")}

    def lexical_search(self, terms: Sequence[str], limit: int, filters: Filters | None = None,
                       header_weight: float = 0.5) -> list[tuple[str, float]]:
        """BM25 over chunk header and text: [(chunk_id, score)] best first (higher is better)."""
        if not terms:
            return []
        terms = prune_common_terms(terms, self.document_frequency, self.count_chunks)
        lexemes = self._query_lexemes(terms)
        if not lexemes:
            return []
        n, avgdl = self._corpus()
        idf = [max(math.log((n - df + 0.5) / (df + 0.5)), 1e-6) for df in lexemes.values()]
        where, params = self.filter_sql(filters or Filters())
        sql = _LEXICAL.format(k1=BM25_K1, b=BM25_B, filtered=_FILTERED.format(where=where) if params else "")
        rows = self._rows(sql, [header_weight, header_weight, avgdl, list(lexemes), idf, *params, limit])
        return [(r[0], float(r[1])) for r in rows]

    def _query_lexemes(self, terms: Sequence[str]) -> dict[str, int]:
        """Every lexeme PostgreSQL makes of these (Porter-stemmed) terms, each with how many chunks hold it (absent
        ones left out). Cached until the catalog changes."""
        with self._lock:
            lex, ldf = self._lexemes_and_counts(terms)
            wanted = dict.fromkeys(x for t in terms for x in lex[t])
            return {x: int(ldf[x]) for x in wanted if ldf[x]}

    def _corpus(self) -> tuple[float, float]:
        """Chunks in the catalog and their average length in tokens (BM25's N and avgdl), cached."""
        with self._lock:
            stats = self._stats()
            if "corpus" not in stats:
                n, avgdl = self._conn.execute(
                    "SELECT count(*)::float8, greatest(coalesce(avg(n_tokens), 1), 1)::float8 FROM chunks").fetchone()
                stats["corpus"] = (float(n), float(avgdl))
            return stats["corpus"]

    def sentence_vectors(self, doc_ids: Iterable[str]) -> dict[str, SentenceVectors]:
        """The stored sentence vectors of these decisions."""
        ids = list(dict.fromkeys(doc_ids))
        if not ids:
            return {}
        out: dict[str, SentenceVectors] = {}
        for doc_id, items_json, dim, blob in self._rows(
                "SELECT doc_id, items, dim, vectors FROM sentence_vectors WHERE doc_id = ANY(%s)", (ids,)):
            items = tuple((int(n), str(t)) for n, t in json.loads(items_json))
            matrix = np.frombuffer(bytes(blob), dtype="<f2")
            if matrix.size != len(items) * int(dim):
                log.warning("sentence vectors of %s are damaged (%d values for %d sentences); ignoring them",
                            doc_id, matrix.size, len(items))
                continue
            out[doc_id] = SentenceVectors(doc_id, items, matrix.reshape(len(items), int(dim)))
        return out

    def count_sentence_vectors(self) -> int:
        """Decisions with stored sentence vectors."""
        return int(self._one("SELECT count(*) FROM sentence_vectors")[0])

    # writes --------------------------------------------------------------------------------------
    def _insert(self, conn: Any, d: Decision, chunks: Sequence[Chunk], sv: SentenceVectors | None, now: str) -> None:
        conn.execute("DELETE FROM decisions WHERE doc_id=%s", (d.doc_id,))  # chunks, terms, vectors cascade
        conn.execute(
            "INSERT INTO decisions(doc_id, case_number, authority, category, subcategory, outcome, decision_date, "
            "date_int, summary, url, source_path, content_hash, fictional, n_chunks, ingested_at, data) VALUES "
            "(%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
            (d.doc_id, d.case_number, d.authority, d.category, d.subcategory, d.outcome,
             d.decision_date.isoformat() if d.decision_date else None,
             int(d.decision_date.strftime("%Y%m%d")) if d.decision_date else None,
             d.summary, d.url, d.source_path, d.content_hash, bool(d.fictional), len(chunks), now,
             json.dumps(d.to_dict(), ensure_ascii=False)))
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO chunks(chunk_id, doc_id, position, section, paragraphs, header, text, meta, n_tokens) "
                "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                [(c.chunk_id, c.doc_id, c.position, c.section, json.dumps(list(c.paragraphs)), c.header, c.text,
                  json.dumps(c.metadata, ensure_ascii=False), len(_TOKEN.findall(c.header)) +
                  len(_TOKEN.findall(c.text))) for c in chunks])
        if chunks:
            conn.execute(_FILL_TERMS, (d.doc_id,))
        if sv is not None:
            matrix = np.ascontiguousarray(sv.vectors, dtype="<f2")
            conn.execute("INSERT INTO sentence_vectors(doc_id, items, dim, vectors) VALUES (%s,%s,%s,%s)",
                         (d.doc_id, json.dumps(sv.items, ensure_ascii=False), int(matrix.shape[1]),
                          matrix.tobytes()))

    def replace_decisions(self, items: Sequence[tuple[Decision, Sequence[Chunk]]],
                          sentences: Mapping[str, SentenceVectors] | None = None) -> None:
        """Insert or replace decisions, all their chunks and their sentence vectors in one transaction."""
        now = _now()
        with self._lock, self._conn.transaction():
            for decision, chunks in items:
                self._insert(self._conn, decision, chunks, (sentences or {}).get(decision.doc_id), now)
            self._changed(self._conn)

    def update_source(self, doc_id: str, source_path: str) -> None:
        """Record that a decision's file moved (content unchanged)."""
        with self._lock:
            self._conn.execute("UPDATE decisions SET source_path=%s WHERE doc_id=%s", (source_path, doc_id))

    def delete_decisions(self, doc_ids: Sequence[str]) -> list[str]:
        """Remove decisions and their chunks in one transaction; returns the chunk ids removed."""
        with self._lock, self._conn.transaction():
            removed = [r[0] for r in self._conn.execute(
                "SELECT chunk_id FROM chunks WHERE doc_id = ANY(%s) ORDER BY doc_id, position",
                (list(doc_ids),)).fetchall()]
            self._conn.execute("DELETE FROM decisions WHERE doc_id = ANY(%s)", (list(doc_ids),))
            self._changed(self._conn)
        return removed

    def start_run(self) -> int:
        """Record the start of an ingest run."""
        row = self._one("INSERT INTO runs(started_at, status) VALUES (%s, 'running') RETURNING id", (_now(),))
        return int(row[0])

    def finish_run(self, run_id: int, summary: dict[str, Any]) -> None:
        """Record the end of an ingest run with its summary, then optimize()."""
        with self._lock:
            self._conn.execute("UPDATE runs SET finished_at=%s, status='done', summary=%s WHERE id=%s",
                               (_now(), json.dumps(summary), run_id))
        self.optimize()

    def optimize(self) -> None:
        """VACUUM and ANALYZE the tables lexical search reads. Its postings are read from their index alone only
        where PostgreSQL's visibility map marks the pages all-visible, which new rows are not until a vacuum: at
        100 002 chunks straight after writing, lexical search p50 was 503 ms; after this, 37 ms (bench/NOTES.md
        §12). Autovacuum would get there too, later; VACUUM skips pages already all-visible, so after a small
        ingest it is quick."""
        with self._lock:
            for table in ("chunk_terms", "chunks", "decisions"):
                self._conn.execute(f"VACUUM (ANALYZE) {table}")

    def clear(self) -> None:
        """Remove every decision and chunk, and the meta but the schema version (used by --rebuild)."""
        with self._lock, self._conn.transaction():
            self._conn.execute("TRUNCATE browse_terms, browse_docs, chunk_terms, sentence_vectors, chunks, decisions")
            self._conn.execute("DELETE FROM meta WHERE key NOT IN ('schema_version', 'generation')")
            self._changed(self._conn)



def _guarded(method):
    """psycopg errors met while reading or writing as IndexStateError naming the server (a server restarted or
    stopped mid-answer must reach people as what to check, not as a traceback)."""
    if inspect.isgeneratorfunction(method):
        @functools.wraps(method)
        def generator(self, *args, **kwargs):
            try:
                yield from method(self, *args, **kwargs)
            except psycopg.Error as exc:
                raise _failed(self, exc) from None
        return generator

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except psycopg.Error as exc:
            raise _failed(self, exc) from None
    return wrapper


def _failed(catalog: PgCatalog, exc: psycopg.Error) -> IndexStateError:
    """The error to raise; a connection the server dropped (restart, failover) is replaced for the next call."""
    with catalog._lock:
        if catalog._conn.broken:
            try:
                catalog._conn = raw_connect(catalog.url)
            except psycopg.Error:
                pass  # still down: the next call fails the same way and tries again
    return IndexStateError(
        f"The PostgreSQL catalog at {catalog.location} failed ({type(exc).__name__}: {str(exc).strip()[:160]}). "
        "Check that the server is running and reachable; the next request reconnects.")


for _name, _method in list(vars(PgCatalog).items()):
    if inspect.isfunction(_method) and not _name.startswith("_") and _name != "close":
        setattr(PgCatalog, _name, _guarded(_method))
