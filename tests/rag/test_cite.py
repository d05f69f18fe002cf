"""Citation verification: invented case numbers never survive, paragraphs are checked, uncited claims marked."""

from __future__ import annotations

import datetime as dt

import pytest

from core.types import Decision, Paragraph, Section
from rag.cite import (
    REMOVED_MARK,
    UNCITED_MARK,
    CitationVerifier,
    StreamingVerifier,
    mark_uncited_sentences,
    supported_sentences,
)


def _decision(case: str | None, doc_id: str, n_paras: int = 6) -> Decision:
    paras = tuple(Paragraph(i, f"Paragraph {i} of {doc_id} says something specific.") for i in range(1, n_paras + 1))
    return Decision(doc_id=doc_id, case_number=case, authority="Testshire County Council", category="Housing",
                    subcategory=None, outcome="Upheld", decision_date=dt.date(2024, 1, 2), summary="A summary.",
                    sections=(Section("My assessment", paras),), remedies=(), url=None, source_path="x.txt",
                    content_hash="h" + doc_id)


@pytest.fixture
def verifier() -> CitationVerifier:
    a = _decision("23 009 429", "23-009-429")
    b = _decision(None, "002_7d099216e168a9a0", 14)
    return CitationVerifier({a.doc_id: a, b.doc_id: b})


def test_valid_citations_kept_in_any_spelling(verifier):
    v = verifier.verify("The ICO is better placed [23-009-429, para 5]. It can order rectification [23009429 ¶6].")
    assert "[23 009 429 ¶5]" in v.text and "[23 009 429 ¶6]" in v.text
    assert v.fabricated_removed == 0
    assert [c.paragraph for c in v.citations] == [5, 6]
    assert v.citations[0].quote.startswith("Paragraph 5 of 23-009-429")


def test_fabricated_case_number_removed_and_counted(verifier):
    v = verifier.verify("Councils must pay [12 345 678 ¶3]. The ICO decides [23 009 429 ¶5].")
    assert "12 345 678" not in v.text and "12345678" not in v.text
    assert v.fabricated_removed == 1
    assert "[23 009 429 ¶5]" in v.text


def test_bare_fabricated_case_number_in_prose_removed(verifier):
    v = verifier.verify("In case 99 999 999 the council paid £500 [23 009 429 ¶2].")
    assert "99 999 999" not in v.text and REMOVED_MARK in v.text
    assert v.fabricated_removed == 1


def test_mixed_bracket_keeps_only_real_parts(verifier):
    v = verifier.verify("Both said so [23 009 429 ¶1; 11 111 111 ¶2; 002_7d099216e168a9a0 ¶12].")
    assert "[23 009 429 ¶1; 002_7d099216e168a9a0 ¶12]" in v.text
    assert v.fabricated_removed == 1


def test_invented_doc_id_removed(verifier):
    v = verifier.verify("It said so [003_deadbeefdeadbeef ¶2].")
    assert "deadbeef" not in v.text and v.fabricated_removed == 1


def test_missing_paragraph_corrected_to_decision(verifier):
    v = verifier.verify("The council apologised [23 009 429 ¶42].")
    assert "[23 009 429]" in v.text and "¶42" not in v.text
    assert v.paragraphs_corrected == 1 and v.fabricated_removed == 0


def test_summary_and_ranges(verifier):
    v = verifier.verify("Overview [23 009 429 summary]. Details [23 009 429 paras 2-4].")
    assert "[23 009 429 summary]" in v.text
    assert "[23 009 429 ¶2; 23 009 429 ¶3; 23 009 429 ¶4]" in v.text


def test_non_citation_brackets_left_alone(verifier):
    v = verifier.verify("The officer [sic] was late (see below) [23 009 429 ¶1].")
    assert "[sic]" in v.text and "(see below)" in v.text


def test_uncited_sentences_marked():
    text, n = mark_uncited_sentences(
        "The council was at fault [23 009 429 ¶5]. Councils always pay compensation in such cases.\n"
        "**Heading line**\n- A cited bullet point here [23 009 429 ¶2]")
    assert n == 1
    assert f"Councils always pay compensation in such cases. {UNCITED_MARK}" in text
    assert "**Heading line**" in text and UNCITED_MARK not in text.split("\n")[2]


def test_streaming_never_releases_fabricated_number_split_across_tokens(verifier):
    streamer = StreamingVerifier(verifier)
    tokens = ["The council ", "paid [12 3", "45 678 ¶", "3]. The ICO ", "decides [23 009", " 429 ¶5].", " Done"]
    released = []
    for tok in tokens:
        released.extend(streamer.feed(tok))
    released.extend(streamer.finish())
    shown = "".join(released)
    assert "12 345 678" not in shown and "345 678" not in shown
    assert "[23 009 429 ¶5]" in shown
    assert sum(v.fabricated_removed for v in streamer.released) == 1


@pytest.mark.parametrize("text, expected", [
    ("The council apologised [23 009 429 ¶5].", 1),
    ("It delayed the review. It apologised and paid £200. [23 009 429 ¶5]", 2),  # a citation covers the sentences before it
    ("The council must pay £1,000,000.\n\n[23 009 429]", 0),  # a lone citation on its own line supports nothing
    ("[23 009 429 ¶5]", 0),
    ("The council must pay £1,000,000 [citation removed]. It visited twice [23 009 429 ¶2].", 1),
    ("- The council paid £200 [23 009 429 ¶12]\n- It apologised to Miss X [23 009 429 ¶11]", 2),
    ("**Remedy:** the council paid £200 [23 009 429 ¶12].", 1),  # bold lead-ins still count
    ("No citations here at all. None.", 0),
])
def test_supported_sentences_counts_only_sentences_a_real_citation_covers(text, expected):
    assert supported_sentences(text) == expected
