"""The viewer's and the browser's HTML: what is shown, what is linked, and that decision text stays text."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from core.errors import ConfigError
from core.types import Decision, Filters, Paragraph, Section
from rag.browse import BrowsePage, BrowseQuery, BrowseRow
from rag.similar import SimilarDecision
from ui.viewer import (
    browse_href,
    browse_message_html,
    browse_table_html,
    decision_href,
    parse_paragraphs,
    query_from_params,
    viewer_html,
    viewer_placeholder,
)

EVIL = '<script>window.__xss=1</script><img src=x onerror="alert(1)">'


def decision(**overrides) -> Decision:
    values = dict(
        doc_id="23-009-429", case_number="23 009 429", authority="Staffordshire County Council",
        category="Children's care services", subcategory="Other", outcome="Closed after initial enquiries",
        decision_date=dt.date(2023, 10, 23), summary="We will not investigate Mr X's complaint. More follows.",
        sections=(Section("The complaint", (Paragraph(1, "Mr X complained."), Paragraph(2, "He wanted a fix."))),
                  Section("Assessment", (Paragraph(3, "The ICO is better placed.", subheading="The law"),
                                         Paragraph(4, "So we stop.")))),
        remedies=(), url="https://www.lgo.org.uk/decisions/x/23-009-429", source_path="x.txt", content_hash="h")
    values.update(overrides)
    return Decision(**values)


def test_viewer_shows_header_every_paragraph_and_marks_the_cited_ones():
    html = viewer_html(decision(), cited=(3,), focus=3)
    assert '<h2 id="viewer-title" class="viewer-title">23 009 429</h2>' in html
    for fact in ("Staffordshire County Council", "Children&#39;s care services &gt; Other",
                 "Closed after initial enquiries", "23 Oct 2023"):
        assert fact in html
    assert 'href="https://www.lgo.org.uk/decisions/x/23-009-429"' in html and 'rel="noopener noreferrer nofollow"' in html
    assert re.findall(r'id="vp-(\d+)"', html) == ["1", "2", "3", "4"]
    assert re.findall(r'class="vpara cited" id="vp-(\d+)"', html) == ["3"]
    assert 'data-focus="3"' in html and "<h4 class=\"viewer-subheading\">The law</h4>" in html
    assert 'href="?case=23-009-429&amp;para=3"' in html  # the shareable address keeps the cited paragraph
    assert "<h3 id=\"vs-summary\">Summary</h3>" in html


def test_viewer_says_when_a_cited_paragraph_does_not_exist_and_focuses_a_real_one():
    html = viewer_html(decision(), cited=(4, 99), focus=99)
    assert "This decision has no paragraph 99." in html and 'data-focus="4"' in html


def test_viewer_escapes_decision_text_and_drops_unsafe_addresses():
    d = decision(case_number=None, doc_id="evil_doc", authority=EVIL, summary=EVIL, url="javascript:alert(1)",
                 sections=(Section(EVIL, (Paragraph(1, EVIL, subheading=EVIL),)),))
    html = viewer_html(d, cited=(1,), similar=[SimilarDecision("other", EVIL, 0.9, EVIL, EVIL, "2020-01-01", EVIL)])
    assert "<script>" not in html and "<img" not in html and "javascript:" not in html
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in html
    assert 'href="?case=evil_doc&amp;para=1"' in html  # no case number: the document id opens it


def test_similar_decisions_listed_with_outcome_and_date():
    near = [SimilarDecision("24-005-748", "24 005 748", 0.8, "Hampshire County Council", "Upheld", "2024-09-22",
                            "The Council was at fault. It apologised.")]
    html = viewer_html(decision(), similar=near)
    assert 'href="?case=24-005-748"' in html and 'data-open-ref="24-005-748"' in html
    assert "Upheld" in html and "22 Sep 2024" in html and "The Council was at fault." in html
    assert "It apologised" not in html  # the first sentence only
    assert "No other decision in the index is close" in viewer_html(decision(), similar=[])


def row(i: int, **overrides) -> BrowseRow:
    values = dict(doc_id=f"20-000-{i:03d}", case_number=f"20 000 {i:03d}", authority="Kent County Council",
                  category="Education", subcategory="School transport", outcome="Upheld",
                  decision_date="2020-05-01", url=None, summary="Mrs Y complained. The rest.")
    values.update(overrides)
    return BrowseRow(**values)


def test_table_has_count_headers_rows_and_links():
    q = BrowseQuery("school transport", Filters(authority="Kent County Council"), page=2)
    page = BrowsePage(q, tuple(row(i) for i in range(25)), 60, 3.0)
    html = browse_table_html(page)
    text = " ".join(re.sub(r"<[^>]+>", "", html).split())
    assert ("60 decisions match (words: school transport; council: Kent County Council); showing 26–50, page 2 of 3, "
            "sorted by relevance.") in text
    assert html.count('<th scope="col">') == 6 and html.count('<tr data-open-ref=') == 25
    assert '<a href="?case=20-000-000" data-open-ref="20-000-000"' in html
    assert "Mrs Y complained." in html and "The rest" not in html
    assert 'href="?view=browse&amp;q=school+transport&amp;authority=Kent+County+Council&amp;page=2"' in html


def test_table_escapes_and_says_when_nothing_matches():
    page = BrowsePage(BrowseQuery(EVIL[:200]), (row(1, authority=EVIL, summary=EVIL),), 1, 1.0)
    html = browse_table_html(page)
    assert "<script>" not in html and "<img" not in html
    empty = browse_table_html(BrowsePage(BrowseQuery("zebra"), (), 0, 1.0))
    assert "No decision matches" in empty and "<table" not in empty
    assert "<script>" not in browse_message_html(EVIL) and 'role="alert"' in browse_message_html("x")
    assert "No decision open" in viewer_placeholder()


def test_addresses_round_trip_and_bad_ones_are_explained():
    assert decision_href("23-009-429", (7, 8)) == "?case=23-009-429&para=7%2C8"
    assert query_from_params({"case": "23-009-429", "para": "7,8"}) == ("23-009-429", None, (7, 8))
    q = BrowseQuery("noise", Filters(outcome="Upheld", since="2022-01-01"), page=2)
    ref, back, paras = query_from_params(dict(p.split("=") for p in browse_href(q)[1:].split("&")))
    assert ref is None and paras == () and back is not None and back.text == "noise" and back.page == 2
    assert query_from_params({}) == (None, None, ())
    assert parse_paragraphs("7, 8,x,-1,0,7,100000") == (7, 8)
    with pytest.raises(ConfigError):
        query_from_params({"view": "browse", "until": "soon"})


def test_viewer_still_shows_the_decision_when_similar_ones_cannot_be_looked_up():
    html = viewer_html(decision(), similar=None)
    assert "could not be looked up just now" in html and 'id="vp-4"' in html


def test_case_numbers_in_an_answer_link_to_the_viewer_but_markers_and_unknown_numbers_do_not():
    from ui.render import link_case_numbers, link_markers

    refs = {"24 005 748": "24-005-748", "002_7d099216e168a9a0": "002_7d099216e168a9a0"}
    body = link_markers("Hampshire — 24 005 748 said so [24 005 748 ¶8]. Not 99 999 999.\n- 002_7d099216e168a9a0 — x",
                        {"24 005 748 ¶8": "src-1-24-005-748-p8"})
    out = link_case_numbers(body, refs)
    assert out == ("Hampshire — [24 005 748](?case=24-005-748) said so [24 005 748 ¶8](#src-1-24-005-748-p8). "
                   "Not 99 999 999.\n- [002_7d099216e168a9a0](?case=002_7d099216e168a9a0) — x")
