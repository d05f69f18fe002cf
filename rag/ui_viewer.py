"""What the decision viewer and the decisions browser show, as pure functions returning HTML.

Jinja2 templates with autoescape: every value from a decision or a person is escaped by the template engine;
the only markup is the templates'. Links that open a decision are ordinary addresses (`?case=23-009-429`) that
staff can copy and share; the page's script (rag/ui_assets.py) opens them in place instead of reloading.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import urlencode

from jinja2 import Environment, select_autoescape

from core.casenum import case_number_slug
from core.types import Decision
from rag.browse import BrowsePage, BrowseQuery
from rag.similar import SimilarDecision
from rag.ui_render import describe_filters, format_date, safe_url

_ENV = Environment(autoescape=select_autoescape(default=True, default_for_string=True), trim_blocks=True,
                   lstrip_blocks=True)
_ENV.filters["date"] = format_date
_ENV.filters["num"] = "{:,}".format


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


_VIEWER = _ENV.from_string("""
<article class="viewer" aria-labelledby="viewer-title" data-doc="{{ d.doc_id }}" data-ref="{{ ref }}"
  data-focus="{{ focus or '' }}">
  <header class="viewer-head">
    <p class="viewer-kicker">Decision</p>
    <h2 id="viewer-title" class="viewer-title">{{ d.label }}</h2>
    <dl class="viewer-facts">
      <div><dt>Council</dt><dd>{{ d.authority or "Not stated" }}</dd></div>
      <div><dt>Category</dt><dd>{{ category or "Not stated" }}</dd></div>
      <div><dt>Outcome</dt><dd>{{ d.outcome or "Not stated" }}</dd></div>
      <div><dt>Decided</dt><dd>{{ (d.decision_date | date) or "Not stated" }}</dd></div>
    </dl>
    <p class="viewer-links">
      {% if url %}<a href="{{ url }}" target="_blank" rel="noopener noreferrer nofollow">Published decision:
        {{ url }}<span class="visually-hidden"> (opens in a new tab)</span></a><br>{% endif %}
      <a class="viewer-share" href="{{ share }}" data-open-ref="{{ ref }}" data-paras="{{ paras_csv }}">Link to this
        decision</a><span class="viewer-hint"> — copy it to share; it opens this decision{% if cited %} with the
        cited paragraphs marked{% endif %}.</span>
    </p>
    {% if cited %}
    <p class="viewer-cited-note" role="note">Cited in the answer:
      {% for n in cited %}<a href="#vp-{{ n }}" class="viewer-jump" data-para="{{ n }}">¶{{ n }}</a>
      {%- if not loop.last %}, {% endif %}{% endfor %}
      — marked <span class="cited-badge">Cited</span> below.
      {% if missing %}<br>This decision has no paragraph {{ missing | join(", ") }}.{% endif %}</p>
    {% endif %}
  </header>
  {% if d.summary %}
  <section class="viewer-section" aria-labelledby="vs-summary">
    <h3 id="vs-summary">Summary</h3>
    <p class="viewer-summary">{{ d.summary }}</p>
  </section>
  {% endif %}
  {% for s in d.sections %}
  <section class="viewer-section" aria-labelledby="vs-{{ loop.index }}">
    <h3 id="vs-{{ loop.index }}">{{ s.name }}</h3>
    {% for p in s.paragraphs %}
    {% if p.subheading %}<h4 class="viewer-subheading">{{ p.subheading }}</h4>{% endif %}
    <p class="vpara{% if p.number in cited %} cited{% endif %}" id="vp-{{ p.number }}" tabindex="-1"
      data-para="{{ p.number }}"><span class="vnum" aria-label="Paragraph {{ p.number }}">{{ p.number }}</span>
      {% if p.number in cited %}<span class="cited-badge">Cited</span> {% endif %}{{ p.text }}</p>
    {% endfor %}
  </section>
  {% endfor %}
  {% if not d.sections %}<p class="viewer-empty">This decision has no numbered paragraphs.</p>{% endif %}
  <section class="viewer-section viewer-similar" aria-labelledby="vs-similar" id="viewer-similar">
    <h3 id="vs-similar">Similar decisions</h3>
    {% if similar %}
    <ul class="similar-list">
      {% for s in similar %}
      <li><a href="{{ s.href }}" data-open-ref="{{ s.ref }}" class="similar-link">{{ s.label }}</a>
        <span class="similar-meta">{{ s.authority or "Council not stated" }} · {{ s.outcome or "Outcome not stated" }}
        · {{ (s.decision_date | date) or "date not stated" }}</span>
        {% if s.first %}<span class="similar-summary">{{ s.first }}</span>{% endif %}</li>
      {% endfor %}
    </ul>
    {% elif similar is none %}<p class="viewer-empty">Similar decisions could not be looked up just now (the
      vector index did not answer); the decision itself is complete.</p>
    {% else %}<p class="viewer-empty">No other decision in the index is close to this one.</p>{% endif %}
  </section>
