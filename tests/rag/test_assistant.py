"""The Assistant end to end on the sample index: extractive answers, abstention, follow-ups, the CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from conftest import ROOT

from core.casenum import find_case_numbers
from core.errors import QuestionError
from core.types import Answer
from rag.assistant import Assistant
from rag.cite import UNCITED_MARK

SAMPLE_CASES = {"23 009 429", "20 011 198", "18 009 917", "24 005 748"}


@pytest.fixture(scope="module")
def assistant(sample_index_dir, embedder):
    from core.settings import load_settings
    from ingest.index import open_index

    settings = load_settings(index_dir=sample_index_dir)
    with Assistant(settings, open_index(settings, embedder=embedder)) as a:
        yield a


def test_ico_rectification_answer_cites_the_decisions_that_say_so(assistant):
    answer = assistant.ask("When does the ICO handle rectification?")
    assert not answer.abstained
    cited = set(answer.cited_labels)
    # 000 and 002 say the ICO considers 'right to rectification' disputes; 004 says it can require rectification.
    # Only decisions that say so are cited (the policy cites the most relevant one and any close to it).
    assert cited and cited <= {"23 009 429", "002_7d099216e168a9a0", "24 005 748"}
    assert "rectif" in answer.text.lower()
    assert answer.text.startswith("**In short:**") and answer.policy_version and answer.relevance
    for citation in answer.citations:
        assert citation.quote, citation
        assert citation.label in answer.text
    assert answer.fabricated_citations_removed == 0
    assert UNCITED_MARK not in answer.text
    # council, date and outcome of each decision are named
    assert "County Council — " in answer.text and "Closed after initial enquiries" in answer.text


def test_a_question_across_decisions_shows_each_decision_that_answers_with_what_it_found(assistant):
    question = "What has the Ombudsman said about data protection complaints?"
    answer = assistant.ask(question)
    assert not answer.abstained and answer.text.startswith("**In short:**")
    exam = assistant.examine(question)
    assert exam.query.survey
    threshold = assistant.relevance.answer_threshold
    cited = answer.cited_labels
    assert len(cited) >= 2
    blocks = answer.text.split("\n\n")[1:]
    assert len(blocks) == len(cited)  # one block per cited decision, most relevant first
    for label, block in zip(cited, blocks):
        assert label in block.splitlines()[0]  # its heading: council, case, date, outcome
        assert f"[{label} summary]" in answer.text  # what it found and did
    for doc_id in exam.verdict.relevant:
        assert exam.verdict.scores[doc_id] >= threshold  # each one judged to answer on its own
    assert UNCITED_MARK not in answer.text and answer.fabricated_citations_removed == 0
    # Asked of one matter, the same subject cites only the best decision and its near-ties.
    one = assistant.examine("Why did the Ombudsman not investigate the complaint about data sharing?")
    assert not one.query.survey and len(one.verdict.relevant) <= len(exam.verdict.relevant)


def test_years_and_outcome_written_in_a_question_across_decisions_restrict_it_and_say_so(assistant):
    answer = assistant.ask("Which Hampshire County Council decisions were made in 2024?")
    assert answer.filters_applied.to_dict() == {"authority": "Hampshire County Council", "since": "2024-01-01",
                                                "until": "2024-12-31"}
    assert answer.text.startswith("_Filtered to council: Hampshire County Council; since 2024-01-01; until "
                                  "2024-12-31 (taken from your question)._")
    assert not answer.abstained and answer.cited_labels == ["24 005 748"]  # 20 011 198 (2021) is left out
    upheld = assistant.ask("Which decisions were upheld?")
    assert upheld.filters_applied.outcome == "Upheld" and set(upheld.cited_labels) <= {"18 009 917"}


def test_a_question_naming_only_filters_lists_the_decisions_they_select_newest_first(assistant):
    answer = assistant.ask("List the Hampshire County Council decisions.")
    exam = assistant.examine("List the Hampshire County Council decisions.")
    assert exam.query.listing and exam.retrieval.listed
    assert not answer.abstained and answer.cited_labels == ["24 005 748", "20 011 198"]  # 2024, then 2021
    assert "_Every decision these filters select (2), newest first._" in answer.text
    assert "**In short:**" not in answer.text  # the list is the answer
    assert all("summary]" in line for line in answer.text.splitlines() if line.startswith("- "))
    # more decisions than k: the newest k, and the note says how many there are
    few = assistant.ask("List the decisions made before 2025.", k=2)
    assert few.cited_labels == ["24 005 748", "23 009 429"]
    assert "The 2 newest of the 4 decisions these filters select; the decisions browser lists them all." in few.text


def test_every_case_number_in_an_answer_was_retrieved(assistant):
    for question in ["Did Staffordshire pay compensation for disclosing an address?",
                     "Who should a social worker's professionalism be reported to?",
                     "What is a Review Child Protection Conference and how often is it held?"]:
        answer = assistant.ask(question)
        retrieved = {h.chunk.case_number for h in answer.sources}
        assert set(find_case_numbers(answer.text)) <= retrieved, question


def test_payment_question_finds_the_amount(assistant):
    answer = assistant.ask("How much did Staffordshire agree to pay Miss X, and by when?")
    assert "£500" in answer.text and "within four weeks" in answer.text
    assert "18 009 917" in answer.cited_labels


@pytest.mark.parametrize("question", [
    "What are the NHS waiting times for a hip operation?",
    "Why are libraries closing on Sundays?",
    "How many parking fines did the council issue last year?",
])
def test_off_topic_questions_abstain_and_show_nearest(assistant, question):
    answer = assistant.ask(question)
    assert answer.abstained, answer.text
    assert answer.text.startswith("The indexed decisions don't answer this question")
    assert "may be related" in answer.text
    assert answer.citations == ()


def test_unknown_council_is_said_plainly(assistant):
    answer = assistant.ask("What did Leeds City Council do about missed bin collections?")
    assert answer.abstained
    assert "No decisions about Leeds City Council are in the index" in answer.text


def test_follow_up_what_about_hampshire(assistant):
    history = [{"role": "user", "content": "When does the ICO handle rectification?"},
               {"role": "assistant", "content": "Staffordshire: the ICO considers rectification [23 009 429 ¶7]."}]
    answer = assistant.ask("What about Hampshire?", history=history)
    assert not answer.abstained
    assert answer.filters_applied.authority == "Hampshire County Council"
    assert "rectification" in answer.standalone_question.lower()
    assert set(answer.cited_labels) <= {"24 005 748", "20 011 198"} and answer.cited_labels


def test_follow_up_did_they_pay_anything(assistant):
    history = [{"role": "user", "content": "Did Staffordshire disclose a mother's address to her ex-partner?"}]
    answer = assistant.ask("Did they pay anything?", history=history)
    assert "£500" in answer.text
    assert answer.filters_applied.authority == "Staffordshire County Council"


@pytest.mark.parametrize("bad, message", [("", "empty"), ("   \n\t ", "empty"), ("x" * 100_000, "limit is 2,000"),
                                          ("?!", "no words")])
def test_bad_questions_get_clear_errors(assistant, bad, message):
    with pytest.raises(QuestionError, match=message):
        assistant.ask(bad)


def test_control_characters_are_stripped(assistant):
    answer = assistant.ask("When does the ICO\x00 handle\x07 rectification?")
    assert not answer.abstained and answer.cited_labels
    assert set(answer.cited_labels) <= {"23 009 429", "002_7d099216e168a9a0", "24 005 748"}


def test_stream_yields_text_then_answer(assistant):
    items = list(assistant.stream("When does the ICO handle rectification?"))
    assert isinstance(items[-1], Answer)
    text = "".join(i for i in items[:-1] if isinstance(i, str))
    assert len(items) > 2 and re.search(r"\[\d\d \d{3} \d{3} (¶\d+|summary)\]", text)


def test_answer_json_shape(assistant):
    data = assistant.ask("When does the ICO handle rectification?").to_dict()
    for key in ("answer", "abstained", "citations", "sources", "filters", "fabricated_citations_removed", "backend",
                "model", "prompt_version", "timings_ms"):
        assert key in data
    assert {"case_number", "paragraph", "quote", "authority", "decision_date", "outcome"} <= set(data["citations"][0])
    assert {"case_number", "doc_id", "chunk_id", "section", "score", "text"} <= set(data["sources"][0])
    assert data["backend"] == "extractive"
    assert [s["rank"] for s in data["sources"]] == sorted(s["rank"] for s in data["sources"])
    assert "retrieval_ms" in data["timings_ms"] and "total_ms" in data["timings_ms"]


def _cli(*args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rag", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_cli_ask_json_and_usage_errors(sample_index_dir):
    done = _cli("ask", "When does the ICO handle rectification?", "--json", "--index-dir", str(sample_index_dir))
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert not data["abstained"] and data["citations"]
    assert all(c["case_number"] is None or re.fullmatch(r"\d\d \d{3} \d{3}", c["case_number"])
               for c in data["citations"])
    off = _cli("ask", "What are NHS waiting times for hip operations?", "--json", "--index-dir", str(sample_index_dir))
    assert off.returncode == 0 and json.loads(off.stdout)["abstained"] is True
    for bad in (["ask", "x", "--k", "0"], ["ask", "x", "--since", "yesterday"], ["ask"], ["nonsense"]):
        done = _cli(*bad, "--index-dir", str(sample_index_dir)) if bad[0] == "ask" and len(bad) > 1 else _cli(*bad)
        assert done.returncode == 2, (bad, done.stderr)
        assert "usage" in done.stderr.lower()
    empty = _cli("ask", "   ", "--index-dir", str(sample_index_dir))
    assert empty.returncode == 2 and "question" in empty.stderr.lower()


@pytest.mark.parametrize("question, acronym", [
    ("How do I complain to the IOPC about a police officer's conduct during an arrest?", "IOPC"),
    ("Can the DVLA refund my vehicle tax?", "DVLA"),
])
def test_an_acronym_no_decision_mentions_is_said_and_the_answer_abstains(assistant, question, acronym):
    answer = assistant.ask(question)
    assert answer.abstained and f"No indexed decision mentions {acronym}." in answer.notes
    assert "Nearest decisions (may be related)" in answer.text


def test_acronyms_the_decisions_contain_or_spell_out_are_not_flagged(assistant):
    answer = assistant.ask("When does the ICO handle rectification?")  # decisions say "Information Commissioner"
    assert not answer.abstained and not any("mentions" in n for n in answer.notes)
    shouted = assistant.ask("DID STAFFORDSHIRE PAY MISS X ANYTHING?")  # capitals, not acronyms
    assert not any("mentions" in n for n in shouted.notes)
    # Ordinary words in capitals (and common acronyms such as NHS) are left to the evidence check.
    words = assistant.ask("Can the ICO order a council to correct its records? NEAR DROP TABLE")
    assert not any("mentions" in n for n in words.notes)


def test_warm_up_loads_what_the_first_question_needs(make_settings, sample_index_dir):
    from ingest.embed import Embedder
    from ingest.index import open_index

    settings = make_settings(index_dir=sample_index_dir)
    cold = Embedder(settings.embedding_model, settings.embed_batch_size, "onnx")
    with Assistant(settings, open_index(settings, embedder=cold)) as a:
        assert not a.index.embedder.loaded
        assert a.warm_up() > 0 and a.index.embedder.loaded
        assert not a.ask("When does the ICO handle rectification?").abstained


def test_a_category_named_in_a_question_across_decisions_filters_it(assistant):
    answer = assistant.ask("List Hampshire County Council decisions about children's services.")
    assert answer.filters_applied.to_dict() == {"authority": "Hampshire County Council",
                                                "category": "Children's care services"}
    assert answer.text.startswith("_Filtered to council: Hampshire County Council; category: Children's care "
                                  "services (taken from your question)._")
    assert answer.cited_labels == ["24 005 748", "20 011 198"]  # the listing: both, newest first


def test_a_yes_no_listing_answers_yes_or_no_first_counted_in_the_catalog(assistant):
    yes = assistant.ask("Were any Staffordshire County Council complaints upheld?")
    assert yes.filters_applied.to_dict() == {"authority": "Staffordshire County Council"}  # no outcome filter
    assert "**In short:** Yes: 1 of the 2 decisions these filters select was upheld. [18 009 917 summary]" in yes.text
    assert yes.cited_labels == ["18 009 917"]  # the decision that was; the note says how many there are in all
    assert "_Every decision these filters select that was upheld (1), newest first._" in yes.text
    no = assistant.ask("Were any Hampshire County Council complaints upheld?")
    assert "**In short:** No: none of the 2 decisions these filters select was upheld. [24 005 748 summary; " \
           "20 011 198 summary]" in no.text
    assert no.cited_labels == ["24 005 748", "20 011 198"]  # shown with their outcomes, which answer "no"
    assert "(Closed after initial enquiries)" not in no.text and "; Closed after initial enquiries)" in no.text
