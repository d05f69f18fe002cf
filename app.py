"""The chat UI staff use: python app.py (or make run) opens it on http://127.0.0.1:7860.

build_app(assistant, settings) makes the Gradio Blocks; main() builds Settings from the environment and flags,
refuses an exposed bind address without a username and password, opens the Assistant, warms the embedding
model and launches. What is shown is built by rag/ui_render.py (pure functions, unit-tested); the audit and
feedback logs are append-only JSONL files (rag/jsonl_log.py).

Event handlers are annotated with real classes, not strings (no `from __future__ import annotations`):
Gradio reads the annotations to inject gr.Request, gr.LikeData and gr.SelectData.
"""

import argparse
import atexit
import datetime as dt
import hashlib
import ipaddress
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.settings import apply_offline_environment

# Before gradio is imported anywhere: it reads GRADIO_ANALYTICS_ENABLED at import time.
apply_offline_environment()
# Gradio's queue keeps per-event timings for its monitoring page and, after every event, summarises its last
# 10 000 events with pandas: under 20 concurrent sessions that summary cost more than answering (py-spy,
# bench/NOTES.md §9). Keep fewer events and summarise every 100 (read when the queue is created).
os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", "1000")
os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "100")

if TYPE_CHECKING:
    import gradio as gr

    from core.settings import Settings
    from rag.assistant import Assistant

log = logging.getLogger("app")

TITLE = "Ombudsman decisions assistant"
EXAMPLE_QUESTIONS = [
    "When does the ICO handle rectification?",
    "Did Hampshire County Council do anything wrong in the child protection conference?",
    "What did the Ombudsman say about delays in complaint replies?",
    "What remedies were agreed?",
]
LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}
UPLOAD_SUFFIXES = [".txt", ".html", ".htm", ".md"]
# A streamed answer is shown at most this often. Each update re-renders the whole chat and goes through Gradio's
# post-processing and an SSE message: the extractive answer arrives in ~10 pieces within milliseconds, and under
# 20 concurrent sessions those updates, not the answering, filled the queue (py-spy, bench/NOTES.md §9).
# Ten a second still reads as streaming for an LLM's tokens.
STREAM_UPDATE_S = 0.1
FILTER_COLUMNS = {"authority": "Any council", "category": "Any category", "outcome": "Any outcome"}


# access --------------------------------------------------------------------------------------------------------
def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    name = host.strip().strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def bind_problem(settings: "Settings") -> str | None:
    """Why the app must not start with these access settings, or None when it may."""
    has_user = bool(settings.auth_username)
    has_password = bool(settings.auth_password and settings.auth_password.get_secret_value())
    if has_user != has_password:
        return ("Set both OMBUDS_AUTH_USERNAME and OMBUDS_AUTH_PASSWORD (one is missing), or neither to run "
                "on loopback only.")
    if not is_loopback(settings.host) and not has_user:
        return (f"Refusing to listen on {settings.host}: other machines could reach it and the decisions, questions "
                "and logs would be open to anyone. Set OMBUDS_AUTH_USERNAME and OMBUDS_AUTH_PASSWORD to require a "
                "login, or keep the default --host 127.0.0.1.")
    return None


def auth_for(settings: "Settings") -> tuple[str, str] | None:
    """Gradio auth pair when a username and password are configured."""
    if settings.auth_username and settings.auth_password:
        return settings.auth_username, settings.auth_password.get_secret_value()
    return None


# look ---------------------------------------------------------------------------------------------------------
def theme() -> Any:
    """A calm, readable theme with system fonts (no web-font download: the app makes no outbound requests)."""
    import gradio as gr

    system = ["system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif"]
    mono = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]
    return gr.themes.Default(primary_hue="blue", secondary_hue="slate", neutral_hue="slate", font=system,
                             font_mono=mono, radius_size="md").set(
        body_background_fill="#f3f5f8", block_shadow="none", block_label_background_fill="transparent",
        block_label_border_width="0px", block_title_text_weight="600",
        # WCAG 2.2 AA contrast (4.5:1 for text), measured by axe-core: the default subdued text (#94a3b8 on
        # #f3f5f8, 2.3:1) and white on the default primary blue (#3b82f6, 3.7:1) fall short.
        body_text_color_subdued="#475569", button_primary_background_fill="#1d4ed8",
        button_primary_background_fill_hover="#1e40af", button_primary_text_color="#ffffff",
        button_primary_text_color_hover="#ffffff",
    )