</article>
""")

_VIEWER_EMPTY = _ENV.from_string("""
<div class="viewer viewer-placeholder">
  <h2 class="viewer-title">{{ title }}</h2>
  <p>{{ message }}</p>
</div>
""")


def viewer_html(decision: Decision, cited: Sequence[int] = (), focus: int | None = None,
                similar: Sequence[SimilarDecision] | None = ()) -> str:
    """The whole decision: header, every section and numbered paragraph (the cited ones marked), similar ones
    (None: they could not be looked up)."""
    from rag.browse import first_sentence

    have = {p.number for p in decision.paragraphs}
    cited_here = [n for n in cited if n in have]
    missing = [n for n in cited if n not in have]
    ref = decision_ref(decision.case_number, decision.doc_id)
    neighbours = [{"label": s.label, "ref": decision_ref(s.label if s.label != s.doc_id else None, s.doc_id),
                   "href": decision_href(decision_ref(s.label if s.label != s.doc_id else None, s.doc_id)),
                   "authority": s.authority, "outcome": s.outcome, "decision_date": s.decision_date,
                   "first": first_sentence(s.summary, 160)} for s in similar or ()]
    category = decision.category_path
    return _VIEWER.render(d=decision, ref=ref, cited=cited_here, missing=missing, category=category,
                          focus=focus if focus in have else (cited_here[0] if cited_here else None),
                          url=safe_url(decision.url), share=decision_href(ref, cited_here),
                          paras_csv=",".join(str(n) for n in cited_here),
                          similar=None if similar is None else neighbours).strip()


def viewer_placeholder(message: str = "Open a decision from a citation, a source card or the decisions browser "
                                      "to read it here in full.", title: str = "No decision open") -> str:
    """The viewer before a decision is opened, or when one cannot be found."""
    return _VIEWER_EMPTY.render(title=title, message=message).strip()


_TABLE = _ENV.from_string("""
<div class="browse-results">
  <p class="browse-count" role="status" aria-live="polite">
    {% if page.total %}<strong>{{ page.total | num }}</strong> decision{{ "s" if page.total != 1 }}
    match{{ "es" if page.total == 1 }}{% if wording %} ({{ wording }}){% endif %}; showing
    {{ page.first | num }}–{{ page.last | num }}, page {{ page.query.page | num }} of {{ page.pages | num }},
    sorted by {{ "relevance" if page.sorted_by == "relevance" else "date, newest first" }}.
    {% else %}No decision matches{% if wording %} ({{ wording }}){% endif %}. Try fewer words or clear a filter.
    {% endif %}
    <a class="browse-share" href="{{ share }}">Link to this search</a></p>
  {% if page.rows %}
  <table class="browse-table">
    <caption class="visually-hidden">Matching decisions, page {{ page.query.page }} of {{ page.pages }}</caption>
    <thead><tr><th scope="col">Case number</th><th scope="col">Council</th><th scope="col">Category</th>
      <th scope="col">Outcome</th><th scope="col">Decided</th><th scope="col">Summary</th></tr></thead>
    <tbody>
    {% for r in page.rows %}
      <tr data-open-ref="{{ r.link_ref }}">
        <th scope="row"><a href="?case={{ r.link_ref | urlencode }}" data-open-ref="{{ r.link_ref }}"
          class="browse-open">{{ r.label }}</a></th>
        <td>{{ r.authority or "—" }}</td><td>{{ r.category_label or "—" }}</td><td>{{ r.outcome or "—" }}</td>
        <td class="browse-date">{{ (r.decision_date | date) or "—" }}</td><td>{{ r.first_sentence }}</td>
      </tr>
    {% endfor %}
    </tbody>
  </table>
  {% endif %}
</div>
""")


def browse_table_html(page: BrowsePage) -> str:
    """The count of matches, a link to the search, and the page of decisions as an HTML table."""
    words = page.query.text.strip()
    wording = "; ".join(x for x in ((f"words: {words}" if words else ""), describe_filters(page.query.filters)) if x)
    return _TABLE.render(page=page, wording=wording, share=browse_href(page.query)).strip()


def browse_message_html(message: str) -> str:
    """A message in place of the table (bad input, no index)."""
    return _ENV.from_string('<div class="browse-results"><p class="browse-count browse-error" role="alert">'
                            '{{ m }}</p></div>').render(m=message)


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
