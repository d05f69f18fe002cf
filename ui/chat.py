"""The chat tab's handlers: ask (streamed), a new conversation, feedback, the index status, uploads.

Plain methods over the app's dependencies (assistant, settings, a folder for exports), so a test calls them
without building the page. Outputs are values or gr.update/gr.skip, in the order ui/events.py wires them.

Annotated with real classes, not strings (no `from __future__ import annotations`): Gradio reads the annotations
to inject gr.Request, gr.LikeData and gr.SelectData.
"""

import datetime as dt
import logging
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr

from core.errors import OmbudsError, QuestionError
from core.types import Answer, Filters
from ui.audit_log import append_jsonl, audit_record, feedback_record
from ui.render import Turn, chat_messages, export_markdown, history, sources_panel, status_markdown
from ui.uploads import ingest_files, report_markdown, store_uploads

if TYPE_CHECKING:
    from core.settings import Settings
    from rag.assistant import Assistant

log = logging.getLogger(__name__)

# A streamed answer is shown at most this often. Each update re-renders the whole chat and goes through Gradio's
# post-processing and an SSE message: the extractive answer arrives in ~10 pieces within milliseconds, and under
# 20 concurrent sessions those updates, not the answering, filled the queue (py-spy, bench/NOTES.md §9).
# Ten a second still reads as streaming for an LLM's tokens.
STREAM_UPDATE_S = 0.1
FILTER_COLUMNS = {"authority": "Any council", "category": "Any category", "outcome": "Any outcome"}


def who(request: gr.Request | None) -> tuple[str | None, str | None]:
    """(session, username) of the person behind a request, for the logs."""
    if request is None:
        return None, None
    return getattr(request, "session_hash", None), getattr(request, "username", None)


