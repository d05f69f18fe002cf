"""How a question leans on the conversation before it (rag/query.py), without the index."""

from __future__ import annotations

import pytest

from core.types import Message
from rag.query import QueryAnalyser, follow_up_kind

AUTHORITIES = ["Staffordshire County Council", "Hampshire County Council", "Riverside Care Homes Ltd"]


@pytest.fixture
def analyser() -> QueryAnalyser:
    return QueryAnalyser(lambda: AUTHORITIES, lambda: [], lambda: [])


@pytest.mark.parametrize("question, kind", [
    ("What about Hampshire?", "same"),
    ("Did they pay anything?", "same"),
    ("How much notice did the home give in the second one?", "same"),  # 11 words, but "the second one"
    ("And the woman who tripped on a raised paving slab in Ravensholm?", "same"),  # starts with "And"
    ("Was there one where the delay wasn't the council's fault?", "another"),
    ("Was there a case where the Ombudsman looked into it anyway?", "another"),
    ("Are there any other councils that did the same?", "another"),
    ("When does the ICO handle rectification?", None),
    ("How long should a council take to finish an education, health and care plan after an assessment?", None),
])
def test_follow_up_kinds(question, kind):
    assert follow_up_kind(question) == kind


def test_a_same_topic_follow_up_carries_the_council_and_the_case_number(analyser):
    history = [Message("user", "What did Staffordshire County Council agree in 18 009 917?")]
    q = analyser.analyse("Did they also have to change any procedures?", history=history)
    assert q.standalone.startswith("What did Staffordshire") and q.case_numbers == ("18 009 917",)
    q = analyser.analyse("And what about the second one?", history=history)
    assert q.case_numbers == ("18 009 917",)


def test_another_case_follow_up_carries_the_topic_but_not_the_council_or_case(analyser):
    history = [Message("user", "Did Staffordshire County Council disclose an address in 18 009 917?")]
    q = analyser.analyse("Was there one where the council was not at fault?", history=history)
    assert "disclose an address" in q.standalone  # same topic
    assert q.case_numbers == () and q.filters.authority is None and not q.inferred_filters


def test_a_question_that_stands_alone_ignores_the_history(analyser):
    history = [Message("user", "Did Staffordshire County Council disclose an address?")]
    q = analyser.analyse("When does the ICO handle rectification of records held by a council?", history=history)
    assert q.standalone == q.text and q.filters.authority is None
