"""The audit and feedback logs: what each record holds, and append-only JSONL files that survive a crash
mid-write and are readable by the owner only.

Each record is one line written with a single os.write, then fsynced. A crash can leave a torn last line:
the reader skips it, and the next append first ends that fragment with a newline so that the new record is
not glued onto it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import stat
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ui.render import Turn

log = logging.getLogger(__name__)

OWNER_ONLY_FILE = 0o600
OWNER_ONLY_DIR = 0o700

_locks: dict[Path, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock_for(path: Path) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(path, threading.Lock())


def ensure_private_dir(folder: Path) -> None:
    """Create a log folder readable by its owner only (an existing folder keeps its permissions)."""
    folder.mkdir(mode=OWNER_ONLY_DIR, parents=True, exist_ok=True)


def append_jsonl(path: Path | str, record: Mapping[str, Any]) -> None:
    """Append one JSON record as a line: created 0600, flushed and fsynced before returning."""
    path = Path(path).resolve()
    line = json.dumps(record, ensure_ascii=False, default=str, separators=(",", ":")) + "\n"
    data = line.encode("utf-8")
    ensure_private_dir(path.parent)
    with _lock_for(path):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, OWNER_ONLY_FILE)
        try:
            info = os.fstat(fd)
            if stat.S_IMODE(info.st_mode) & 0o077:
                # Created by something else with wider permissions: these logs hold questions and answers.
                os.fchmod(fd, OWNER_ONLY_FILE)
            if info.st_size and _last_byte(path, info.st_size) != b"\n":
                data = b"\n" + data  # end a torn line left by a crash
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
            os.fsync(fd)
        finally:
            os.close(fd)


def _last_byte(path: Path, size: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(size - 1)
        return fh.read(1)


def iter_jsonl(path: Path | str) -> Iterator[dict[str, Any]]:
    """Records of a JSONL log in order; unreadable lines (a torn last line after a crash) are skipped."""
    path = Path(path)
    if not path.exists():
        return
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                log.warning("%s line %d is incomplete or corrupt (a write interrupted by a crash?); skipped",
                            path, number)
                continue
            if isinstance(record, dict):
                yield record
            else:
                log.warning("%s line %d is not a JSON object; skipped", path, number)


def read_jsonl(path: Path | str) -> list[dict[str, Any]]:
    """All readable records of a JSONL log (see iter_jsonl)."""
    return list(iter_jsonl(path))


# records ------------------------------------------------------------------------------------------------------
def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


def audit_record(turn: Turn, *, session: str | None = None, user: str | None = None,
                 error_kind: str | None = None) -> dict[str, Any]:
    """One audit line: the question, the answer with its citations and sources, or the error shown."""
    record: dict[str, Any] = {"ts": _now(), "event": "answer" if turn.answer is not None else "error",
                              "session": session, "user": user, "turn": turn.number, "asked_at": turn.asked_at,
                              "question": turn.question, "filters_requested": turn.filters.to_dict()}
    if turn.answer is not None:
        record.update(turn.answer.to_dict())
        record["question"] = turn.question
    else:
        record.update({"error": turn.error, "error_kind": error_kind})
    return record


def feedback_record(turn: Turn, rating: str, comment: str | None, settings: Mapping[str, Any], *,
                    session: str | None = None, user: str | None = None) -> dict[str, Any]:
    """One feedback line: the rating and comment with what produced the answer (question, answer,
    citations, filters, settings)."""
    a = turn.answer
    return {
        "ts": _now(), "rating": rating, "comment": (comment or "").strip() or None, "session": session,
        "user": user, "turn": turn.number, "question": turn.question,
        "answer": a.text if a else None, "error": turn.error,
        "citations": [c.to_dict() for c in a.citations] if a else [],
        "sources": [{"rank": h.rank, "doc_id": h.chunk.doc_id, "case_number": h.chunk.case_number,
                     "chunk_id": h.chunk.chunk_id, "paragraphs": list(h.chunk.paragraphs)} for h in a.sources]
        if a else [],
        "filters": a.filters_applied.to_dict() if a else turn.filters.to_dict(),
        "inferred_filters": list(a.inferred_filters) if a else [],
        "abstained": a.abstained if a else None,
        "backend": a.backend if a else None, "model": a.model if a else None,
        "prompt_version": a.prompt_version if a else None,
        "settings": dict(settings),
    }