def launch_kwargs(settings: "Settings") -> dict[str, Any]:
    """Everything launch() needs besides host and port: look, auth, and nothing that calls out."""
    from rag import ui_assets

    return {
        "theme": theme(),
        "css": ui_assets.CSS,
        "head": f"<script>{ui_assets.JS}</script>",
        "auth": auth_for(settings),
        "auth_message": "Sign in to the Ombudsman decisions assistant.",
        "share": False,
        "show_error": False,  # tracebacks go to the server log, never to the page
        "footer_links": [],
        "max_file_size": settings.max_file_bytes,
        "enable_monitoring": False,
        "pwa": False,
        "mcp_server": False,
        "ssr_mode": False,
        "inbrowser": False,
    }


# uploads ------------------------------------------------------------------------------------------------------
def _safe_name(name: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).name).strip("._") or "decision"
    return stem[-120:]


def store_uploads(files: Sequence[str], folder: Path) -> list[Path]:
    """Copy uploaded files into the persistent uploads folder (Gradio's temporary copies are deleted later)."""
    folder.mkdir(parents=True, exist_ok=True)
    stored = []
    for f in files:
        source = Path(f)
        data = source.read_bytes()
        target = folder / _safe_name(source.name)
        if target.exists() and target.read_bytes() != data:
            digest = hashlib.sha256(data).hexdigest()[:8]
            target = target.with_name(f"{target.stem}-{digest}{target.suffix}")
        if not target.exists():
            shutil.copyfile(source, target)
        stored.append(target)
    return stored


def ingest_files(assistant: "Assistant", settings: "Settings", paths: Sequence[Path],
                 progress: Any = None) -> Any:
    """Ingest into the index the app has open, in this process, holding the index lock exclusively meanwhile."""
    from ingest.index import Indexer, IndexLock

    index = assistant.index
    temporary = None
    if index.lock is not None:
        index.lock.upgrade()
    else:  # server mode: the app holds no lock while reading; writers still take the folder's lock
        temporary = IndexLock(settings.index_dir, exclusive=True).acquire()
    try:
        report = Indexer(index).ingest(list(paths), progress=progress)
    finally:
        if index.lock is not None:
            index.lock.downgrade()
        if temporary is not None:
            temporary.release()
    assistant.refresh()
    return report


def report_markdown(report: Any) -> str:
    """An ingest report as short Markdown (file names escaped)."""
    from rag.ui_render import escape_markdown

    lines = [f"**{report.files_seen} file(s):** {report.added} added, {report.updated} updated, "
             f"{report.unchanged} unchanged, {report.duplicate} duplicate, {report.failed} failed."]
    for item in report.failures:
        lines.append(f"- ✗ {escape_markdown(Path(item['path']).name)}: {escape_markdown(item['reason'])}")
    for item in report.duplicates:
        lines.append(f"- = {escape_markdown(Path(item['path']).name)} is already indexed")
    return "\n".join(lines)


# the decisions browser's controls ------------------------------------------------------------------------------
@dataclass
class BrowseControls:
    """The browser tab's components (built by browse_layout, wired in build_app)."""

    text: Any
    council: Any
    category: Any
    outcome: Any
    since: Any
    until: Any
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
        return [self.text, self.council, self.category, self.outcome, self.since, self.until]


def browse_layout(gr: Any, filter_choices: Any) -> BrowseControls:
    """The browser tab: search box, the same filters as the chat, the table, paging and the CSV export."""
    with gr.Row(elem_id="browse-row", equal_height=False):
        with gr.Column(scale=1, min_width=270, elem_id="browse-side"):
            text = gr.Textbox(label="Search words or a case number", lines=1, max_lines=1, elem_id="b-text",
                              placeholder="e.g. school transport appeal, or 23 009 429")
            council = gr.Dropdown(filter_choices("authority"), value="", label="Council", elem_id="b-council")
            category = gr.Dropdown(filter_choices("category"), value="", label="Category", elem_id="b-category")
            outcome = gr.Dropdown(filter_choices("outcome"), value="", label="Outcome", elem_id="b-outcome")
            since = gr.DateTime(include_time=False, type="string", label="Decided from", elem_id="b-since")
            until = gr.DateTime(include_time=False, type="string", label="Decided to", elem_id="b-until")
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
    return BrowseControls(text, council, category, outcome, since, until, search, clear, results, prev, nxt,
                          export, download)


