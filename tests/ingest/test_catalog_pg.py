"""The catalog on a real PostgreSQL server (tests/pgserver.py): the samples ingested there hold what the SQLite
catalog holds, are searched, filtered and answered from the same way; two ingests at once are refused."""

from __future__ import annotations

import pytest
from conftest import ICO_ANSWERS, SAMPLE_DIR, build_index

from core.errors import ConfigError, IndexBusyError, IndexStateError
from core.settings import load_settings
from core.text import query_terms, stem
from core.types import Filters
from ingest import catalog_pg
from ingest.catalog import Catalog
from ingest.index import Indexer, open_index

pytestmark = pytest.mark.slow


@pytest.fixture
def pg_settings(make_settings, catalog_url):
    return make_settings(catalog_url=catalog_url)


@pytest.fixture
def pg_index(pg_settings, embedder):
    report = build_index(pg_settings, [SAMPLE_DIR], embedder)
    assert report.added == 5 and report.failed == 0, report
    index = open_index(pg_settings, embedder=embedder)
    yield index
    index.close()


@pytest.fixture
def sqlite_catalog(sample_index_dir):
    catalog = Catalog(sample_index_dir / "catalog.sqlite", create=False)
    yield catalog
    catalog.close()


def test_catalog_url_must_be_postgresql():
    with pytest.raises(ConfigError) as err:
        load_settings(catalog_url="mysql://staff:secret@db/ombuds")
    assert "not a PostgreSQL URL" in str(err.value) and "secret" not in str(err.value)
    assert load_settings(catalog_url="").catalog_url is None
    shown = load_settings(catalog_url="postgresql://staff:secret@db:5432/ombuds")
    assert shown.catalog_label == "postgresql://staff:***@db:5432/ombuds"
    assert "secret" not in str(shown.public_dict())


def test_samples_on_postgresql_hold_what_sqlite_holds(pg_index, sqlite_catalog):
    pg = pg_index.catalog
    assert type(pg).__name__ == "PgCatalog" and pg.get_meta("schema_version") == str(catalog_pg.SCHEMA_VERSION)
    assert sorted(pg.all_sources()) == sorted(sqlite_catalog.all_sources())
    assert pg.chunk_ids() == sqlite_catalog.chunk_ids() and pg.count_chunks() == sqlite_catalog.count_chunks()
    ids = [doc for doc, _ in sqlite_catalog.all_sources()]
    assert pg.decisions(ids) == sqlite_catalog.decisions(ids)
    for doc in ids:
        assert pg.chunks_of(doc) == sqlite_catalog.chunks_of(doc)
        assert pg.state(doc) == sqlite_catalog.state(doc)
        assert pg.sentence_vectors([doc])[doc].items == sqlite_catalog.sentence_vectors([doc])[doc].items
    assert pg.docs_by_case_number(["24 005 748"]) == sqlite_catalog.docs_by_case_number(["24 005 748"])
    for column in ("authority", "category", "outcome"):
        assert pg.distinct(column) == sqlite_catalog.distinct(column)
    assert pg.category_paths() == sqlite_catalog.category_paths() == [
        "Children's care services", "Children's care services > Child protection", "Children's care services > Other"]
    assert pg.date_range() == sqlite_catalog.date_range()
    assert pg_index.store.count() == pg.count_chunks()


def test_lexical_search_and_filters(pg_index, sqlite_catalog):
    pg = pg_index.catalog
    terms = query_terms("When does the ICO handle rectification?")
    found = pg.lexical_search(terms, 10)
    assert found and all(score > 0 for _, score in found)
    top = pg.get_chunks([found[0][0]])[found[0][0]]
    assert top.case_number in ICO_ANSWERS or top.doc_id in ICO_ANSWERS
    # Same BM25 formula as FTS5: the same chunks come first (stems differ only at the edges).
    sqlite_top = [cid for cid, _ in sqlite_catalog.lexical_search(terms, 3)]
    assert [cid for cid, _ in found[:3]] == sqlite_top
    authority = pg.distinct("authority")[0]
    allowed = set(pg.doc_ids_matching(Filters(authority=authority.upper())))
    assert allowed == set(sqlite_catalog.doc_ids_matching(Filters(authority=authority)))
    assert pg.count_matching(Filters(authority=authority)) == len(allowed) < pg.count_decisions()
    chunks = pg.get_chunks([cid for cid, _ in pg.lexical_search(["council"], 50, Filters(authority=authority))])
    assert chunks and {c.doc_id for c in chunks.values()} <= allowed
    assert pg.count_matching(Filters(since="2030-01-01")) == 0
    # a listing question's decisions: newest first (undated last), the same order in both catalogs
    newest = pg.doc_ids_matching(Filters(), 10)
    assert newest == sqlite_catalog.doc_ids_matching(Filters(), 10)
    assert set(newest) == set(pg.doc_ids_matching(Filters()))
    dates = [d.decision_date for d in map(pg.decisions(newest).get, newest)]
    assert [x for x in dates if x] == sorted([x for x in dates if x], reverse=True) and dates[-1] is None
    assert pg.doc_ids_matching(Filters(authority=authority), 1) == newest_of(pg, allowed)
    # document frequency of the question's Porter stems, through PostgreSQL's lexemes
    stems = [stem(t) for t in terms]
    assert pg.document_frequency(stems).get("rectif") == sqlite_catalog.document_frequency(stems).get("rectif") > 0
    assert pg.document_frequency(["zzqx"]) == {}


