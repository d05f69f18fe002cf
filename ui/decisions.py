"""The handlers of the decisions browser and the decision viewer, and of shared addresses (?case=..., ?view=browse).

Plain methods over the app's dependencies (assistant, the browser over its catalog, a folder for exports), so a
test calls them without building the page. Outputs are values or gr.update/gr.skip, in the order ui/events.py
wires them.

Annotated with real classes, not strings (no `from __future__ import annotations`): Gradio reads the annotations
to inject gr.Request.
"""

import datetime as dt
import json
import logging
import os
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr

from core.errors import OmbudsError
from core.types import Filters
from rag.browse import BrowseQuery, DecisionBrowser
from rag.similar import similar_decisions
from ui.viewer import (
    browse_message_html,
    browse_table_html,
    parse_paragraphs,
    query_from_params,
    viewer_html,
    viewer_placeholder,
)

if TYPE_CHECKING:
    from rag.assistant import Assistant

log = logging.getLogger(__name__)

BROWSE_INPUTS = 6  # the browser's search box and five filters


def open_browser(assistant: "Assistant") -> DecisionBrowser:
    """The decisions browser over the assistant's catalog, its search index built or brought in step."""
    browser = DecisionBrowser(assistant.index.catalog)
    try:
        browser.ensure_index()
    except Exception:  # noqa: BLE001 - the chat still works; the browser tab says what is wrong
        log.exception("could not build the decisions browser's index in %s", browser.path)
    return browser


def browse_query(text: str | None, council: str | None, category: str | None, outcome: str | None,
                 since: str | None, until: str | None, page: int = 1) -> BrowseQuery:
    """The browser's search from its inputs (dates may come with a time: only the day counts)."""
    filters = Filters(authority=council or None, category=category or None, outcome=outcome or None,
                      since=(since or "")[:10] or None, until=(until or "")[:10] or None)
    return BrowseQuery(text=(text or "").strip(), filters=filters, page=page)


