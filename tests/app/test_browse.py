"""The decisions browser over a real catalog, SQLite and PostgreSQL (a throwaway server, tests/pgserver.py): search,
order, filters, paging, CSV, staying in step; and the same searches giving the same decisions in the same order on
both."""

from __future__ import annotations

import csv
import io
import shutil
import sqlite3

import pytest
from conftest import SAMPLE_DIR, build_index

from core.errors import ConfigError, QuestionError
from core.types import Filters
from rag.browse import BrowseQuery, DecisionBrowser, first_sentence, fts_match

from .conftest import HOSTILE_DECISION

# Every browser test runs on both catalogs; the PostgreSQL runs start a server once per session.
CATALOGS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)]


@pytest.fixture(params=CATALOGS)
def catalog_kind(request):
    return request.param


def open_sample_catalog(kind, sample_index_dir, tmp_path, request):
    """A private catalog of this kind holding the five sample decisions (the PostgreSQL one written with the
    same rows as the sample index's SQLite catalog: decisions and chunks)."""
    from ingest.catalog import Catalog

    folder = tmp_path / f"index-{kind}"
    shutil.copytree(sample_index_dir, folder, ignore=shutil.ignore_patterns(".lock"))
    sqlite_catalog = Catalog(folder / "catalog.sqlite", create=False)
    if kind == "sqlite":
        return sqlite_catalog
    from ingest.catalog_pg import PgCatalog

    pg = PgCatalog(request.getfixturevalue("catalog_url"))
    ids = sorted(doc for doc, _ in sqlite_catalog.all_sources())
    decisions = sqlite_catalog.decisions(ids)
    pg.replace_decisions([(decisions[doc], sqlite_catalog.chunks_of(doc)) for doc in ids])
    sqlite_catalog.close()
    return pg


def new_catalog(kind, tmp_path, request):
    """An empty catalog of this kind."""
    from ingest.catalog import Catalog

    if kind == "sqlite":
        return Catalog(tmp_path / "catalog.sqlite")
    from ingest.catalog_pg import PgCatalog

    return PgCatalog(request.getfixturevalue("catalog_url"))


def execute(catalog, sql):
    """Run SQL on the catalog's database behind the catalog's back (as another program would)."""
    from ingest.catalog import Catalog

    if isinstance(catalog, Catalog):
        conn = sqlite3.connect(catalog.path)
        with conn:
            conn.execute(sql)
        conn.close()
        return
    import psycopg

    with psycopg.connect(catalog.url, autocommit=True) as conn:
        conn.execute(sql)


@pytest.fixture
def sample_catalog(catalog_kind, sample_index_dir, tmp_path, request):
    """A private catalog of the sample decisions, opened, with the browse index built: on SQLite now (the shared
    sample index never has one), on PostgreSQL already (its schema's trigger indexed each decision written)."""
    catalog = open_sample_catalog(catalog_kind, sample_index_dir, tmp_path, request)
    browser = DecisionBrowser(catalog)
    assert browser.ensure_index() == (5 if catalog_kind == "sqlite" else 0)
    yield catalog, browser
    browser.close()
    catalog.close()


@pytest.fixture
def big_catalog(catalog_kind, tmp_path, request):
    """A catalog of 130 synthetic decisions written as rows (what the benchmark does at 50 000)."""
    from bench.browse import fill_catalog

    catalog = new_catalog(catalog_kind, tmp_path, request)
    fill_catalog(catalog, 130)
    browser = DecisionBrowser(catalog)
    browser.ensure_index()
    yield catalog, browser
    browser.close()
    catalog.close()


def labels(page):
    return [r.label for r in page.rows]


def test_without_words_newest_first_with_count(sample_catalog):
    _, browser = sample_catalog
    page = browser.search(BrowseQuery())
    assert page.total == 5 and page.pages == 1 and page.sorted_by == "date"
    assert labels(page) == ["24 005 748", "23 009 429", "20 011 198", "18 009 917", "002_7d099216e168a9a0"]
    first = page.rows[0]
    assert first.authority == "Hampshire County Council" and first.outcome == "Closed after initial enquiries"
    assert first.first_sentence.startswith("We will not investigate this complaint")
    assert first.first_sentence.endswith(".")


