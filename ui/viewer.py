"""What the decision viewer and the decisions browser show, as pure functions returning HTML.

The markup is in ui/templates/ (viewer.html, browse_table.html ...), autoescaped: every value from a decision or a
person is escaped by the template engine. Links that open a decision are ordinary addresses (`?case=23-009-429`)
that staff can copy and share; the page's script (ui/static/app.js) opens them in place instead of reloading.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import urlencode

from core.casenum import case_number_slug
from core.types import Decision
from rag.browse import BrowsePage, BrowseQuery, first_sentence
from rag.similar import SimilarDecision
from ui.format import describe_filters, safe_url
from ui.templating import render


def decision_ref(case_number: str | None, doc_id: str) -> str:
    """What ?case= takes: the case number with hyphens, or the document id when it has none."""
    return case_number_slug(case_number) if case_number else doc_id


def decision_href(ref: str, paragraphs: Sequence[int] = ()) -> str:
    """The shareable address of a decision (relative to the app), with its cited paragraphs."""
    params = {"case": ref}
    if paragraphs:
        params["para"] = ",".join(str(p) for p in paragraphs)
    return "?" + urlencode(params)


def browse_href(query: BrowseQuery) -> str:
    """The shareable address of a browser search."""
    return "?" + urlencode(query.to_params())


def parse_paragraphs(text: str | None, limit: int = 50) -> tuple[int, ...]:
    """'7,8, 12' -> (7, 8, 12); anything that is not a paragraph number is ignored."""
    out: list[int] = []
    for part in (text or "").replace(" ", ",").split(","):
        if part.isdigit() and 0 < int(part) < 100_000 and int(part) not in out:
            out.append(int(part))
    return tuple(out[:limit])


def viewer_html(decision: Decision, cited: Sequence[int] = (), focus: int | None = None,
                similar: Sequence[SimilarDecision] | None = ()) -> str:
    """The whole decision: header, every section and numbered paragraph (the cited ones marked), similar ones
    (None: they could not be looked up)."""
    have = {p.number for p in decision.paragraphs}
    cited_here = [n for n in cited if n in have]
    missing = [n for n in cited if n not in have]
    ref = decision_ref(decision.case_number, decision.doc_id)
    neighbours = [_neighbour(s) for s in similar or ()]
    return render("viewer.html", d=decision, ref=ref, cited=cited_here, missing=missing,
                  category=decision.category_path,
                  focus=focus if focus in have else (cited_here[0] if cited_here else None),
                  url=safe_url(decision.url), share=decision_href(ref, cited_here),
                  paras_csv=",".join(str(n) for n in cited_here), similar=None if similar is None else neighbours)


def _neighbour(s: SimilarDecision) -> dict[str, object]:
    ref = decision_ref(s.label if s.label != s.doc_id else None, s.doc_id)
    return {"label": s.label, "ref": ref, "href": decision_href(ref), "authority": s.authority, "outcome": s.outcome,
            "decision_date": s.decision_date, "first": first_sentence(s.summary, 160)}


def viewer_placeholder(message: str = "Open a decision from a citation, a source card or the decisions browser "
                                      "to read it here in full.", title: str = "No decision open") -> str:
    """The viewer before a decision is opened, or when one cannot be found."""
    return render("viewer_placeholder.html", title=title, message=message)


def browse_table_html(page: BrowsePage) -> str:
    """The count of matches, a link to the search, and the page of decisions as an HTML table."""
    words = page.query.text.strip()
    wording = "; ".join(x for x in ((f"words: {words}" if words else ""), describe_filters(page.query.filters)) if x)
    return render("browse_table.html", page=page, wording=wording, share=browse_href(page.query))


def browse_message_html(message: str) -> str:
    """A message in place of the table (bad input, no index)."""
    return render("browse_message.html", message=message)


def query_from_params(params: Mapping[str, str]) -> tuple[str | None, BrowseQuery | None, tuple[int, ...]]:
    """What a shared address asks for: (decision reference, browser search, paragraphs to mark).
    ?case=23-009-429[&para=7] opens a decision; ?view=browse&q=...&authority=... a search."""
    ref = (params.get("case") or "").strip() or None
    paras = parse_paragraphs(params.get("para"))
    query = None
    if params.get("view") == "browse" or any(params.get(k) for k in ("q", "authority", "category", "outcome",
                                                                     "since", "until", "page")):
        query = BrowseQuery.from_params(params)
    return ref, query, paras
