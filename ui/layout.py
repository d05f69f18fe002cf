"""The page's components: a header, then three tabs (Ask, Browse decisions, Decision). No events here:
ui/events.py connects these components to the handlers.

Called inside a gr.Blocks context; component order is page order. The element ids are what the stylesheet, the
page's script and the browser tests find things by.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from ui.render import sources_panel
from ui.templating import render
from ui.uploads import UPLOAD_SUFFIXES
from ui.viewer import viewer_placeholder

Choices = Callable[[str], list[tuple[str, str]]]

EXAMPLE_QUESTIONS = [
    "When does the ICO handle rectification?",
    "Did Hampshire County Council do anything wrong in the child protection conference?",
    "What did the Ombudsman say about delays in complaint replies?",
    "What remedies were agreed?",
]


@dataclass
class FilterFields:
    """A council, category and outcome dropdown and a date range (the chat's and the browser's)."""

    council: Any
    category: Any
    outcome: Any
    since: Any
    until: Any

    @property
    def all(self) -> list[Any]:
        """The five, in the order handlers take them."""
        return [self.council, self.category, self.outcome, self.since, self.until]

    @property
    def choices(self) -> list[Any]:
        """The three whose choices come from the index."""
        return [self.council, self.category, self.outcome]


@dataclass
class Upload:
    """The sidebar's "Add decisions" box (only with settings.allow_upload)."""

    files: Any
    button: Any
    report: Any


@dataclass
class ChatTab:
    """The Ask tab: filters, index status, the conversation, feedback and the sources panel."""

    filters: FilterFields
    reset_filters: Any
    status: Any
    upload: Upload | None
    chatbot: Any
    question: Any
    ask: Any
    clear: Any
    export: Any
    comment: Any
    up: Any
    down: Any
    sources: Any


@dataclass
class BrowseTab:
    """The Browse decisions tab: search box and filters, the table, paging and the CSV export."""

    text: Any
    filters: FilterFields
    search: Any
    clear: Any
    results: Any
    prev: Any
    next: Any
    export: Any
    download: Any

    @property
    def inputs(self) -> list[Any]:
        """The search box and the filters, in the order search handlers take them."""
        return [self.text, *self.filters.all]


@dataclass
class ViewerTab:
    """The Decision tab and the hidden bridge the page's script opens decisions through."""

    back: Any
    ask_about: Any
    similar: Any
    viewer: Any
    ref: Any
    open_request: Any
    open: Any


@dataclass
class Page:
    """Every component events are wired to, and the per-session state."""

    tabs: Any
    turns: Any
    chat: ChatTab
    browse: BrowseTab
    viewer: ViewerTab
    browse_state: Any


def build_page(choices: Choices, status_markdown: str, allow_upload: bool) -> Page:
    """The whole page (inside gr.Blocks): header, the three tabs, the hidden bridge, the state."""
    turns = gr.State([])
    gr.HTML(render("header.html"), elem_id="app-header-block")
    with gr.Tabs(selected="chat", elem_id="tabs") as tabs:
        with gr.Tab("Ask", id="chat", elem_id="tab-chat"):
            chat = chat_tab(choices, status_markdown, allow_upload)
        with gr.Tab("Browse decisions", id="browse", elem_id="tab-browse"):
            browse = browse_tab(choices)
        with gr.Tab("Decision", id="viewer", elem_id="tab-viewer"):
            back, ask_about, similar, viewer = viewer_tab()
    ref = gr.State("")
    # The bridge from links in the page (citations, cards, the table) to the server: the page's script puts
    # {"ref", "paras", "focus"} in window.__ombudsOpen and clicks the hidden button (ui/static/app.js).
    open_request = gr.Textbox(visible="hidden", elem_id="open-request", label="Decision to open")
    open_btn = gr.Button("Open decision", visible="hidden", elem_id="open-btn")
    return Page(tabs, turns, chat, browse, ViewerTab(back, ask_about, similar, viewer, ref, open_request, open_btn),
                browse_state=gr.State(None))


def filter_fields(choices: Choices, prefix: str) -> FilterFields:
    """Council, category, outcome and a date range; element ids f-council (chat) or b-council (browser) ..."""
    return FilterFields(
        gr.Dropdown(choices("authority"), value="", label="Council", elem_id=f"{prefix}-council"),
        gr.Dropdown(choices("category"), value="", label="Category", elem_id=f"{prefix}-category"),
        gr.Dropdown(choices("outcome"), value="", label="Outcome", elem_id=f"{prefix}-outcome"),
        gr.DateTime(include_time=False, type="string", label="Decided from", elem_id=f"{prefix}-since"),
        gr.DateTime(include_time=False, type="string", label="Decided to", elem_id=f"{prefix}-until"))


