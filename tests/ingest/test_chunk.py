"""Chunker: whole paragraphs, token-sized, a contextual header kept apart, content-hash ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.tokens import get_encoding
from ingest.chunk import Chunker
from ingest.parse import parse_file, parse_text

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_DIR = ROOT / "data" / "sample"
SAMPLES = sorted(SAMPLE_DIR.glob("*.txt"))


@pytest.fixture(scope="module")
def chunker():
    from core.settings import load_settings

    s = load_settings()
    return Chunker(s.chunk_target_tokens, s.chunk_max_tokens, s.token_encoding)


@pytest.fixture(scope="module")
def decisions():
    return [parse_file(p) for p in SAMPLES]


def tokens(chunker, text):
    """Counted with the chunker's own encoding, independently of its count() method."""
    return len(get_encoding(chunker.encoding_name).encode(text, disallowed_special=()))


def test_every_paragraph_in_exactly_one_chunk(chunker, decisions):
    assert len(decisions) == 5
    for d in decisions:
        chunks = chunker.chunk(d)
        assert [c.position for c in chunks] == list(range(len(chunks)))
        for p in d.paragraphs:
            holders = [c for c in chunks if p.number in c.paragraphs]
            assert len(holders) == 1, (d.doc_id, p.number, [c.paragraphs for c in holders])
            assert p.text in holders[0].text, (d.doc_id, p.number)  # whole, not split
        # The summary leads the first chunk, as "paragraph 0".
        assert chunks[0].paragraphs[0] == 0 and chunks[0].text.startswith(d.summary)
        # Page order is kept across chunks.
        numbers = [n for c in chunks for n in c.paragraphs]
        assert numbers == sorted(numbers) == list(range(len(d.paragraphs) + 1))


def test_chunks_stay_within_the_token_maximum(chunker, decisions):
    sizes = []
    for d in decisions:
        for c in chunker.chunk(d):
            n = tokens(chunker, c.text)
            assert n <= chunker.max_tokens, (d.doc_id, c.position, n)
            sizes.append(n)
    # Small sections are merged: most chunks are reasonably full rather than one paragraph each.
    assert len(sizes) < sum(len(d.paragraphs) for d in decisions) / 3
    assert sum(sizes) / len(sizes) >= 0.6 * chunker.target_tokens


def long_decision(paragraph: str):
    text = (
        "Westby Borough Council (21 555 001)\nCategory : Planning > Enforcement\nDecision : Not upheld\n"
        "Decision date : 3 Mar 2021\nSummary: Mr C complained about the Council's planning enforcement.\n"
        "The complaint\n  1. Mr C says the Council did not act on a breach of planning control next door.\n"
        f"What I found\n  1. {paragraph}\n  2. The Council considered the breach and decided not to act.\n"
        "Final decision\n  1. I do not find fault and have completed my investigation.\n"
    )
    return parse_text(text, "long.txt")


def test_a_paragraph_longer_than_the_maximum_is_split_at_sentence_ends(chunker):
    sentences = [f"In month {i} the officer visited the site, took photographs and wrote a note for the file."
                 for i in range(1, 61)]
    long = " ".join(sentences)
    d = long_decision(long)
    assert tokens(chunker, long) > 3 * chunker.max_tokens
    chunks = chunker.chunk(d)
    pieces = [c for c in chunks if 2 in c.paragraphs]
    assert len(pieces) >= 4
    for c in chunks:
        assert tokens(chunker, c.text) <= chunker.max_tokens
    # Nothing lost or duplicated: the pieces, in order, are the paragraph's sentences.
    found = [s for c in pieces for s in c.text.split("\n\n") if s.startswith("In month")]
    assert " ".join(found) == long
    # Only the long paragraph is split; its neighbours are whole, each in one chunk.
    for number in (1, 3, 4):
        assert sum(number in c.paragraphs for c in chunks) == 1
        assert d.paragraph(number).text in next(c.text for c in chunks if number in c.paragraphs)


def test_a_sentence_longer_than_the_maximum_is_split_by_tokens(chunker):
    long = " ".join(f"item{i} recorded" for i in range(700))  # one "sentence": no full stops
    d = long_decision(long)
    pieces = [c for c in chunker.chunk(d) if 2 in c.paragraphs]
    assert len(pieces) >= 3
    assert all(tokens(chunker, c.text) <= chunker.max_tokens for c in pieces)
    assert "".join(c.text for c in pieces).replace("\n\n", "") == long


def test_contextual_header_names_the_decision_and_section_and_is_kept_apart(chunker, decisions):
    d = next(x for x in decisions if x.case_number == "18 009 917")
    chunks = chunker.chunk(d)
    for c in chunks:
        for part in ("Staffordshire County Council", "18 009 917", "Children's care services", "Other",
                     "Upheld", "2019-06-26"):
            assert part in c.header, (part, c.header)
        for section in {d.section_of(n) for n in c.paragraphs if n}:
            assert section in c.section and section in c.header
        assert c.header not in c.text and "18 009 917" not in c.text
        assert c.embedding_text(True) == f"{c.header}\n{c.text}"
        assert c.embedding_text(False) == c.text
    agreed = next(c for c in chunks if 44 in c.paragraphs)
    assert "Agreed action" in agreed.header
    # Retrieval filters read these from each chunk's metadata.
    assert chunks[0].metadata["authority"] == "Staffordshire County Council"
    assert chunks[0].metadata["decision_date"] == "2019-06-26"


def test_header_of_a_decision_without_case_number_uses_its_id(chunker, decisions):
    d = next(x for x in decisions if x.case_number is None)
    for c in chunker.chunk(d):
        assert d.doc_id in c.header and "Unknown council" in c.header
        assert c.case_number is None and c.doc_id == d.doc_id


def test_chunk_ids_are_content_hashes(chunker, decisions, tmp_path):
    all_ids = [c.chunk_id for d in decisions for c in chunker.chunk(d)]
    assert len(all_ids) == len(set(all_ids))
    source = SAMPLE_DIR / "000_10e5940e8b3fa3d0.txt"
    original = [c.chunk_id for c in chunker.chunk(parse_file(source))]
    # The same decision, parsed again or from another place, has the same ids.
    assert [c.chunk_id for c in chunker.chunk(parse_file(source))] == original
    moved = tmp_path / "elsewhere.txt"
    moved.write_bytes(source.read_bytes())
    assert [c.chunk_id for c in chunker.chunk(parse_file(moved))] == original
    # One paragraph edited: the decision's ids change (none is reused for different content).
    edited = tmp_path / "edited.txt"
    text = source.read_text(encoding="utf-8")
    assert "in late August 2023" in text
    edited.write_text(text.replace("in late August 2023", "in early September 2023"), encoding="utf-8")
    changed = [c.chunk_id for c in chunker.chunk(parse_file(edited))]
    assert len(changed) == len(original) and not set(changed) & set(original)
