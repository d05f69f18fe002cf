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
    ("Was she offered anything else to help with the bill?", "same"),  # 10 words, but "she" opens it
    ("What did the council have to change in how it handles those reviews?", "same"),  # "those reviews"
    ("They stopped the cab that took my son to his special school and now just pay me petrol money.", None),
    ("Is it fault if a council takes over a year to answer a complaint?", None),
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


@pytest.mark.parametrize("question", [
    "Which complaints against Kessington County Council were upheld?",
    "How has the Ombudsman dealt with complaints about noise nuisance?",
    "What has the Ombudsman said about councils taking too long to deliver disabled facilities grants?",
    "List Hampshire County Council decisions about children's services.",
    "Were any noise complaints not upheld?",
    "In which cases did the Ombudsman refuse to investigate because the person could go to court?",
    "What remedies has the Ombudsman recommended when a child missed provision in an EHC plan?",
])
def test_questions_asked_across_decisions_are_recognised(analyser, question):
    assert analyser.analyse(question).survey


@pytest.mark.parametrize("question", [
    "How much did Staffordshire agree to pay Miss X?",
    "When does the ICO handle rectification?",
    "What was the outcome of the complaint about the school transport panel?",  # one complaint, one decision
    "Why did the Council refuse free transport for her son?",
])
def test_questions_about_one_matter_are_not(analyser, question):
    assert not analyser.analyse(question).survey


OUTCOMES = ["Upheld", "Not upheld", "Closed after initial enquiries"]


@pytest.fixture
def analyser_with_outcomes() -> QueryAnalyser:
    return QueryAnalyser(lambda: AUTHORITIES, lambda: [], lambda: OUTCOMES)


@pytest.mark.parametrize("question, written", [
    ("Which complaints against Hampshire County Council were upheld?",
     {"authority": "Hampshire County Council", "outcome": "Upheld"}),
    ("Which complaints were closed after initial enquiries from 2023 onwards?",
     {"outcome": "Closed after initial enquiries", "since": "2023-01-01"}),
    ("Show upheld complaints decided in 2023 or 2024.", {"outcome": "Upheld", "since": "2023-01-01",
                                                          "until": "2024-12-31"}),
    ("What decisions were made between 2019 and 2021?", {"since": "2019-01-01", "until": "2021-12-31"}),
    ("What did the Ombudsman decide about Staffordshire County Council before 2020?",
     {"authority": "Staffordshire County Council", "until": "2019-12-31"}),
    ("Which decisions about Riverside Care Homes Ltd were made in 2025?",
     {"authority": "Riverside Care Homes Ltd", "since": "2025-01-01", "until": "2025-12-31"}),
    ("List the decisions made since the start of 2024.", {"since": "2024-01-01"}),
    ("Which decisions were made between 2021 and 2019?", {"since": "2019-01-01", "until": "2021-12-31"}),
    # a yes/no question is answered by showing the decisions and their outcomes: no outcome filter
    ("Were any noise complaints not upheld?", {}),
    # a question about one matter is not restricted by what it asks about
    ("Was the complaint about the 2023 school transport appeal upheld?", {}),
])
def test_outcomes_and_years_written_in_a_question_across_decisions_become_filters(analyser_with_outcomes, question,
                                                                                    written):
    query = analyser_with_outcomes.analyse(question)
    assert query.filters.to_dict() == written
    assert set(query.inferred_filters) == set(written)


def test_filters_set_by_the_person_win_over_the_question(analyser_with_outcomes):
    from core.types import Filters

    query = analyser_with_outcomes.analyse("Which complaints were upheld in 2023?",
                                           Filters(outcome="Not upheld", since="2020-01-01"))
    assert query.filters.to_dict() == {"outcome": "Not upheld", "since": "2020-01-01"}
    assert query.inferred_filters == ()


@pytest.mark.parametrize("question, filters, listing", [
    ("Which complaints against Hampshire County Council were upheld?", None, True),
    ("List the Riverside Care Homes Ltd decisions made from 2022 onwards.", None, True),
    ("What did the Ombudsman decide about Staffordshire County Council before 2020?", None, True),
    ("List Hampshire County Council decisions about children's services.", {"category": "Children's care services"},
     True),  # its subject is the category the person chose
    ("List Hampshire County Council decisions about children's services.", None, False),  # a subject beyond filters
    ("Which complaints against Hampshire County Council about data sharing were upheld?", None, False),
    ("How has the Ombudsman dealt with complaints about noise?", None, False),  # no filter at all
    ("What did Hampshire County Council agree to pay?", None, False),  # about one matter
])
def test_a_question_naming_nothing_but_its_filters_asks_for_the_decisions_they_select(analyser_with_outcomes, question,
                                                                                     filters, listing):
    from core.types import Filters

    assert analyser_with_outcomes.analyse(question, Filters.from_dict(filters)).listing is listing