class ChatHandlers:
    """What the chat tab's events call. stream_update_s: how often a streamed answer is shown at most."""

    def __init__(self, assistant: "Assistant", settings: "Settings", export_dir: Path,
                 stream_update_s: float = STREAM_UPDATE_S) -> None:
        self.assistant = assistant
        self.settings = settings
        self.export_dir = export_dir
        self.stream_update_s = stream_update_s
        self._ingest_lock = threading.Lock()

    def filter_choices(self, column: str) -> list[tuple[str, str]]:
        """A filter's dropdown: 'Any ...' first, then the values in the index."""
        return [(FILTER_COLUMNS[column], "")] + [(v, v) for v in self.assistant.choices(column)]

    # asking ---------------------------------------------------------------------------------------------------
    def ask(self, question: str, council: str | None, category: str | None, outcome: str | None, since: str | None,
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
            turns.append(Turn(len(turns) + 1, question, Filters(), asked_at, error=str(exc)))
            self._write_audit(turns[-1], request, "filters")
            yield "", chat_messages(turns), sources_panel(turns), turns, gr.skip()
            return
        turn = Turn(len(turns) + 1, question, filters, asked_at)
        past = history(turns)
        turns.append(turn)
        yield "", chat_messages(turns), sources_panel(turns), turns, gr.skip()
        error_kind = yield from self._stream_answer(turn, turns, past)
        if turn.answer is None and turn.error is None:
            turn.error, error_kind = "No answer came back. Please try again.", "no-answer"
        self._write_audit(turn, request, error_kind)
        yield "", chat_messages(turns), sources_panel(turns), turns, self._export_output(turns)

    def _stream_answer(self, turn: Turn, turns: list[Turn],
                       past: list[dict[str, str]]) -> Generator[tuple[Any, ...], None, str | None]:
        """Fill turn from Assistant.stream, yielding the chat at most every stream_update_s; returns the kind of
        error shown instead of an answer, if any."""
        try:
            shown_at = time.monotonic()
            for item in self.assistant.stream(turn.question, turn.filters, past):
                if isinstance(item, Answer):
                    turn.answer = item
                else:
                    turn.partial += item
                    if time.monotonic() - shown_at >= self.stream_update_s:
                        shown_at = time.monotonic()
                        yield gr.skip(), chat_messages(turns), gr.skip(), gr.skip(), gr.skip()
        except QuestionError as exc:
            turn.error = str(exc)
            return "question"
        except OmbudsError as exc:
            log.warning("could not answer %r: %s", turn.question[:200], exc)
            turn.error = str(exc)
            return type(exc).__name__
        except Exception:
            ref = uuid.uuid4().hex[:8]
            log.exception("unexpected error answering a question (reference %s)", ref)
            turn.error = ("Sorry, something went wrong while answering. Please try again; if it keeps happening, "
                          f"tell the administrator (reference {ref}).")
            return "unexpected"
        return None

    def _export_output(self, turns: list[Turn]) -> Any:
        """The export button's new file; with the first answer also enabled (a config update, which Gradio
        re-validates: so not on every answer)."""
        export = self.write_export(turns)
        if not any(t.answer is not None for t in turns[:-1]):
            return gr.update(value=export, interactive=True)
        return export

    def write_export(self, turns: list[Turn]) -> str:
        """The conversation as a Markdown file only this user can read; returns its path."""
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        folder = Path(tempfile.mkdtemp(prefix="conv-", dir=self.export_dir))
        path = folder / f"ombudsman-conversation-{stamp}.md"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(export_markdown(turns, self.assistant.status()))
        return str(path)

    def _write_audit(self, turn: Turn, request: gr.Request | None, error_kind: str | None = None) -> None:
        session, user = who(request)
        try:
            append_jsonl(self.settings.audit_log_path, audit_record(turn, session=session, user=user,
                                                                    error_kind=error_kind))
        except OSError:
            log.exception("could not write the audit log %s", self.settings.audit_log_path)
            gr.Warning("This answer could not be written to the audit log. Tell the administrator.")

    @staticmethod
    def clear() -> tuple[Any, ...]:
        """A new conversation; outputs: chat, state, sources panel, export button, question box, comment."""
        return [], [], sources_panel([]), gr.update(value=None, interactive=False), "", ""

    @staticmethod
    def clear_filters() -> tuple[Any, ...]:
        """Every chat filter back to 'any'."""
        return "", "", "", None, None

    @staticmethod
    def pick_example(ev: gr.SelectData) -> str:
        """The example question picked, into the question box."""
        value = ev.value
        return value.get("text", "") if isinstance(value, dict) else str(value)

    # feedback -------------------------------------------------------------------------------------------------
    def feedback_up(self, comment: str, turns: list[Turn] | None,
                    request: gr.Request = None) -> str:  # type: ignore[assignment]
        """Thumbs up for the last answer, with an optional comment."""
        return self.record_feedback("up", comment, turns, None, request)

    def feedback_down(self, comment: str, turns: list[Turn] | None,
                      request: gr.Request = None) -> str:  # type: ignore[assignment]
        """Thumbs down for the last answer, with an optional comment."""
        return self.record_feedback("down", comment, turns, None, request)

    def on_like(self, comment: str, turns: list[Turn] | None, data: gr.LikeData,
                request: gr.Request = None) -> str:  # type: ignore[assignment]
        """The like/dislike buttons under an answer in the chat itself."""
        index = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
        turn_index = int(index) // 2
        if not turns or turn_index >= len(turns):
            return gr.skip()
        rating = ("up" if data.liked else "down") if isinstance(data.liked, bool) else str(data.liked)
        return self.record_feedback(rating, comment, turns, turn_index, request)

    def record_feedback(self, rating: str, comment: str, turns: list[Turn] | None, turn_index: int | None,
                        request: gr.Request | None) -> str:
        """One line in the feedback log about a turn (the last answered one without turn_index); clears the
        comment box."""
        answered = [t for t in (turns or []) if t.answer is not None or t.error is not None]
        if not answered:
            gr.Warning("Ask a question first; feedback is about an answer.")
            return gr.skip()
        turn = answered[-1] if turn_index is None else (turns or [])[turn_index]
        session, user = who(request)
        try:
            append_jsonl(self.settings.feedback_log_path,
                         feedback_record(turn, rating, comment, self.settings.public_dict(), session=session,
                                         user=user))
        except OSError:
            log.exception("could not write the feedback log %s", self.settings.feedback_log_path)
            gr.Warning("Your feedback could not be saved. Tell the administrator.")
            return gr.skip()
        gr.Info("Thank you: your feedback was recorded.")
        return ""

    # the index ------------------------------------------------------------------------------------------------
    def refresh_status(self) -> tuple[Any, ...]:
        """Index status, then the filter choices of the chat and of the browser."""
        choices = [gr.update(choices=self.filter_choices(c)) for c in FILTER_COLUMNS]
        return (status_markdown(self.assistant.status()), *choices, *choices)

    def upload(self, files: list[str] | None,
               progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008
        """Ingest uploaded decision files into the index, with a progress bar."""
        if not files:
            gr.Warning("Choose one or more decision files (.txt, .html, .md) first.")
            return (gr.skip(),) * 8
        if not self._ingest_lock.acquire(blocking=False):
            gr.Warning("An upload is already being ingested; wait for it to finish.")
            return (gr.skip(),) * 8
        try:
            progress(0, desc="Saving files")
            stored = store_uploads(files, self.settings.index_dir / "uploads")
            progress((0, len(stored)), desc="Ingesting", unit="files")
            report = ingest_files(self.assistant, self.settings, stored,
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
            self._ingest_lock.release()
        return (report_markdown(report), *self.refresh_status())