def test_words_rank_by_relevance_and_every_word_must_match(sample_catalog):
    _, browser = sample_catalog
    page = browser.search(BrowseQuery("disclosing address"))
    assert labels(page) == ["18 009 917"] and page.sorted_by == "relevance"
    # stemmed: "rectifications" finds "rectification"; all three decisions that mention it
    assert set(labels(browser.search(BrowseQuery("rectifications")))) == {"23 009 429", "24 005 748",
                                                                          "002_7d099216e168a9a0"}
    assert browser.search(BrowseQuery("rectification zebra")).total == 0
    # a phrase must appear as written
    assert browser.search(BrowseQuery('"child protection conference"')).total >= 1
    assert browser.search(BrowseQuery('"conference protection child"')).total == 0


def test_case_number_in_any_spelling_and_filters(sample_catalog):
    _, browser = sample_catalog
    for spelling in ("23 009 429", "23-009-429", "23009429"):
        assert labels(browser.search(BrowseQuery(spelling))) == ["23 009 429"]
    hants = browser.search(BrowseQuery(filters=Filters(authority="hampshire county council")))
    assert labels(hants) == ["24 005 748", "20 011 198"]
    hants_2021 = Filters(authority="Hampshire County Council", since="2021-01-01", until="2021-12-31")
    assert labels(browser.search(BrowseQuery("data", hants_2021))) == ["20 011 198"]
    assert labels(browser.search(BrowseQuery(filters=Filters(outcome="Upheld")))) == ["18 009 917"]
    assert browser.search(BrowseQuery(filters=Filters(category="Children's care services > Child protection"))
                          ).total == 1


def test_results_are_cached_and_pages_are_slices_of_one_ranking(big_catalog):
    _, browser = big_catalog
    q = BrowseQuery("council", page_size=10)
    first = browser.search(q)
    assert len(browser._results) == 1
    again = [label for n in range(1, first.pages + 1) for label in labels(browser.search(q.with_page(n)))]
    assert len(browser._results) == 1 and len(again) == first.total  # every page from the one cached ranking
    browser.forget_results()
    assert labels(browser.search(q.with_page(2))) == again[10:20]  # computed afresh: the same order


@pytest.mark.parametrize("text", ['"', "NEAR(a b)", "a* OR", "col:umn", "AND", "-", "^x", "'); DROP TABLE x;--"])
def test_search_syntax_is_never_read_as_fts5(sample_catalog, text):
    _, browser = sample_catalog
    page = browser.search(BrowseQuery(text))  # no exception: every word is quoted, the rest dropped
    assert page.total >= 0
    match = fts_match(text)
    assert match is None or all(part.startswith('"') and part.endswith('"') for part in match.split(" AND "))


def test_bad_input_is_a_clear_error():
    with pytest.raises(QuestionError, match="under 300"):
        BrowseQuery("x" * 301)
    with pytest.raises(QuestionError, match="numbered from 1"):
        BrowseQuery(page=0)
    with pytest.raises(QuestionError, match="not a number"):
        BrowseQuery.from_params({"q": "noise", "page": "two"})
    with pytest.raises(ConfigError, match="YYYY-MM-DD"):
        BrowseQuery.from_params({"since": "last year"})


