"""Decision files added from the page: kept in the index's uploads folder, ingested into the index the app has
open, and reported as short Markdown."""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ui.format import escape_markdown

if TYPE_CHECKING:
    from core.settings import Settings
    from ingest.index import IngestReport
    from rag.assistant import Assistant

UPLOAD_SUFFIXES = [".txt", ".html", ".htm", ".md"]


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


def ingest_files(assistant: Assistant, settings: Settings, paths: Sequence[Path],
                 progress: Any = None) -> IngestReport:
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


def report_markdown(report: IngestReport) -> str:
    """An ingest report as short Markdown (file names escaped)."""
    lines = [f"**{report.files_seen} file(s):** {report.added} added, {report.updated} updated, "
             f"{report.unchanged} unchanged, {report.duplicate} duplicate, {report.failed} failed."]
    for item in report.failures:
        lines.append(f"- ✗ {escape_markdown(Path(item['path']).name)}: {escape_markdown(item['reason'])}")
    for item in report.duplicates:
        lines.append(f"- = {escape_markdown(Path(item['path']).name)} is already indexed")
    return "\n".join(lines)
