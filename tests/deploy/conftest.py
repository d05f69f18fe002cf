"""Fixtures for the cluster tests: a `chroma run` server started and stopped with deploy/cluster.py's own code,
and a cluster folder every user can reach (PostgreSQL runs as the `postgres` user when the tests run as root)."""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import pytest

from deploy.cluster import end_process, start_service, wait_until_answering
from deploy.postgres import free_port


@pytest.fixture
def open_folder():
    """A new folder under /tmp that the postgres user can traverse (pytest's tmp_path is closed to it)."""
    folder = Path(tempfile.mkdtemp(prefix="ombuds-cluster-test-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def chroma_url(tmp_path):
    """A `chroma run` server on a free loopback port with its own data folder; its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    chroma = Path(sys.executable).parent / "chroma"
    service = start_service("chroma", [str(chroma), "run", "--path", str(tmp_path / "chroma"), "--host",
                                       "127.0.0.1", "--port", str(port)], url, tmp_path / "logs")
    try:
        wait_until_answering(service, f"{url}/api/v2/heartbeat", time.monotonic() + 60)
        yield url
    finally:
        end_process(service)
