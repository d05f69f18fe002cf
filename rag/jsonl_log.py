"""Append-only JSONL logs (audit, feedback) that survive a crash mid-write and are readable by the owner only.

Each record is one line written with a single os.write, then fsynced. A crash can leave a torn last line:
the reader skips it, and the next append first ends that fragment with a newline so that the new record is
not glued onto it.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

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
