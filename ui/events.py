"""The page's events: which component calls which handler, with what inputs and outputs.

Public API names (gradio_client, the load test): ask, clear, feedback_up, feedback_down, status, browse,
browse_prev, browse_next, open_decision and, with uploads on, ingest. The JavaScript snippets call functions the
page's script defines (ui/static/app.js).
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from ui.chat import ChatHandlers
from ui.decisions import DecisionHandlers
from ui.layout import Page

SCROLL_TO_CITED_JS = "() => window.ombudsShowCited && window.ombudsShowCited()"
FOCUS_RESULTS_JS = "() => window.ombudsFocusResults && window.ombudsFocusResults()"
FOCUS_QUESTION_JS = "() => window.ombudsFocusQuestion && window.ombudsFocusQuestion()"
SHOW_SIMILAR_JS = "() => window.ombudsShowSimilar && window.ombudsShowSimilar()"


def wire(demo: gr.Blocks, page: Page, chat: ChatHandlers, decisions: DecisionHandlers, concurrency: int) -> None:
    """Every event of the page, in the order they were always registered. concurrency: answers at once."""
    wire_chat(page, chat, concurrency)
    filter_outputs = [*page.chat.filters.choices, *page.browse.filters.choices]
    demo.load(chat.refresh_status, None, [page.chat.status, *filter_outputs], api_name="status",
              show_progress="hidden")
    wire_browser(page, decisions)
    wire_viewer(page, decisions)
    browse_outputs = [page.browse.results, page.browse_state, page.browse.prev, page.browse.next,
                      page.browse.download]
    v = page.viewer
    demo.load(decisions.on_load, None, [page.tabs, v.viewer, v.ref, v.ask_about, v.similar, *browse_outputs,
                                        *page.browse.inputs],
              api_visibility="private", show_progress="hidden").then(None, None, None, js=SCROLL_TO_CITED_JS)
    upload = page.chat.upload
    if upload is not None:
        upload.button.click(chat.upload, upload.files, [upload.report, page.chat.status, *filter_outputs],
                            api_name="ingest", concurrency_limit=1)


def wire_chat(page: Page, chat: ChatHandlers, concurrency: int) -> None:
    """Asking (button, Enter, an example), a new conversation, feedback, clearing the filters."""
    c = page.chat
    ask_inputs = [c.question, *c.filters.all, page.turns]
    ask_outputs = [c.question, c.chatbot, c.sources, page.turns, c.export]
    ask_opts: dict[str, Any] = {"concurrency_limit": concurrency, "concurrency_id": "ask", "show_progress": "hidden"}
    asking = [
        c.ask.click(chat.ask, ask_inputs, ask_outputs, api_name="ask", **ask_opts),
        c.question.submit(chat.ask, ask_inputs, ask_outputs, api_visibility="private", **ask_opts),
        c.chatbot.example_select(chat.pick_example, None, c.question, api_visibility="private").then(
            chat.ask, ask_inputs, ask_outputs, api_visibility="private", **ask_opts),
    ]
    clear_outputs = [c.chatbot, page.turns, c.sources, c.export, c.question, c.comment]
    # A new conversation also stops an answer still streaming, which would otherwise bring the old one back.
    c.clear.click(chat.clear, None, clear_outputs, api_name="clear", cancels=asking)
    # The chat's own bin icon empties the chat; forget the conversation with it.
    c.chatbot.clear(chat.clear, None, clear_outputs, api_visibility="private", cancels=asking)
    c.up.click(chat.feedback_up, [c.comment, page.turns], c.comment, api_name="feedback_up")
    c.down.click(chat.feedback_down, [c.comment, page.turns], c.comment, api_name="feedback_down")
    c.chatbot.like(chat.on_like, [c.comment, page.turns], c.comment, api_visibility="private")
    c.reset_filters.click(chat.clear_filters, None, c.filters.all, api_visibility="private")


def wire_browser(page: Page, decisions: DecisionHandlers) -> None:
    """Searching (button or Enter), clearing, paging and the CSV export; the table keeps its place in view."""
    b = page.browse
    outputs = [b.results, page.browse_state, b.prev, b.next, b.download]
    b.search.click(decisions.browse_search, b.inputs, outputs, api_name="browse", api_visibility="public",
                   show_progress="hidden", queue=False).then(None, None, None, js=FOCUS_RESULTS_JS)
    b.text.submit(decisions.browse_search, b.inputs, outputs, api_name=None, api_visibility="private",
                  show_progress="hidden", queue=False).then(None, None, None, js=FOCUS_RESULTS_JS)
    b.clear.click(decisions.clear_search, None, b.inputs, api_visibility="private").then(
        decisions.browse_search, b.inputs, outputs, api_visibility="private", show_progress="hidden")
    b.prev.click(decisions.browse_prev, page.browse_state, outputs, api_name="browse_prev",
                 show_progress="hidden", queue=False).then(None, None, None, js=FOCUS_RESULTS_JS)
    b.next.click(decisions.browse_next, page.browse_state, outputs, api_name="browse_next",
                 show_progress="hidden", queue=False).then(None, None, None, js=FOCUS_RESULTS_JS)
    b.export.click(decisions.browse_export, page.browse_state, b.download, api_visibility="private")


def wire_viewer(page: Page, decisions: DecisionHandlers) -> None:
    """Opening a decision through the hidden bridge, asking about it, back to the chat, similar decisions."""
    v = page.viewer
    outputs = [v.viewer, page.tabs, v.ref, v.ask_about, v.similar]
    v.open.click(decisions.open_decision, v.open_request, outputs, api_name="open_decision",
                 js="(x) => window.__ombudsOpen || x", show_progress="hidden").then(
        None, None, None, js=SCROLL_TO_CITED_JS)
    v.ask_about.click(decisions.ask_about, v.ref, [page.chat.question, page.tabs], api_visibility="private").then(
        None, None, None, js=FOCUS_QUESTION_JS)
    v.back.click(decisions.back_to_chat, None, page.tabs, api_visibility="private")
    v.similar.click(None, None, None, js=SHOW_SIMILAR_JS)