def newest_of(catalog, doc_ids):
    decisions = catalog.decisions(doc_ids)
    return [max(doc_ids, key=lambda d: (decisions[d].decision_date is not None, decisions[d].decision_date))]


def test_reingest_is_unchanged_and_clear_empties(pg_index, pg_settings, embedder):
    pg_index.close()
    index = open_index(pg_settings, write=True, embedder=embedder)
    try:
        report = Indexer(index).ingest([SAMPLE_DIR])
    finally:
        index.close()
    assert (report.unchanged, report.added, report.updated, report.chunks_written) == (5, 0, 0, 0)
    # what --rebuild does to the catalog (in a fresh process: embedded Chroma cannot be wiped under a live client)
    from ingest.catalog import open_catalog

    catalog = open_catalog(pg_settings)
    try:
        catalog.clear()
        assert (catalog.count_decisions(), catalog.count_chunks(), catalog.term_counts()) == (0, 0, {})
        assert catalog.get_meta("schema_version") == str(catalog_pg.SCHEMA_VERSION)
        assert catalog.get_meta("embedding_model") is None
    finally:
        catalog.close()


def test_two_ingests_at_once_are_refused_by_the_database_lock(make_settings, catalog_url, tmp_path, embedder):
    # Two index folders (so no file lock is shared), one PostgreSQL catalog: only the database can refuse.
    first = open_index(make_settings(catalog_url=catalog_url, index_dir=tmp_path / "a"), write=True,
                       embedder=embedder)
    try:
        with pytest.raises(IndexBusyError, match="Another ingest is writing the catalog"):
            open_index(make_settings(catalog_url=catalog_url, index_dir=tmp_path / "b"), write=True,
                       embedder=embedder)
    finally:
        first.close()
    second = open_index(make_settings(catalog_url=catalog_url, index_dir=tmp_path / "b"), write=True,
                        embedder=embedder)
    second.close()


def test_the_writer_lock_connection_notices_a_dead_client_and_skips_jit(pg_index, catalog_url):
    """The settings every catalog connection runs with (ingest/catalog_pg.py _SESSION_OPTIONS): server keepalives,
    so a writer whose machine vanished loses the lock in about 90 s, not two hours; and no JIT compiling."""
    from ingest.catalog_pg import raw_connect

    with raw_connect(catalog_url) as conn:
        got = dict(conn.execute("SELECT name, setting FROM pg_settings WHERE name IN ('jit', 'tcp_keepalives_idle', "
                                "'tcp_keepalives_interval', 'tcp_keepalives_count')").fetchall())
    # keepalive settings read as 0 on a Unix-socket connection; the tests connect over TCP on loopback
    assert got == {"jit": "off", "tcp_keepalives_idle": "60", "tcp_keepalives_interval": "10",
                   "tcp_keepalives_count": "3"}
    assert pg_index.catalog._conn.execute("SHOW jit").fetchone()[0] == "off"


def test_reader_of_an_empty_database_is_told_to_ingest(make_settings, catalog_url, embedder):
    with pytest.raises(IndexStateError, match="ingest decisions first"):
        open_index(make_settings(catalog_url=catalog_url), embedder=embedder, create=False)


def test_unreachable_server_says_so(make_settings, embedder):
    settings = make_settings(catalog_url="postgresql://ombuds:pw@127.0.0.1:9/nothing")
    with pytest.raises(IndexStateError, match="Cannot reach the PostgreSQL catalog") as err:
        open_index(settings, write=True, embedder=embedder)
    assert "pw" not in str(err.value)