# the app ------------------------------------------------------------------------------------------------------
def build_app(assistant: "Assistant", settings: "Settings") -> "gr.Blocks":
    """The chat UI over an opened Assistant. Launch it with launch(demo, settings)."""
    import gradio as gr

    from core.errors import OmbudsError, QuestionError
    from core.types import Answer, Filters
    from rag.browse import BrowseQuery, DecisionBrowser
    from rag.jsonl_log import append_jsonl, ensure_private_dir
    from rag.similar import similar_decisions
    from rag.ui_render import (
        Turn,
        audit_record,
        chat_messages,
        export_markdown,
        feedback_record,
        history,
        sources_panel,
        status_markdown,
    )
    from rag.ui_viewer import (
        browse_message_html,
        browse_table_html,
        parse_paragraphs,
        query_from_params,
        viewer_html,
        viewer_placeholder,
    )

    browser = DecisionBrowser(assistant.index.catalog)
    try:
        browser.ensure_index()
    except Exception:  # noqa: BLE001 - the chat still works; the browser tab says what is wrong
        log.exception("could not build the decisions browser's index in %s", browser.path)

    ensure_private_dir(settings.log_dir)
    export_dir = Path(tempfile.mkdtemp(prefix="ombuds-export-"))  # 0700; each export file 0600
    atexit.register(shutil.rmtree, export_dir, ignore_errors=True)
    ingest_lock = threading.Lock()
    # A local GGUF model is not safe to call from two threads at once; the other backends are.
    concurrency = 1 if settings.llm == "llamacpp" else 4

    def filter_choices(column: str) -> list[tuple[str, str]]:
        return [(FILTER_COLUMNS[column], "")] + [(v, v) for v in assistant.choices(column)]

    def who(request: gr.Request | None) -> tuple[str | None, str | None]:
        if request is None:
            return None, None
        return getattr(request, "session_hash", None), getattr(request, "username", None)

    def write_audit(turn: Turn, request: gr.Request | None, error_kind: str | None = None) -> None:
        session, user = who(request)
        try:
            append_jsonl(settings.audit_log_path, audit_record(turn, session=session, user=user,
                                                               error_kind=error_kind))
        except OSError:
            log.exception("could not write the audit log %s", settings.audit_log_path)
            gr.Warning("This answer could not be written to the audit log. Tell the administrator.")

    def write_export(turns: list[Turn]) -> str:
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        folder = Path(tempfile.mkdtemp(prefix="conv-", dir=export_dir))
        path = folder / f"ombudsman-conversation-{stamp}.md"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(export_markdown(turns, assistant.status()))
        return str(path)

    def ask(question: str, council: str | None, category: str | None, outcome: str | None, since: str | None,
            until: str | None, turns: list[Turn] | None,
            request: gr.Request = None) -> Iterator[tuple[Any, ...]]:  # type: ignore[assignment]
        """Answer a question, streaming; outputs: question box, chat, sources panel, state, export file."""
        turns = list(turns or [])
        question = (question or "").strip("\n")
        if not question.strip():
            gr.Warning("Type a question first.")
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        asked_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        try:
            filters = Filters(authority=council or None, category=category or None, outcome=outcome or None,
                              since=since or None, until=until or None)
        except OmbudsError as exc:
            turn = Turn(len(turns) + 1, question, Filters(), asked_at, error=str(exc))
            turns.append(turn)
            write_audit(turn, request, "filters")
            yield "", chat_messages(turns), sources_panel(turns), turns, gr.skip()
            return
        turn = Turn(len(turns) + 1, question, filters, asked_at)
        past = history(turns)
        turns.append(turn)
        yield "", chat_messages(turns), sources_panel(turns), turns, gr.skip()
        error_kind = None
        try:
            shown_at = time.monotonic()
            for item in assistant.stream(question, filters, past):
                if isinstance(item, Answer):
                    turn.answer = item
                else:
                    turn.partial += item
                    if time.monotonic() - shown_at >= STREAM_UPDATE_S:
                        shown_at = time.monotonic()
                        yield gr.skip(), chat_messages(turns), gr.skip(), gr.skip(), gr.skip()
        except QuestionError as exc:
            turn.error, error_kind = str(exc), "question"
        except OmbudsError as exc:
            log.warning("could not answer %r: %s", question[:200], exc)
            turn.error, error_kind = str(exc), type(exc).__name__
        except Exception:
            ref = uuid.uuid4().hex[:8]
            log.exception("unexpected error answering a question (reference %s)", ref)
            turn.error = ("Sorry, something went wrong while answering. Please try again; if it keeps happening, "
                          f"tell the administrator (reference {ref}).")
            error_kind = "unexpected"
        if turn.answer is None and turn.error is None:
            turn.error, error_kind = "No answer came back. Please try again.", "no-answer"
        write_audit(turn, request, error_kind)
        export = write_export(turns)
        if not any(t.answer is not None for t in turns[:-1]):  # first answer: enable the button (a config update,
            export = gr.update(value=export, interactive=True)  # which Gradio re-validates: not on every answer)
        yield "", chat_messages(turns), sources_panel(turns), turns, export

    def clear() -> tuple[Any, ...]:
        return [], [], sources_panel([]), gr.update(value=None, interactive=False), "", ""

    def record_feedback(rating: str, comment: str, turns: list[Turn] | None, turn_index: int | None,
                        request: gr.Request | None) -> str:
        answered = [t for t in (turns or []) if t.answer is not None or t.error is not None]
        if not answered:
            gr.Warning("Ask a question first; feedback is about an answer.")
            return gr.skip()
        turn = answered[-1] if turn_index is None else (turns or [])[turn_index]
        session, user = who(request)
        try:
            append_jsonl(settings.feedback_log_path, feedback_record(turn, rating, comment, settings.public_dict(),
                                                                     session=session, user=user))
        except OSError:
            log.exception("could not write the feedback log %s", settings.feedback_log_path)
            gr.Warning("Your feedback could not be saved. Tell the administrator.")
            return gr.skip()
        gr.Info("Thank you: your feedback was recorded.")
        return ""

    def feedback_up(comment: str, turns: list[Turn] | None, request: gr.Request = None) -> str:  # type: ignore
        """Thumbs up for the last answer, with an optional comment."""
        return record_feedback("up", comment, turns, None, request)

    def feedback_down(comment: str, turns: list[Turn] | None, request: gr.Request = None) -> str:  # type: ignore
        """Thumbs down for the last answer, with an optional comment."""
        return record_feedback("down", comment, turns, None, request)

    def on_like(comment: str, turns: list[Turn] | None, data: gr.LikeData,
                request: gr.Request = None) -> str:  # type: ignore[assignment]
        index = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
        turn_index = int(index) // 2
        if not turns or turn_index >= len(turns):
            return gr.skip()
        rating = ("up" if data.liked else "down") if isinstance(data.liked, bool) else str(data.liked)
        return record_feedback(rating, comment, turns, turn_index, request)

    def pick_example(ev: gr.SelectData) -> str:
        value = ev.value
        return value.get("text", "") if isinstance(value, dict) else str(value)

    def refresh_status() -> tuple[Any, ...]:
        """Index status, then the filter choices of the chat and of the browser."""
        choices = [gr.update(choices=filter_choices(c)) for c in FILTER_COLUMNS]
        return (status_markdown(assistant.status()), *choices, *choices)

    def upload(files: list[str] | None, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008
        """Ingest uploaded decision files into the index, with a progress bar."""
        if not files:
            gr.Warning("Choose one or more decision files (.txt, .html, .md) first.")
            return (gr.skip(),) * 8
        if not ingest_lock.acquire(blocking=False):
            gr.Warning("An upload is already being ingested; wait for it to finish.")
            return (gr.skip(),) * 8
        try:
            progress(0, desc="Saving files")
            stored = store_uploads(files, settings.index_dir / "uploads")
            progress((0, len(stored)), desc="Ingesting", unit="files")
            report = ingest_files(assistant, settings, stored,
                                  lambda done, total: progress((done, total), desc="Ingesting", unit="files"))
        except OmbudsError as exc:
            log.warning("upload ingest failed: %s", exc)
            return (f"⚠️ {exc}", *(gr.skip(),) * 7)
        except Exception:
            ref = uuid.uuid4().hex[:8]
            log.exception("unexpected error ingesting an upload (reference %s)", ref)
            return (f"⚠️ The files could not be ingested (reference {ref}); the details are in the server log.",
                    *(gr.skip(),) * 7)
        finally:
            ingest_lock.release()
        return (report_markdown(report), *refresh_status())


    # the decision viewer and the browser ------------------------------------------------------------------------
    def browse_query(text: str | None, council: str | None, category: str | None, outcome: str | None,
                     since: str | None, until: str | None, page: int = 1) -> BrowseQuery:
        filters = Filters(authority=council or None, category=category or None, outcome=outcome or None,
                          since=(since or "")[:10] or None, until=(until or "")[:10] or None)
        return BrowseQuery(text=(text or "").strip(), filters=filters, page=page)

    def show_page(query: BrowseQuery) -> tuple[Any, ...]:
        """Outputs: results, browse state, previous, next, download (hidden: the export is for the last search)."""
        page = browser.search(query)
        log.debug("browse %r page %d: %d matches in %.0f ms", query.text[:80], page.query.page, page.total,
                  page.elapsed_ms)
        return (browse_table_html(page), page.query, gr.update(interactive=page.query.page > 1),
                gr.update(interactive=page.query.page < page.pages), gr.update(visible=False, value=None))

    def browse_failed(exc: Exception) -> tuple[Any, ...]:
        if isinstance(exc, OmbudsError):
            message = str(exc)
        else:
            ref = uuid.uuid4().hex[:8]
            log.exception("unexpected error browsing decisions (reference %s)", ref)
            message = f"Sorry, the search failed (reference {ref}); the details are in the server log."
        return (browse_message_html(message), gr.skip(), gr.update(interactive=False),
                gr.update(interactive=False), gr.update(visible=False, value=None))

    def browse_search(text: str | None, council: str | None, category: str | None, outcome: str | None,
                      since: str | None, until: str | None) -> tuple[Any, ...]:
        """Search the decisions (words and filters), first page."""
        try:
            return show_page(browse_query(text, council, category, outcome, since, until))
        except Exception as exc:  # noqa: BLE001 - shown to the person, logged when unexpected
            return browse_failed(exc)

    def browse_turn(query: BrowseQuery | None, step: int) -> tuple[Any, ...]:
        if query is None:
            return browse_search("", "", "", "", None, None)
        try:
            return show_page(query.with_page(max(1, query.page + step)))
        except Exception as exc:  # noqa: BLE001
            return browse_failed(exc)

    def browse_prev(query: BrowseQuery | None) -> tuple[Any, ...]:
        """The previous page of the current search."""
        return browse_turn(query, -1)

    def browse_next(query: BrowseQuery | None) -> tuple[Any, ...]:
        """The next page of the current search."""
        return browse_turn(query, +1)

    def browse_export(query: BrowseQuery | None) -> Any:
        """Write the whole result of the current search as CSV and offer it for download."""
        query = query or BrowseQuery()
        folder = Path(tempfile.mkdtemp(prefix="browse-", dir=export_dir))
        path = folder / f"ombudsman-decisions-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}.csv"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            n = browser.write_csv(query, fh)
        return gr.update(value=str(path), visible=True, label=f"Download the CSV ({n:,} decisions)")

    def open_decision(request_json: str | None) -> tuple[Any, ...]:
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
        return show_decision(ref, paras, focus)

    def show_decision(ref: str, paras: tuple[int, ...], focus: int | None) -> tuple[Any, ...]:
        def failed(message: str, title: str) -> tuple[Any, ...]:
            return (viewer_placeholder(message, title=title), gr.Tabs(selected="viewer"), "",
                    gr.update(interactive=False), gr.update(interactive=False))

        try:
            decision = browser.decision(ref) if ref else None
        except OmbudsError as exc:
            log.warning("could not open decision %r: %s", ref, exc)
            return failed(str(exc), "The decision could not be opened")
        except Exception:  # noqa: BLE001
            code = uuid.uuid4().hex[:8]
            log.exception("unexpected error opening decision %r (reference %s)", ref, code)
            return failed(f"Sorry, the decision could not be opened (reference {code}); the details are in the "
                          "server log.", "The decision could not be opened")
        if decision is None:
            return failed(f"No decision {ref!r} is in the index. Check the case number, or find the decision in "
                          "the browser." if ref else "No decision was named.", "Decision not found")
        # Neighbours need the vector store; if it cannot answer (a stopped Chroma server), the decision still opens.
        near: list[Any] | None
        try:
            near = similar_decisions(assistant.index.catalog, assistant.index.store, assistant.index.embedder,
                                     decision, n=5)
        except Exception:  # noqa: BLE001
            log.exception("could not find decisions similar to %s", decision.label)
            near = None
        return (viewer_html(decision, paras, focus, near), gr.Tabs(selected="viewer"), decision.label,
                gr.update(interactive=bool(decision.case_number)), gr.update(interactive=True))

    def ask_about(label: str | None) -> tuple[Any, ...]:
        """Back to the chat with the question box scoped to the open decision (its case number in the question:
        a case number in a question is looked up first, so the answer comes from this decision)."""
        if not label:
            return gr.skip(), gr.skip()
        return gr.update(value=f"In decision {label}: "), gr.Tabs(selected="chat")

    def on_load(request: gr.Request = None) -> tuple[Any, ...]:  # type: ignore[assignment]
        """A shared address: ?case=23-009-429[&para=7] opens a decision; ?view=browse&q=...&authority=... a
        search. Outputs: tabs, viewer, viewer_ref, ask-about, similar, then the browser's results, state,
        previous, next, download and its six inputs."""
        params = dict(request.query_params) if request is not None else {}
        keep_inputs = (gr.skip(),) * 6
        try:
            ref, query, paras = query_from_params(params)
        except OmbudsError as exc:
            return (gr.Tabs(selected="browse"), *(gr.skip(),) * 4, browse_message_html(
                f"The link's search could not be read: {exc}"), gr.skip(), gr.skip(), gr.skip(), gr.skip(),
                *keep_inputs)
        browse_out: tuple[Any, ...]
        inputs: tuple[Any, ...] = keep_inputs
        if query is not None:
            try:
                browse_out = show_page(query)
            except Exception as exc:  # noqa: BLE001
                browse_out = browse_failed(exc)
            f = query.filters
            inputs = (query.text, f.authority or "", f.category or "", f.outcome or "",
                      f.since.isoformat() if f.since else None, f.until.isoformat() if f.until else None)
        else:
            browse_out = browse_search("", "", "", "", None, None)
        if ref:
            focus = paras[0] if paras else None
            viewer_out = show_decision(ref, paras, focus)
            return (viewer_out[1], viewer_out[0], *viewer_out[2:], *browse_out, *inputs)
        tab = gr.Tabs(selected="browse") if query is not None else gr.skip()
        return (tab, *(gr.skip(),) * 4, *browse_out, *inputs)

    # layout ---------------------------------------------------------------------------------------------------
    with gr.Blocks(title=TITLE, analytics_enabled=False, fill_width=True, delete_cache=(3600, 86400)) as demo:
        turns_state = gr.State([])
        gr.HTML('<header class="app-header"><div class="app-mark">⚖</div><div><h1>Ombudsman decisions '
                'assistant</h1><p>Answers quote published decisions of the Local Government and Social Care '
                "Ombudsman and cite case numbers and paragraphs. Check the cited paragraph before relying on it."
                "</p></div></header>", elem_id="app-header-block")
        with gr.Tabs(selected="chat", elem_id="tabs") as tabs:
            with gr.Tab("Ask", id="chat", elem_id="tab-chat"):
                with gr.Row(equal_height=False, elem_id="main-row"):
                    with gr.Column(scale=1, min_width=270, elem_id="side-col"):
                        gr.Markdown("## Filters", elem_classes="side-h")
                        council = gr.Dropdown(filter_choices("authority"), value="", label="Council",
                                              elem_id="f-council")
                        category = gr.Dropdown(filter_choices("category"), value="", label="Category",
                                               elem_id="f-category")
                        outcome = gr.Dropdown(filter_choices("outcome"), value="", label="Outcome",
                                              elem_id="f-outcome")
                        since = gr.DateTime(include_time=False, type="string", label="Decided from",
                                            elem_id="f-since")
                        until = gr.DateTime(include_time=False, type="string", label="Decided to",
                                            elem_id="f-until")
                        reset_filters = gr.Button("Clear filters", size="sm", variant="secondary")
                        gr.Markdown("## Index", elem_classes="side-h")
                        status_md = gr.Markdown(status_markdown(assistant.status()), label="Index status",
                                                elem_id="index-status")
                        if settings.allow_upload:
                            with gr.Accordion("Add decisions", open=False, elem_id="upload"):
                                files = gr.File(file_count="multiple", file_types=UPLOAD_SUFFIXES,
                                                type="filepath", label="Decision files (.txt, .html, .md)",
                                                height=140, elem_id="upload-files")
                                ingest_btn = gr.Button("Ingest files", variant="secondary", size="sm",
                                                       elem_id="ingest-btn")
                                ingest_report = gr.Markdown(label="Ingest report", elem_id="ingest-report")
                    with gr.Column(scale=3, min_width=420, elem_id="chat-col"):
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
                            ask_btn = gr.Button("Ask", variant="primary", scale=1, min_width=90, elem_id="ask-btn")
                        with gr.Row(elem_id="tools-row"):
                            clear_btn = gr.Button("New conversation", size="sm", variant="secondary",
                                                  elem_id="clear-btn")
                            export_btn = gr.DownloadButton("Export as Markdown", size="sm", variant="secondary",
                                                           interactive=False, elem_id="export-btn")
                        with gr.Accordion("Feedback on the last answer", open=False, elem_id="feedback"):
                            comment = gr.Textbox(label="Comment", show_label=False, lines=2,
                                                 elem_id="feedback-comment",
                                                 placeholder="Optional comment: what was right or wrong?")
                            with gr.Row():
                                up_btn = gr.Button("👍 Helpful", size="sm", elem_id="fb-up")
                                down_btn = gr.Button("👎 Not helpful", size="sm", elem_id="fb-down")
                    with gr.Column(scale=2, min_width=340, elem_id="sources-col"):
                        sources = gr.HTML(sources_panel([]), label="Sources", elem_id="sources")
            with gr.Tab("Browse decisions", id="browse", elem_id="tab-browse"):
                b = browse_layout(gr, filter_choices)
            with gr.Tab("Decision", id="viewer", elem_id="tab-viewer"):
                with gr.Row(elem_id="viewer-tools"):
                    back_btn = gr.Button("← Back to the conversation", variant="secondary", size="sm",
                                         elem_id="back-btn")
                    ask_about_btn = gr.Button("Ask about this decision", variant="primary", size="sm",
                                              interactive=False, elem_id="ask-about-btn")
                    similar_btn = gr.Button("Similar decisions", variant="secondary", size="sm", interactive=False,
                                            elem_id="similar-btn")
                viewer = gr.HTML(viewer_placeholder(), elem_id="viewer")
        viewer_ref = gr.State("")
        # The bridge from links in the page (citations, cards, the table) to the server: the page's script puts
        # {"ref", "paras", "focus"} in window.__ombudsOpen and clicks the hidden button (rag/ui_assets.py).
        open_request = gr.Textbox(visible="hidden", elem_id="open-request", label="Decision to open")
        open_btn = gr.Button("Open decision", visible="hidden", elem_id="open-btn")

        # events -----------------------------------------------------------------------------------------------
        ask_inputs = [question, council, category, outcome, since, until, turns_state]
        ask_outputs = [question, chatbot, sources, turns_state, export_btn]
        ask_opts = {"concurrency_limit": concurrency, "concurrency_id": "ask", "show_progress": "hidden"}
        asking = [
            ask_btn.click(ask, ask_inputs, ask_outputs, api_name="ask", **ask_opts),
            question.submit(ask, ask_inputs, ask_outputs, api_visibility="private", **ask_opts),
            chatbot.example_select(pick_example, None, question, api_visibility="private").then(
                ask, ask_inputs, ask_outputs, api_visibility="private", **ask_opts),
        ]
        clear_outputs = [chatbot, turns_state, sources, export_btn, question, comment]
        # A new conversation also stops an answer still streaming, which would otherwise bring the old one back.
        clear_btn.click(clear, None, clear_outputs, api_name="clear", cancels=asking)
        # The chat's own bin icon empties the chat; forget the conversation with it.
        chatbot.clear(clear, None, clear_outputs, api_visibility="private", cancels=asking)
        up_btn.click(feedback_up, [comment, turns_state], comment, api_name="feedback_up")
        down_btn.click(feedback_down, [comment, turns_state], comment, api_name="feedback_down")
        chatbot.like(on_like, [comment, turns_state], comment, api_visibility="private")
        reset_filters.click(lambda: ("", "", "", None, None), None, [council, category, outcome, since, until],
                            api_visibility="private")
        filter_outputs = [council, category, outcome, b.council, b.category, b.outcome]
        demo.load(refresh_status, None, [status_md, *filter_outputs], api_name="status",
                  show_progress="hidden")
        # the viewer and the browser -------------------------------------------------------------------------
        browse_state = gr.State(None)
        browse_outputs = [b.results, browse_state, b.prev, b.next, b.download]
        viewer_outputs = [viewer, tabs, viewer_ref, ask_about_btn, similar_btn]
        scroll_js = "() => window.ombudsShowCited && window.ombudsShowCited()"
        browse_js = "() => window.ombudsFocusResults && window.ombudsFocusResults()"
        for trigger in (b.search.click, b.text.submit):
            trigger(browse_search, b.inputs, browse_outputs, api_name="browse" if trigger == b.search.click
                    else None, api_visibility="public" if trigger == b.search.click else "private",
                    show_progress="hidden", queue=False).then(None, None, None, js=browse_js)
        b.clear.click(lambda: ("", "", "", "", None, None), None, b.inputs, api_visibility="private").then(
            browse_search, b.inputs, browse_outputs, api_visibility="private", show_progress="hidden")
        b.prev.click(browse_prev, browse_state, browse_outputs, api_name="browse_prev",
                     show_progress="hidden", queue=False).then(None, None, None, js=browse_js)
        b.next.click(browse_next, browse_state, browse_outputs, api_name="browse_next",
                     show_progress="hidden", queue=False).then(None, None, None, js=browse_js)
        b.export.click(browse_export, browse_state, b.download, api_visibility="private")
        open_btn.click(open_decision, open_request, viewer_outputs, api_name="open_decision",
                       js="(x) => window.__ombudsOpen || x", show_progress="hidden").then(
            None, None, None, js=scroll_js)
        ask_about_btn.click(ask_about, viewer_ref, [question, tabs], api_visibility="private").then(
            None, None, None, js="() => window.ombudsFocusQuestion && window.ombudsFocusQuestion()")
        back_btn.click(lambda: gr.Tabs(selected="chat"), None, tabs, api_visibility="private")
        similar_btn.click(None, None, None, js="() => window.ombudsShowSimilar && window.ombudsShowSimilar()")
        demo.load(on_load, None, [tabs, viewer, viewer_ref, ask_about_btn, similar_btn, *browse_outputs, *b.inputs],
                  api_visibility="private", show_progress="hidden").then(None, None, None, js=scroll_js)
        if settings.allow_upload:
            ingest_btn.click(upload, files, [ingest_report, status_md, *filter_outputs],
                             api_name="ingest", concurrency_limit=1)
    return demo


def launch(demo: "gr.Blocks", settings: "Settings", **overrides: Any) -> Any:
    """Launch on settings.host:settings.port with the app's look and access rules (overrides win)."""
    kwargs = launch_kwargs(settings)
    kwargs.update(overrides)
    return demo.launch(server_name=settings.host, server_port=settings.port, **kwargs)


# command line -------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """Flags override OMBUDS_* environment variables and .env."""
    p = argparse.ArgumentParser(prog="python app.py", description=f"{TITLE}: the chat UI (Gradio). "
                                "Settings come from OMBUDS_* environment variables or .env; flags override them.")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1; any other needs "
                                  "OMBUDS_AUTH_USERNAME and OMBUDS_AUTH_PASSWORD)")
    p.add_argument("--port", type=int, help="port (default 7860)")
    p.add_argument("--index-dir", type=Path, help="index folder (default data/index)")
    p.add_argument("--chroma-url", help="use a Chroma server, e.g. http://127.0.0.1:8000 (default: embedded)")
    p.add_argument("--llm", choices=["extractive", "openai", "llamacpp"], help="answer backend (default extractive)")
    p.add_argument("--openai-base-url", help="OpenAI-compatible endpoint for --llm openai")
    p.add_argument("--openai-model", help="model name for --llm openai")
    p.add_argument("--model-path", type=Path, help="GGUF file for --llm llamacpp")
    p.add_argument("--log-dir", type=Path, help="folder of the audit and feedback logs (default data/logs)")
    p.add_argument("--allow-upload", action="store_true", default=None,
                   help="let staff add decision files from the UI")
    return p


