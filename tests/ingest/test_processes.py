"""Several processes on one embedded index: readers share it; an ingest stops at once and says to use a server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

try:  # the shared helper in tests/conftest.py, under either pytest import mode (prepend / importlib)
    from conftest import ICO_ANSWERS, ROOT, SAMPLE_DIR
except ImportError:
    from tests.conftest import ICO_ANSWERS, ROOT, SAMPLE_DIR

# A reader as the app is one: opens the index through Assistant.from_settings and keeps it open.
READER = """
import sys, time
from rag.assistant import Assistant
a = Assistant.from_settings(index_dir=sys.argv[1])
print("ready", a.status()["chunks"], flush=True)
time.sleep(float(sys.argv[2]))
a.close()
"""


def start_reader(index_dir: Path, seconds: float = 60.0) -> subprocess.Popen:
    """A process holding the index open for reading; returns once it says it is ready."""
    proc = subprocess.Popen([sys.executable, "-c", READER, str(index_dir), str(seconds)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    line = proc.stdout.readline()
    if not line.startswith("ready"):
        proc.kill()
        pytest.fail(f"reader did not open the index: {line!r} {proc.stderr.read()[-2000:]}")
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait(10)



@pytest.mark.slow
def test_readers_share_the_embedded_index_and_an_ingest_stops_at_once(sample_index_dir, embedder):
    from core.settings import load_settings
    from ingest.index import open_index
    from rag.assistant import Assistant

    reader = start_reader(sample_index_dir)
    try:
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-m", "ingest", str(SAMPLE_DIR), "--index-dir", str(sample_index_dir)],
                                cwd=ROOT, capture_output=True, text=True, timeout=120)
        elapsed = time.monotonic() - started
        # A second reader at the same time: this process, asking a question.
        settings = load_settings(index_dir=sample_index_dir)
        with Assistant(settings, open_index(settings, write=False, embedder=embedder)) as assistant:
            answer = assistant.ask("When does the ICO handle rectification?")
        assert reader.poll() is None  # the first reader was not disturbed
    finally:
        stop(reader)
    assert result.returncode == 2, result.stderr
    message = result.stderr
    assert "in use by another process" in message
    assert "make chroma" in message and "OMBUDS_CHROMA_URL" in message  # says how to share the index
    assert "Traceback" not in message
    # "At once": no model load, no parsing; only the interpreter and imports (generous on a loaded machine).
    assert elapsed < 45, elapsed
    assert not answer.abstained and set(answer.cited_labels) & ICO_ANSWERS