def test_assistant_on_postgresql_answers_citing_the_decision(pg_index, pg_settings):
    from rag.assistant import Assistant

    pg_index.close()
    with Assistant.from_settings(pg_settings) as assistant:
        answer = assistant.ask("When does the ICO handle rectification?")
        listing = assistant.ask("List the Hampshire County Council decisions.")
    assert not answer.abstained
    assert "24 005 748" in answer.cited_labels and set(answer.cited_labels) <= ICO_ANSWERS
    # a listing comes from the catalog: the council's decisions, newest first, as on SQLite
    assert listing.cited_labels == ["24 005 748", "20 011 198"]


def test_a_version_1_catalog_migrates_and_its_decisions_are_browsable(catalog_url, sqlite_catalog, monkeypatch):
    """A database written before the browser's tables existed (schema 1) gains them, filled, when a process of
    this version opens it; the browser then finds what it holds without rebuilding anything."""
    from rag.browse import BrowseQuery, DecisionBrowser

    monkeypatch.setattr(catalog_pg, "SCHEMA_VERSION", 1)
    old = catalog_pg.PgCatalog(catalog_url)
    ids = sorted(doc for doc, _ in sqlite_catalog.all_sources())
    decisions = sqlite_catalog.decisions(ids)
    old.replace_decisions([(decisions[doc], []) for doc in ids])
    assert old.get_meta("schema_version") == "1"
    old.close()
    monkeypatch.undo()

    pg = catalog_pg.PgCatalog(catalog_url)
    browser = DecisionBrowser(pg)
    try:
        assert pg.get_meta("schema_version") == str(catalog_pg.SCHEMA_VERSION)
        assert browser.ensure_index() == 0  # the migration filled the browse tables
        assert [r.label for r in browser.search(BrowseQuery("disclosing address")).rows] == ["18 009 917"]
        assert browser.search(BrowseQuery()).total == 5
    finally:
        browser.close()
        pg.close()


def test_a_version_2_catalog_migrates_its_postings_and_searches_the_same(pg_index, sqlite_catalog):
    """Schema 3 puts each chunk's length on its postings (lexical search then reads the postings alone): a
    version-2 database, whose postings lack it, is filled in on start and ranks exactly as before."""
    pg = pg_index.catalog
    questions = ["disclosing address data protection", "council tax enforcement fees", "rectification ICO"]
    before = [pg.lexical_search(query_terms(q), 10) for q in questions]
    filtered = pg.lexical_search(query_terms("complaint delay"), 10, Filters(outcome="Upheld"))
    assert all(before) and filtered
    assert [c for c, _ in filtered] == [c for c, _ in sqlite_catalog.lexical_search(
        query_terms("complaint delay"), 10, Filters(outcome="Upheld"))]
    with psycopg_connect(pg.url) as admin:  # back to what version 2 wrote
        admin.execute("DROP INDEX chunk_terms_scoring")
        admin.execute("ALTER TABLE chunk_terms DROP COLUMN n_tokens")
        admin.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    migrated = catalog_pg.PgCatalog(pg.url)
    try:
        assert migrated.get_meta("schema_version") == str(catalog_pg.SCHEMA_VERSION)
        assert [migrated.lexical_search(query_terms(q), 10) for q in questions] == before
    finally:
        migrated.close()


def test_after_an_ingest_the_postings_are_read_from_their_index_alone(pg_index):
    """finish_run vacuums (PgCatalog.optimize): the scoring index is then read without visiting the table (at
    100 002 chunks that is 503 -> 37 ms p50 of lexical search). The samples are small enough that the planner
    would scan the table, so plain scans are switched off to look at the index path."""
    pg = pg_index.catalog
    lexemes = pg._query_lexemes(query_terms("disclosing address data protection"))
    with psycopg_connect(pg.url) as conn:
        conn.execute("SET enable_seqscan = off")
        conn.execute("SET enable_bitmapscan = off")
        plan = "\n".join(r[0] for r in conn.execute(
            "EXPLAIN (ANALYZE) SELECT chunk, tf_header, tf_text, n_tokens FROM chunk_terms WHERE lexeme = ANY(%s)",
            (list(lexemes),)).fetchall())
    assert "Index Only Scan using chunk_terms_scoring" in plan and "Heap Fetches: 0" in plan, plan


def psycopg_connect(url: str):
    import psycopg

    return psycopg.connect(url, autocommit=True)


def test_a_dropped_connection_is_reported_then_reconnected(pg_index):
    import psycopg

    pg = pg_index.catalog
    with psycopg.connect(pg.url, autocommit=True) as admin:  # what a server restart does to the app's session
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                      "AND datname = current_database() AND application_name = ''")
    with pytest.raises(IndexStateError, match="PostgreSQL catalog at .* failed"):
        pg.count_decisions()
    assert pg.count_decisions() == 5
