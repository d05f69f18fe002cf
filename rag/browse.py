"""Browsing the catalog: find decisions by keyword and filters, page through them, export them, open one.

One `DecisionBrowser` for both catalogs: it answers a search once in full, caches the ranked ids until the
catalog changes, and serves pages and the CSV export from them. What depends on the catalog — its search index,
the SQL of a search and the row look-ups — is a small backend (rag/browse_index.py: an FTS5 index in the SQLite
file; rag/browse_pg.py: PostgreSQL's own text search), chosen by the catalog's type; both rank alike.
`DecisionBrowser.ensure_index()` creates or brings the backend's index in step when the app starts.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import threading
import time
from array import array
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from core.casenum import case_number_slug, normalise_case_number
from core.errors import QuestionError
from core.text import split_sentences
from core.types import Decision, DecisionNames, Filters
from ingest.catalog import Catalog
from rag.browse_index import (  # noqa: F401  (fts_match, BM25_WEIGHTS: re-exported for callers)
    BM25_WEIGHTS,
    BrowseIndex,
    SearchSpec,
    fts_match,
    open_browse_index,
    query_parts,
)

if TYPE_CHECKING:
    from ingest.catalog_pg import PgCatalog

log = logging.getLogger(__name__)

PAGE_SIZE = 25
MAX_PAGE_SIZE = 200
MAX_QUERY_CHARS = 300
CSV_COLUMNS = ("case_number", "council", "category", "outcome", "decision_date", "first_sentence", "url", "doc_id")


def first_sentence(text: str | None, limit: int = 240) -> str:
    """The first sentence of a summary (cut at a word boundary if very long); '' for none."""
    sentences = split_sentences(" ".join((text or "").split()))
    text = sentences[0] if sentences else ""
    if len(text) > limit:
        text = text[:limit - 1].rsplit(" ", 1)[0] + "…"
    return text


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
        return "relevance" if query_parts(self.query.text) and not self.query.case_number else "date"


class DecisionBrowser:
    """Keyword and filter search over the catalog's decisions, paged; CSV export; decisions by reference.

    A search is answered once in full — the ids of every matching decision, in the table's order — and that list
    is cached (an array of 8-byte ids: 400 kB for 50 000 matches) until the catalog changes, so the count is its
    length and any page, or the CSV export, is a slice of it plus one indexed look-up.
    """

    def __init__(self, catalog: Catalog | PgCatalog, cache_size: int = 64):
        self.catalog = catalog
        self.path = catalog.path
        self.index: BrowseIndex = open_browse_index(catalog)
        self._cache_lock = threading.Lock()
        self._results: OrderedDict[tuple[Any, ...], array] = OrderedDict()
        self._cache_size = cache_size

    def ensure_index(self) -> int:
        """Create the browse index, or rebuild it when out of step with the catalog. Returns how many decisions
        were (re)indexed (0 when it was already up to date)."""
        n = self.index.ensure_index()
        if n:
            self.forget_results()
        return n

    def forget_results(self) -> None:
        """Drop every cached search result (the next search of each is computed afresh)."""
        with self._cache_lock:
            self._results.clear()

    # searching ---------------------------------------------------------------------------------
    def _spec(self, query: BrowseQuery) -> SearchSpec:
        """The search as the backend takes it: the filters' condition on browse_docs b, and the words, or a case
        number looked up exactly."""
        where, params = self.catalog.filter_sql(query.filters, alias="b")
        case = query.case_number
        if case:
            mark = self.index.mark
            return SearchSpec(f"(b.case_number = {mark} OR b.doc_id = {mark}) AND {where}",
                              (case, case_number_slug(case), *params), ())
        return SearchSpec(where, tuple(params), query_parts(query.text))

    def _ids(self, query: BrowseQuery) -> array:
        """The ids of every matching decision in the table's order, cached per catalog state."""
        generation = self.index.generation()
        key = (query.text.strip().lower(), query.filters, generation)
        if generation is not None:
            with self._cache_lock:
                if key in self._results:
                    self._results.move_to_end(key)
                    return self._results[key]
        ids = self.index.ranked_ids(self._spec(query))
        if generation is not None:
            with self._cache_lock:
                self._results[key] = ids
                while len(self._results) > self._cache_size:
                    self._results.popitem(last=False)
        return ids

    def _rows(self, ids: Sequence[int]) -> list[BrowseRow]:
        """Table rows for these ids, in the order given."""
        found = self.index.rows(ids)
        return [BrowseRow(*found[i]) for i in ids if i in found]

    def search(self, query: BrowseQuery) -> BrowsePage:
        """One page of the decisions matching the query: by relevance with words, by date (newest) without.
        A page past the end is answered with the last page."""
        started = time.perf_counter()
        ids = self._ids(query)
        pages = max(1, -(-len(ids) // query.page_size))
        if query.page > pages:
            query = query.with_page(pages)
        offset = (query.page - 1) * query.page_size
        rows = tuple(self._rows(ids[offset:offset + query.page_size]))
        return BrowsePage(query, rows, len(ids), (time.perf_counter() - started) * 1000)

    def iter_rows(self, query: BrowseQuery, batch: int = 500) -> Iterator[BrowseRow]:
        """Every matching decision in the table's order (the whole result, not one page)."""
        ids = self._ids(query)
        for start in range(0, len(ids), batch):
            yield from self._rows(ids[start:start + batch])

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
        """Close the backend's read connection (on SQLite, this thread's: others close with their threads)."""
        self.index.close()


def _csv_safe(value: str) -> str:
    """Keep a spreadsheet from reading a cell as a formula (=, +, -, @ at the start)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