def chat_tab(choices: Choices, status_markdown: str, allow_upload: bool) -> ChatTab:
    """Three columns: the sidebar (filters, index), the conversation, the sources panel."""
    with gr.Row(equal_height=False, elem_id="main-row"):
        with gr.Column(scale=1, min_width=270, elem_id="side-col"):
            gr.Markdown("## Filters", elem_classes="side-h")
            filters = filter_fields(choices, "f")
            reset_filters = gr.Button("Clear filters", size="sm", variant="secondary")
            gr.Markdown("## Index", elem_classes="side-h")
            status = gr.Markdown(status_markdown, label="Index status", elem_id="index-status")
            upload = upload_box() if allow_upload else None
        with gr.Column(scale=3, min_width=420, elem_id="chat-col"):
            chatbot, question, ask, clear, export = conversation()
            comment, up, down = feedback_box()
        with gr.Column(scale=2, min_width=340, elem_id="sources-col"):
            sources = gr.HTML(sources_panel([]), label="Sources", elem_id="sources")
    return ChatTab(filters, reset_filters, status, upload, chatbot, question, ask, clear, export, comment, up, down,
                   sources)


def upload_box() -> Upload:
    """Decision files added from the page, and the ingest report."""
    with gr.Accordion("Add decisions", open=False, elem_id="upload"):
        files = gr.File(file_count="multiple", file_types=UPLOAD_SUFFIXES, type="filepath",
                        label="Decision files (.txt, .html, .md)", height=140, elem_id="upload-files")
        button = gr.Button("Ingest files", variant="secondary", size="sm", elem_id="ingest-btn")
        report = gr.Markdown(label="Ingest report", elem_id="ingest-report")
    return Upload(files, button, report)


def conversation() -> tuple[Any, ...]:
    """The chat, the question box with its button, and the conversation's tools: (chatbot, question, ask,
    new conversation, export)."""
    chatbot = gr.Chatbot(
        label="Conversation", show_label=False, elem_id="chat", height="62vh", min_height=380,
        sanitize_html=True, allow_tags=False, render_markdown=True, latex_delimiters=[],
        buttons=["copy"], feedback_options=("Like", "Dislike"), layout="panel",
        examples=[{"text": q} for q in EXAMPLE_QUESTIONS],
        placeholder="**Ask about Ombudsman decisions**<br>Every answer cites the decisions and "
                    "paragraphs it comes from; the sources appear on the right.")
    with gr.Row(elem_id="ask-row"):
        question = gr.Textbox(
            label="Question", show_label=False, lines=1, max_lines=6, scale=6,
            placeholder="Ask a question, e.g. When does the ICO handle rectification?",
            elem_id="question", autofocus=True, submit_btn=False)
        ask = gr.Button("Ask", variant="primary", scale=1, min_width=90, elem_id="ask-btn")
    with gr.Row(elem_id="tools-row"):
        clear = gr.Button("New conversation", size="sm", variant="secondary", elem_id="clear-btn")
        export = gr.DownloadButton("Export as Markdown", size="sm", variant="secondary", interactive=False,
                                   elem_id="export-btn")
    return chatbot, question, ask, clear, export


def feedback_box() -> tuple[Any, Any, Any]:
    """Feedback on the last answer: (comment, thumbs up, thumbs down)."""
    with gr.Accordion("Feedback on the last answer", open=False, elem_id="feedback"):
        comment = gr.Textbox(label="Comment", show_label=False, lines=2, elem_id="feedback-comment",
                             placeholder="Optional comment: what was right or wrong?")
        with gr.Row():
            up = gr.Button("👍 Helpful", size="sm", elem_id="fb-up")
            down = gr.Button("👎 Not helpful", size="sm", elem_id="fb-down")
    return comment, up, down


def browse_tab(choices: Choices) -> BrowseTab:
    """Search box, the same filters as the chat, the table, paging and the CSV export."""
    with gr.Row(elem_id="browse-row", equal_height=False):
        with gr.Column(scale=1, min_width=270, elem_id="browse-side"):
            text = gr.Textbox(label="Search words or a case number", lines=1, max_lines=1, elem_id="b-text",
                              placeholder="e.g. school transport appeal, or 23 009 429")
            filters = filter_fields(choices, "b")
            with gr.Row():
                search = gr.Button("Search", variant="primary", size="sm", elem_id="b-search")
                clear = gr.Button("Clear", variant="secondary", size="sm", elem_id="b-clear")
        with gr.Column(scale=4, min_width=480, elem_id="browse-main"):
            results = gr.HTML(elem_id="b-results")
            with gr.Row(elem_id="b-pager"):
                prev = gr.Button("← Previous page", size="sm", interactive=False, elem_id="b-prev")
                nxt = gr.Button("Next page →", size="sm", interactive=False, elem_id="b-next")
                export = gr.Button("Export all matches as CSV", size="sm", variant="secondary", elem_id="b-export")
                download = gr.DownloadButton("Download the CSV", size="sm", variant="primary", visible=False,
                                             elem_id="b-download")
    return BrowseTab(text, filters, search, clear, results, prev, nxt, export, download)


def viewer_tab() -> tuple[Any, Any, Any, Any]:
    """The viewer's buttons and the decision: (back, ask about it, similar decisions, viewer)."""
    with gr.Row(elem_id="viewer-tools"):
        back = gr.Button("← Back to the conversation", variant="secondary", size="sm", elem_id="back-btn")
        ask_about = gr.Button("Ask about this decision", variant="primary", size="sm", interactive=False,
                              elem_id="ask-about-btn")
        similar = gr.Button("Similar decisions", variant="secondary", size="sm", interactive=False,
                            elem_id="similar-btn")
    viewer = gr.HTML(viewer_placeholder(), elem_id="viewer")
    return back, ask_about, similar, viewer