def test_paging_covers_every_match_once_and_clamps(big_catalog):
    _, browser = big_catalog
    first = browser.search(BrowseQuery(page_size=25))
    assert first.total == 130 and first.pages == 6 and (first.first, first.last) == (1, 25)
    seen = []
    for n in range(1, first.pages + 1):
        seen += labels(browser.search(BrowseQuery(page=n, page_size=25)))
    assert len(seen) == 130 == len(set(seen))
    dates = [r.decision_date for n in (1, 2) for r in browser.search(BrowseQuery(page=n)).rows]
    assert dates == sorted(dates, reverse=True)
    past = browser.search(BrowseQuery(page=99))
    assert past.query.page == 6 and len(past.rows) == 130 - 5 * 25
    # with words: the pages together are the whole (relevance-ordered) result
    q = BrowseQuery("council", page_size=20)
    total = browser.search(q).total
    got = [label for n in range(1, -(-total // 20) + 1) for label in labels(browser.search(q.with_page(n)))]
    assert len(got) == total == len(set(got)) > 20


def test_csv_is_the_whole_result_with_a_header(big_catalog):
    _, browser = big_catalog
    q = BrowseQuery("council", page_size=10)
    out = io.StringIO()
    n = browser.write_csv(q, out)
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[0] == ["case_number", "council", "category", "outcome", "decision_date", "first_sentence", "url",
                       "doc_id"]
    assert n == len(rows) - 1 == browser.search(q).total > 10
    assert [r[0] for r in rows[1:11]] == labels(browser.search(q))  # same order as the table


def test_csv_cells_cannot_become_formulas(tmp_path):
    from rag.browse import _csv_safe

    assert _csv_safe("=HYPERLINK(1)") == "'=HYPERLINK(1)" and _csv_safe("@x") == "'@x" and _csv_safe("ok") == "ok"


def test_ingest_and_prune_keep_the_browser_in_step(catalog_kind, sample_index_dir, embedder, make_settings,
                                                  tmp_path, request):
    """Once the browse index exists, its triggers follow every later ingest, change and removal."""
    from ingest.catalog import open_catalog
    from ingest.index import Indexer, open_index

    if catalog_kind == "sqlite":
        shutil.copytree(sample_index_dir, tmp_path / "index", ignore=shutil.ignore_patterns(".lock"))
        settings = make_settings()
    else:
        settings = make_settings(catalog_url=request.getfixturevalue("catalog_url"))
        build_index(settings, [SAMPLE_DIR], embedder)
    catalog = open_catalog(settings, create=False)
    browser = DecisionBrowser(catalog)
    browser.ensure_index()
    assert browser.search(BrowseQuery("bin collection")).total == 0
    assert browser.search(BrowseQuery()).total == 5  # both results now cached: they must not be served stale

    extra = tmp_path / "extra"
    extra.mkdir()
    shutil.copyfile(HOSTILE_DECISION, extra / "hostile_decision.txt")
    build_index(settings, [extra], embedder)
    assert labels(browser.search(BrowseQuery("bin collection"))) == ["25 000 111"]
    assert browser.search(BrowseQuery()).total == 6

    # removing a decision's file and pruning removes it from the browser too
    (extra / "hostile_decision.txt").unlink()
    index = open_index(settings, write=True, embedder=embedder)
    try:
        Indexer(index).ingest([SAMPLE_DIR], prune=True)
    finally:
        index.close()
    assert browser.search(BrowseQuery("bin collection")).total == 0
    assert browser.search(BrowseQuery()).total == 5
    browser.close()
    catalog.close()


def test_an_out_of_step_index_is_rebuilt(sample_catalog):
    catalog, browser = sample_catalog
    execute(catalog, "DELETE FROM browse_docs WHERE doc_id = '18-009-917'")
    assert browser.ensure_index() == 5  # counts differ: rebuilt
    assert browser.ensure_index() == 0  # in step: nothing to do
    assert labels(browser.search(BrowseQuery("disclosing address"))) == ["18 009 917"]


def test_resolve_and_decision(sample_catalog):
    _, browser = sample_catalog
    assert browser.resolve("23 009 429") == browser.resolve("23009429") == "23-009-429"
    assert browser.resolve("002_7d099216e168a9a0") == "002_7d099216e168a9a0"
    assert browser.resolve("99 999 999") is None and browser.resolve("") is None
    d = browser.decision("23-009-429")
    assert d is not None and d.paragraph(8) is not None


def test_first_sentence():
    assert first_sentence("Mr X complained. The Council was at fault.") == "Mr X complained."
    assert first_sentence("Mrs. Y said no. Then more.") == "Mrs. Y said no."
    assert first_sentence(None) == ""
    assert first_sentence("word " * 100).endswith("…")


def test_shared_search_round_trips():
    q = BrowseQuery("school transport", Filters(authority="Kent County Council", since="2023-01-01"), page=3)
    assert BrowseQuery.from_params(q.to_params()) == q


def vocabulary(catalog):
    """Every indexed term of the browse index and how many decisions hold it."""
    from ingest.catalog import Catalog

    if isinstance(catalog, Catalog):
        conn = sqlite3.connect(catalog.path)
        conn.execute("CREATE VIRTUAL TABLE temp.v USING fts5vocab(main, browse_fts, 'row')")
        terms = dict(conn.execute("SELECT term, doc FROM temp.v").fetchall())
        conn.close()
        return terms
    import psycopg

    with psycopg.connect(catalog.url) as conn:
        return dict(conn.execute("SELECT lexeme, count(*) FROM browse_terms GROUP BY lexeme").fetchall())


# Searches that exercise every part of the ranking: rare and common words, words in the heading, the summary and
# the text, stopwords (PostgreSQL's English list is not used: they match on both), short words (FTS5 does not stem
# them), phrases, filters, a case number, none.
SAME_SEARCHES = [
    BrowseQuery(), BrowseQuery("council"), BrowseQuery("the council"), BrowseQuery("rectifications"),
    BrowseQuery("data protection"), BrowseQuery('"data protection"'), BrowseQuery("disclosing address"),
    BrowseQuery("apology"), BrowseQuery("apologies"), BrowseQuery("delays"), BrowseQuery("is"), BrowseQuery("us"),
    BrowseQuery("not investigate"), BrowseQuery('"child protection conference"'), BrowseQuery("fault injustice"),
    BrowseQuery("school transport"), BrowseQuery("council tax"), BrowseQuery("noise nuisance"),
    BrowseQuery('"statutory nuisance"'), BrowseQuery("complaint", Filters(authority="Hampshire County Council")),
    BrowseQuery("council", Filters(since="2020-01-01", until="2023-12-31")), BrowseQuery("23009429"),
    BrowseQuery(filters=Filters(outcome="Upheld")), BrowseQuery("planning housing"), BrowseQuery("’s council’s"),
]
# Where PostgreSQL's Snowball build of Porter's stemmer spells a stem differently from FTS5's (Porter's own C
# version, which turns "-logi" into "-log"): the same words share the stem on both, so searches find the same.
STEM_SPELLINGS = {"apolog": "apologi", "technolog": "technologi"}


@pytest.mark.slow
@pytest.mark.parametrize("synthetic", [0, 130])
def test_the_same_searches_give_the_same_decisions_in_the_same_order(sample_index_dir, tmp_path, request, synthetic):
    """The sample decisions (and 130 synthetic ones, with many near-ties) on both catalogs: the same terms in
    the index, and every search the same decisions in the same order (BM25 with FTS5's formula on both)."""
    from bench.browse import fill_catalog

    catalogs = [open_sample_catalog(kind, sample_index_dir, tmp_path, request) for kind in ("sqlite", "postgresql")]
    browsers = [DecisionBrowser(catalog) for catalog in catalogs]
    for catalog, browser in zip(catalogs, browsers):
        fill_catalog(catalog, synthetic)
        browser.ensure_index()
    try:
        sqlite_terms, pg_terms = (vocabulary(catalog) for catalog in catalogs)
        assert {STEM_SPELLINGS.get(t, t): n for t, n in sqlite_terms.items()} == pg_terms
        for query in SAME_SEARCHES:
            sqlite_ids, pg_ids = ([r.doc_id for r in browser.iter_rows(query)] for browser in browsers)
            assert sqlite_ids == pg_ids, query
        assert sum(1 for q in SAME_SEARCHES if browsers[1].search(q).total) >= len(SAME_SEARCHES) - 8
    finally:
        for catalog, browser in zip(catalogs, browsers):
            browser.close()
            catalog.close()
