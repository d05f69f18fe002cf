"""The chat app launched in-process on loopback over the sample index (real Chroma, real embedding model)."""

from __future__ import annotations

import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# Flags that let Debian's Chromium run headless as root in a container without reaching the network.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
HOSTILE_DECISION = Path(__file__).resolve().parent / "fixtures" / "hostile_decision.txt"


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningApp:
    """An app listening on loopback: its URL, settings and the Assistant behind it."""

    url: str
    settings: object
    assistant: object
    demo: object


def _start(settings, embedder) -> RunningApp:
    from app import build_app, launch
    from ingest.index import open_index
    from rag.assistant import Assistant

    # The session's embedding model is reused (Assistant.from_settings would load a second copy).
    assistant = Assistant(settings, open_index(settings, write=False, create=False, embedder=embedder))
    demo = build_app(assistant, settings)
    launch(demo, settings, prevent_thread_lock=True, quiet=True)
    return RunningApp(f"http://127.0.0.1:{settings.port}/", settings, assistant, demo)


def _stop(running: RunningApp) -> None:
    running.demo.close()
    running.assistant.close()


@pytest.fixture(scope="session")
def app_index_dir(sample_index_dir, tmp_path_factory):
    """A copy of the sample index for apps to open: the app builds the decisions browser's index in the catalog
    when it starts (a write), and the shared sample index must stay as ingested."""
    index_dir = tmp_path_factory.mktemp("app-index") / "index"
    shutil.copytree(sample_index_dir, index_dir, ignore=shutil.ignore_patterns(".lock"))
    return index_dir


@pytest.fixture(scope="session")
def app_server(app_index_dir, embedder, tmp_path_factory):
    """The app over a copy of the sample index, uploads off, logs in a temporary folder."""
    from core.settings import load_settings

    settings = load_settings(index_dir=app_index_dir, log_dir=tmp_path_factory.mktemp("app-logs") / "logs",
                             host="127.0.0.1", port=free_port(), allow_upload=False)
    running = _start(settings, embedder)
    yield running
    _stop(running)


@pytest.fixture(scope="session")
def upload_app_server(sample_index_dir, embedder, tmp_path_factory):
    """The app over a private copy of the sample index with uploads on (tests may write to this one)."""
    from core.settings import load_settings

    root = tmp_path_factory.mktemp("upload-app")
    index_dir = root / "index"
    shutil.copytree(sample_index_dir, index_dir, ignore=shutil.ignore_patterns(".lock"))
    settings = load_settings(index_dir=index_dir, log_dir=root / "logs", host="127.0.0.1", port=free_port(),
                             allow_upload=True)
    running = _start(settings, embedder)
    yield running
    _stop(running)


@pytest.fixture
def client(app_server):
    """A gradio_client session (its own chat state) against the sample app."""
    from gradio_client import Client

    return Client(app_server.url, verbose=False, download_files=False)


@pytest.fixture(scope="session")
def hostile_upload(upload_app_server):
    """The decision with <script>, <img onerror> and a tracking pixel, uploaded through the UI's ingest endpoint;
    returns the endpoint's outputs (report, status, council choices, ...)."""
    from gradio_client import Client, handle_file

    c = Client(upload_app_server.url, verbose=False, download_files=False)
    return c.predict([handle_file(str(HOSTILE_DECISION))], api_name="/ingest")