PATHS = ["Benefits and tax", "Benefits and tax > Council tax", "Benefits and tax > Housing benefit and council tax benefit",
         "Children's care services", "Children's care services > Fostering", "Children's care services > Other",
         "Corporate and other services > Complaint handling", "Education > School transport",
         "Environment and regulation", "Environment and regulation > Noise", "Environmental services",
         "Highways and transport > Blue badges", "Housing", "Housing > Council houses", "Housing > Homelessness",
         "Planning", "Planning and development", "Transport and highways > Blue badges", "Adult care services",
         "Education > Special educational needs", "Housing > Disabled facilities grants"]


@pytest.mark.parametrize("question, category", [
    ("Which housing complaints were closed after initial enquiries?", "Housing"),
    ("List the school transport decisions.", "Education > School transport"),
    ("Which complaints about homelessness were upheld in 2024?", "Housing > Homelessness"),
    ("Which council tax complaints were upheld?", "Benefits and tax > Council tax"),
    ("Any complaint handling decisions about Hampshire County Council?",
     "Corporate and other services > Complaint handling"),  # a name may hold "complaint"
    ("List Hampshire County Council decisions about children's services.", "Children's care services"),  # said, not spelt
    ("Show upheld adult social care complaints decided in 2023 or 2024.", "Adult care services"),
    ("How has the Ombudsman dealt with complaints about councils' homelessness decisions?", "Housing > Homelessness"),
    ("Which SEND complaints were upheld?", "Education > Special educational needs"),  # acronyms spelled out
    ("Any DFG decisions since 2023?", "Housing > Disabled facilities grants"),
    ("Which benefits and tax complaints were upheld?", "Benefits and tax"),  # "and" inside a name
    # names the question could mean more than one way are left alone
    ("Which housing benefit complaints were upheld?", None),  # "Housing", or a longer name?
    ("Which planning complaints were upheld?", None),  # "Planning" or "Planning and development"
    ("Which blue badge complaints were upheld?", None),  # under two categories
    ("Were any environmental complaints upheld?", None),  # "Environmental services" or "Environment and regulation"
    # only words beside "complaints" / "decisions" name a category: noise is asked about wherever it was filed
    ("What has the Ombudsman said about noise?", None),
    ("Which complaints about other things were upheld?", None),  # "Other" is no category anyone asks for
    ("Which complaints against Hampshire County Council were upheld?", None),
])
def test_a_category_named_beside_complaints_or_decisions(question, category):
    from rag.query import category_asked

    assert category_asked(question, PATHS) == category


def test_a_category_written_in_a_question_across_decisions_becomes_a_filter():
    from core.types import Filters

    analyser = QueryAnalyser(lambda: AUTHORITIES, lambda: [], lambda: OUTCOMES, category_paths=lambda: PATHS)
    query = analyser.analyse("Which housing complaints were closed after initial enquiries?")
    assert query.filters.to_dict() == {"category": "Housing", "outcome": "Closed after initial enquiries"}
    assert set(query.inferred_filters) == {"category", "outcome"} and query.listing  # the filters are the subject
    chosen = analyser.analyse("Which housing complaints were upheld?", Filters(category="Planning"))
    assert chosen.filters.category == "Planning" and "category" not in chosen.inferred_filters  # the person's wins
    one = analyser.analyse("Was the council's handling of the housing complaint upheld?")  # about one matter
    assert one.filters.category is None


@pytest.mark.parametrize("question, outcome, listing", [
    ("Were any complaints against Hampshire County Council upheld?", "Upheld", True),
    ("Were any complaints against Hampshire County Council not upheld?", "Not upheld", True),  # the longer name
    ("Were any complaints about data sharing against Hampshire County Council upheld?", "Upheld", False),  # a subject
    ("Which complaints against Hampshire County Council were upheld?", None, True),  # the outcome is a filter
    ("Was the complaint against Hampshire County Council upheld?", None, False),  # about one matter
])
def test_a_yes_no_question_across_decisions_keeps_the_outcome_it_asks_about(analyser_with_outcomes, question,
                                                                            outcome, listing):
    query = analyser_with_outcomes.analyse(question)
    assert query.outcome_asked == outcome and query.listing is listing
    assert query.filters.outcome is None or outcome is None  # asked about, never filtered by, in a yes/no question
