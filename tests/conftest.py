"""Shared fixtures: real Chroma in tmp folders, the real packaged embedding model (loaded once)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.settings import apply_offline_environment

apply_offline_environment()

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DIR = ROOT / "data" / "sample"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
TEST_OUTPUT = ROOT / "test-output"
# The sample decisions that answer "When does the ICO handle rectification?": 000 and 002 say the ICO considers
# 'right to rectification' disputes, 004 that it can require rectification. The answer cites one or more of them.
ICO_ANSWERS = frozenset({"23 009 429", "002_7d099216e168a9a0", "24 005 748"})


@pytest.fixture(scope="session")
def embedder():
    """The packaged all-MiniLM-L6-v2, loaded once for the whole run."""
    from ingest.embed import Embedder

    e = Embedder()
    e.embed(["warm up"])
    return e


@pytest.fixture
def make_settings(tmp_path):
    """Settings pointing at a fresh index folder under tmp_path (overrides as keyword arguments)."""
    from core.settings import load_settings

    def factory(**overrides):
        overrides.setdefault("index_dir", tmp_path / "index")
        overrides.setdefault("log_dir", tmp_path / "logs")
        return load_settings(**overrides)

    return factory


def build_index(settings, paths, embedder):
    """Ingest paths into the index the settings name; returns the report."""
    from ingest.index import Indexer, open_index

    index = open_index(settings, write=True, embedder=embedder)
    try:
        return Indexer(index).ingest(paths)
    finally:
        index.close()


@pytest.fixture(scope="session")
def sample_index_dir(tmp_path_factory, embedder):
    """An index of the five sample decisions, built once per run (tests must not write to it)."""
    from core.settings import load_settings

    index_dir = tmp_path_factory.mktemp("sample-index")
    settings = load_settings(index_dir=index_dir)
    report = build_index(settings, [SAMPLE_DIR], embedder)
    assert report.added == 5, report
    return index_dir


@pytest.fixture
def sample_copy(tmp_path):
    """A writable copy of the sample decisions."""
    target = tmp_path / "decisions"
    shutil.copytree(SAMPLE_DIR, target)
    return target


@pytest.fixture(scope="session")
def test_output():
    """Folder for artefacts tests leave for people (screenshots, reports)."""
    TEST_OUTPUT.mkdir(exist_ok=True)
    return TEST_OUTPUT


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server for the run (skips, saying how to install it, where its binaries are absent)."""
    from pgserver import INSTALL_HINT, PostgresServer, server_binaries

    binaries = server_binaries()
    if binaries is None:
        pytest.skip(INSTALL_HINT)
    server = PostgresServer(binaries).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def catalog_url(postgres_server, request):
    """The URL of a new, empty database on the test server (one per test)."""
    import hashlib
    import re as _re

    # the name's start for people, a digest of the whole for parametrised tests whose names differ only late
    digest = hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:8]
    name = "t_" + _re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:40] + "_" + digest
    return postgres_server.create_database(name)