class DecisionHandlers:
    """What the browser's and the viewer's events call."""

    def __init__(self, assistant: "Assistant", browser: DecisionBrowser, export_dir: Path) -> None:
        self.assistant = assistant
        self.browser = browser
        self.export_dir = export_dir

    # the browser ----------------------------------------------------------------------------------------------
    def browse_search(self, text: str | None, council: str | None, category: str | None, outcome: str | None,
                      since: str | None, until: str | None) -> tuple[Any, ...]:
        """Search the decisions (words and filters), first page."""
        try:
            return self.show_page(browse_query(text, council, category, outcome, since, until))
        except Exception as exc:  # noqa: BLE001 - shown to the person, logged when unexpected
            return self.browse_failed(exc)

    def browse_prev(self, query: BrowseQuery | None) -> tuple[Any, ...]:
        """The previous page of the current search."""
        return self._turn_page(query, -1)

    def browse_next(self, query: BrowseQuery | None) -> tuple[Any, ...]:
        """The next page of the current search."""
        return self._turn_page(query, +1)

    def _turn_page(self, query: BrowseQuery | None, step: int) -> tuple[Any, ...]:
        if query is None:
            return self.browse_search("", "", "", "", None, None)
        try:
            return self.show_page(query.with_page(max(1, query.page + step)))
        except Exception as exc:  # noqa: BLE001
            return self.browse_failed(exc)

    def show_page(self, query: BrowseQuery) -> tuple[Any, ...]:
        """Outputs: results, browse state, previous, next, download (hidden: the export is for the last search)."""
        page = self.browser.search(query)
        log.debug("browse %r page %d: %d matches in %.0f ms", query.text[:80], page.query.page, page.total,
                  page.elapsed_ms)
        return (browse_table_html(page), page.query, gr.update(interactive=page.query.page > 1),
                gr.update(interactive=page.query.page < page.pages), gr.update(visible=False, value=None))

    @staticmethod
    def browse_failed(exc: Exception) -> tuple[Any, ...]:
        """The browser's outputs when a search failed: the message in place of the table, paging off."""
        if isinstance(exc, OmbudsError):
            message = str(exc)
        else:
            ref = uuid.uuid4().hex[:8]
            log.exception("unexpected error browsing decisions (reference %s)", ref)
            message = f"Sorry, the search failed (reference {ref}); the details are in the server log."
        return (browse_message_html(message), gr.skip(), gr.update(interactive=False),
                gr.update(interactive=False), gr.update(visible=False, value=None))

    @staticmethod
    def clear_search() -> tuple[Any, ...]:
        """The browser's search box and filters emptied."""
        return "", "", "", "", None, None

    def browse_export(self, query: BrowseQuery | None) -> Any:
        """Write the whole result of the current search as CSV and offer it for download."""
        query = query or BrowseQuery()
        folder = Path(tempfile.mkdtemp(prefix="browse-", dir=self.export_dir))
        path = folder / f"ombudsman-decisions-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}.csv"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            n = self.browser.write_csv(query, fh)
        return gr.update(value=str(path), visible=True, label=f"Download the CSV ({n:,} decisions)")

    # the viewer -----------------------------------------------------------------------------------------------
    def open_decision(self, request_json: str | None) -> tuple[Any, ...]:
        """Open a decision in the viewer: {"ref": case number or document id, "paras": cited paragraphs,
        "focus": the paragraph to show}. Outputs: viewer, tabs, viewer_ref, ask-about, similar."""
        try:
            data = json.loads(request_json or "{}")
            ref = str(data.get("ref") or "")[:200]
            paras = parse_paragraphs(",".join(str(p) for p in data.get("paras") or []))
            focus = data.get("focus")
            focus = int(focus) if isinstance(focus, (int, str)) and str(focus).isdigit() else None
        except (ValueError, TypeError, AttributeError):
            ref, paras, focus = "", (), None
        return self.show_decision(ref, paras, focus)

    def show_decision(self, ref: str, paras: tuple[int, ...], focus: int | None) -> tuple[Any, ...]:
        """The viewer's outputs for a decision reference: the decision, or a placeholder saying what is wrong."""
        try:
            decision = self.browser.decision(ref) if ref else None
        except OmbudsError as exc:
            log.warning("could not open decision %r: %s", ref, exc)
            return _viewer_failed(str(exc), "The decision could not be opened")
        except Exception:  # noqa: BLE001
            code = uuid.uuid4().hex[:8]
            log.exception("unexpected error opening decision %r (reference %s)", ref, code)
            return _viewer_failed(f"Sorry, the decision could not be opened (reference {code}); the details are in "
                                  "the server log.", "The decision could not be opened")
        if decision is None:
            return _viewer_failed(f"No decision {ref!r} is in the index. Check the case number, or find the decision "
                                  "in the browser." if ref else "No decision was named.", "Decision not found")
        # Neighbours need the vector store; if it cannot answer (a stopped Chroma server), the decision still opens.
        near: list[Any] | None
        try:
            index = self.assistant.index
            near = similar_decisions(index.catalog, index.store, index.embedder, decision, n=5)
        except Exception:  # noqa: BLE001
            log.exception("could not find decisions similar to %s", decision.label)
            near = None
        return (viewer_html(decision, paras, focus, near), gr.Tabs(selected="viewer"), decision.label,
                gr.update(interactive=bool(decision.case_number)), gr.update(interactive=True))

    @staticmethod
    def ask_about(label: str | None) -> tuple[Any, ...]:
        """Back to the chat with the question box scoped to the open decision (its case number in the question:
        a case number in a question is looked up first, so the answer comes from this decision)."""
        if not label:
            return gr.skip(), gr.skip()
        return gr.update(value=f"In decision {label}: "), gr.Tabs(selected="chat")

    @staticmethod
    def back_to_chat() -> Any:
        """The chat tab."""
        return gr.Tabs(selected="chat")

    # shared addresses -----------------------------------------------------------------------------------------
    def on_load(self, request: gr.Request = None) -> tuple[Any, ...]:  # type: ignore[assignment]
        """A shared address: ?case=23-009-429[&para=7] opens a decision; ?view=browse&q=...&authority=... a
        search. Outputs: tabs, viewer, viewer_ref, ask-about, similar, then the browser's results, state,
        previous, next, download and its six inputs."""
        params = dict(request.query_params) if request is not None else {}
        keep_inputs = (gr.skip(),) * BROWSE_INPUTS
        try:
            ref, query, paras = query_from_params(params)
        except OmbudsError as exc:
            return (gr.Tabs(selected="browse"), *(gr.skip(),) * 4, browse_message_html(
                f"The link's search could not be read: {exc}"), gr.skip(), gr.skip(), gr.skip(), gr.skip(),
                *keep_inputs)
        inputs: tuple[Any, ...] = keep_inputs
        if query is not None:
            try:
                browse_out = self.show_page(query)
            except Exception as exc:  # noqa: BLE001
                browse_out = self.browse_failed(exc)
            inputs = _search_inputs(query)
        else:
            browse_out = self.browse_search("", "", "", "", None, None)
        if ref:
            viewer_out = self.show_decision(ref, paras, paras[0] if paras else None)
            return (viewer_out[1], viewer_out[0], *viewer_out[2:], *browse_out, *inputs)
        tab = gr.Tabs(selected="browse") if query is not None else gr.skip()
        return (tab, *(gr.skip(),) * 4, *browse_out, *inputs)


def _viewer_failed(message: str, title: str) -> tuple[Any, ...]:
    return (viewer_placeholder(message, title=title), gr.Tabs(selected="viewer"), "",
            gr.update(interactive=False), gr.update(interactive=False))


def _search_inputs(query: BrowseQuery) -> tuple[Any, ...]:
    """The browser's search box and filters showing a search (a shared one)."""
    f = query.filters
    return (query.text, f.authority or "", f.category or "", f.outcome or "",
            f.since.isoformat() if f.since else None, f.until.isoformat() if f.until else None)