def setup_app_logging(settings: "Settings") -> None:
    """Logs to stderr and to log_dir/app.log (owner-only): tracebacks go here, never to the page."""
    from core.logs import setup_logging
    from rag.jsonl_log import OWNER_ONLY_FILE, ensure_private_dir

    setup_logging(settings.log_level)
    ensure_private_dir(settings.log_dir)
    path = settings.log_dir / "app.log"
    os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, OWNER_ONLY_FILE))
    handler = RotatingFileHandler(path, maxBytes=5_000_000, backupCount=3, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)


def main(argv: list[str] | None = None) -> int:
    """Entry point: 0 after a normal shutdown, 2 for configuration, access or index problems."""
    args = build_parser().parse_args(argv)
    from core.errors import ConfigError, IndexStateError
    from core.settings import load_settings

    try:
        settings = load_settings(host=args.host, port=args.port, index_dir=args.index_dir, chroma_url=args.chroma_url,
                                 llm=args.llm, openai_base_url=args.openai_base_url, openai_model=args.openai_model,
                                 llamacpp_model_path=args.model_path, log_dir=args.log_dir,
                                 allow_upload=args.allow_upload)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    problem = bind_problem(settings)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    setup_app_logging(settings)
    from rag.assistant import Assistant

    try:
        assistant = Assistant.from_settings(settings)
        log.info("warming up: the embedding model, the vector and lexical indexes")
        log.info("warm in %.1f s", assistant.warm_up())
    except (ConfigError, IndexStateError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        demo = build_app(assistant, settings)
        status = assistant.status()
        log.info("%s decisions indexed; answers by %s; open http://%s:%d", status["decisions"], status["backend"],
                 settings.host if ":" not in settings.host else f"[{settings.host}]", settings.port)
        launch(demo, settings)
    except KeyboardInterrupt:
        pass
    finally:
        assistant.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
