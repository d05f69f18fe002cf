"""The UI's handlers called directly, without building the page or a server: the real Assistant over a copy of the
sample index, real logs in a temporary folder."""

from __future__ import annotations

import csv
import json
import stat
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pytest
from conftest import ICO_ANSWERS

from ui.audit_log import read_jsonl
from ui.chat import STREAM_UPDATE_S, ChatHandlers
from ui.decisions import DecisionHandlers, open_browser

pytestmark = pytest.mark.slow

QUESTION = "When does the ICO handle rectification?"


@pytest.fixture(scope="module")
def assistant(app_index_dir, embedder, tmp_path_factory):
    from core.settings import load_settings
    from ingest.index import open_index
    from rag.assistant import Assistant

    settings = load_settings(index_dir=app_index_dir, log_dir=tmp_path_factory.mktemp("handler-logs") / "logs")
    a = Assistant(settings, open_index(settings, write=False, create=False, embedder=embedder))
    yield a
    a.close()


@pytest.fixture
def chat(assistant, tmp_path):
    return ChatHandlers(assistant, assistant.settings, tmp_path)


@pytest.fixture(scope="module")
def decisions(assistant, tmp_path_factory):
    browser = open_browser(assistant)
    yield DecisionHandlers(assistant, browser, tmp_path_factory.mktemp("exports"))
    browser.close()


def ask(chat, question, turns=None, since=None):
    """Every update the ask handler yields: (question box, chat, sources panel, state, export)."""
    return list(chat.ask(question, "", "", "", since, None, turns))


def test_ask_shows_the_question_at_once_then_the_cited_answer_and_logs_it(chat, assistant):
    updates = ask(chat, QUESTION)
    box, messages, sources, turns, export = updates[0]
    assert box == "" and messages[-1]["content"] == "_Searching the decisions…_" and export == gr.skip()
    box, messages, sources, turns, export = updates[-1]
    assert [m["role"] for m in messages] == ["user", "assistant"] and "](#src-1-" in messages[-1]["content"]
    assert any(f">{label}<span" in sources for label in ICO_ANSWERS)
    # the first answer enables the export button; the file is the conversation, readable by its owner only
    path = Path(export["value"])
    assert export["interactive"] is True and QUESTION in path.read_text(encoding="utf-8")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    audit = read_jsonl(assistant.settings.audit_log_path)[-1]
    assert audit["event"] == "answer" and audit["question"] == QUESTION and audit["citations"]
    # a follow-up keeps the conversation; the export is only a new file now (no config update)
    *_, (_, messages, sources, turns2, export2) = ask(chat, "What about Hampshire?", turns)
    assert len(turns2) == 2 and len(messages) == 4 and 'id="src-turn-2"' in sources and isinstance(export2, str)


def test_an_extractive_answer_is_shown_in_few_updates_unless_told_otherwise(chat):
    assert chat.stream_update_s == STREAM_UPDATE_S
    assert 2 <= len(ask(chat, QUESTION)) <= 3  # the question, at most one partial, the answer
    chat.stream_update_s = 0  # every streamed piece shown: the partial answer with its cursor
    updates = ask(chat, QUESTION)
    assert len(updates) > 3 and updates[1][1][-1]["content"].endswith(" ▍")


def test_empty_question_changes_nothing_and_bad_filter_is_a_friendly_message(chat, assistant):
    with pytest.warns(UserWarning, match="Type a question first"):
        assert ask(chat, "  \n") == [(gr.skip(),) * 5]
    [(box, messages, _, _, _)] = ask(chat, QUESTION, since="2024-13-45")
    assert box == "" and messages[-1]["content"].startswith("⚠️") and "YYYY-MM-DD" in messages[-1]["content"]
    audit = read_jsonl(assistant.settings.audit_log_path)[-1]
    assert audit["event"] == "error" and audit["error_kind"] == "filters"


def test_feedback_is_about_the_last_answer_and_needs_one(chat, assistant):
    with pytest.warns(UserWarning, match="Ask a question first"):
        assert chat.feedback_up("good", []) == gr.skip()
    *_, (_, _, _, turns, _) = ask(chat, QUESTION)
    assert chat.feedback_down("  wrong paragraph ", turns) == ""  # the comment box is cleared
    last = read_jsonl(assistant.settings.feedback_log_path)[-1]
    assert last["rating"] == "down" and last["comment"] == "wrong paragraph" and last["question"] == QUESTION


def test_new_conversation_empties_everything_and_disables_the_export(chat):
    messages, turns, sources, export, box, comment = chat.clear()
    assert messages == [] and turns == [] and "sources appear here" in sources
    assert export == gr.update(value=None, interactive=False) and box == comment == ""


def test_browse_search_pages_and_exports_the_whole_result(decisions):
    table, query, prev, nxt, download = decisions.browse_search("", "", "", "", None, None)
    assert "<strong>5</strong> decisions" in table and query.page == 1
    assert prev["interactive"] is False and nxt["interactive"] is False and download["visible"] is False
    _, dated, *_ = decisions.browse_search("", "", "", "", "2021-01-01T00:00:00", None)
    assert dated.filters.since.isoformat() == "2021-01-01"  # a date field's time is dropped
    table, query, *_ = decisions.browse_search("rectification", "", "", "", None, None)
    assert "<strong>3</strong> decisions" in table
    offer = decisions.browse_export(query)
    rows = list(csv.reader(Path(offer["value"]).read_text(encoding="utf-8").splitlines()))
    assert len(rows) == 4 and offer["label"] == "Download the CSV (3 decisions)"
    bad, state, *_ = decisions.browse_search("x", "", "", "", "yesterday", None)
    assert 'role="alert"' in bad and "YYYY-MM-DD" in bad and state == gr.skip()


def test_open_decision_marks_the_cited_paragraph_or_says_what_is_wrong(decisions):
    html, tabs, label, ask_about, similar = decisions.open_decision(json.dumps({"ref": "23-009-429", "paras": [8]}))
    assert label == "23 009 429" and tabs.selected == "viewer" and 'class="vpara cited" id="vp-8"' in html
    assert ask_about["interactive"] is True and similar["interactive"] is True and 'class="similar-list"' in html
    html, _, label, ask_about, _ = decisions.open_decision(json.dumps({"ref": "99-999-999"}))
    assert "No decision &#39;99-999-999&#39; is in the index" in html and label == "" and not ask_about["interactive"]
    assert "No decision was named." in decisions.open_decision("not json")[0]
    question, tabs = decisions.ask_about("23 009 429")
    assert question["value"] == "In decision 23 009 429: " and tabs.selected == "chat"


def test_a_shared_address_opens_its_decision_or_its_search(decisions):
    out = decisions.on_load(SimpleNamespace(query_params={"case": "23-009-429", "para": "8"}))
    tabs, html = out[0], out[1]
    assert tabs.selected == "viewer" and 'data-focus="8"' in html and len(out) == 16
    out = decisions.on_load(SimpleNamespace(query_params={"view": "browse", "q": "conference",
                                                          "authority": "Hampshire County Council"}))
    assert out[0].selected == "browse" and "24 005 748" in out[5]
    assert out[-6:] == ("conference", "Hampshire County Council", "", "", None, None)  # the search shown in its inputs
    out = decisions.on_load(SimpleNamespace(query_params={"view": "browse", "since": "soon"}))
    assert "The link&#39;s search could not be read" in out[5]
