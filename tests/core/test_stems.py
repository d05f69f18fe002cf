"""Python's word stems are the stems SQLite FTS5 indexes, so weights computed in Python (IDF, word coverage in
rag/policy.py) count the same words the lexical search matched."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from core.text import content_words, stem

ROOT = Path(__file__).resolve().parents[2]
CORPORA = [ROOT / "data" / "sample", *sorted((ROOT / "eval" / "corpus").iterdir())]
# The tokenizer the catalog and the browser use (ingest/catalog.py, rag/browse_index.py).
TOKENIZE = "porter unicode61 remove_diacritics 2"


def fts5_stems(words: list[str]) -> dict[str, str]:
    """What FTS5's porter tokenizer makes of each word: one row per word, read back through fts5vocab."""
    db = sqlite3.connect(":memory:")
    db.execute(f"CREATE VIRTUAL TABLE t USING fts5(x, tokenize='{TOKENIZE}')")
    db.executemany("INSERT INTO t(rowid, x) VALUES (?, ?)", list(enumerate(words, start=1)))
    db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
    out: dict[str, str] = {}
    for term, row in db.execute("SELECT term, doc FROM v"):
        assert words[row - 1] not in out, f"{words[row - 1]!r} became more than one FTS5 token"
        out[words[row - 1]] = term
    return out


def corpus_words() -> list[str]:
    words: set[str] = set()
    for folder in CORPORA:
        for path in sorted(folder.glob("*")):
            if path.is_file():
                words.update(content_words(path.read_text(encoding="utf-8", errors="replace")))
    # FTS5 splits at apostrophes and pound signs; content_words keeps "£250" and "council's" as one word.
    return sorted(w for w in words if re.fullmatch(r"[a-z0-9]+", w))


def test_python_stems_equal_fts5_porter_stems_over_the_corpus_vocabulary():
    words = corpus_words()
    assert len(words) > 2000
    fts = fts5_stems(words)
    differ = {w: (stem(w), fts[w]) for w in words if stem(w) != fts[w]}
    some = dict(list(differ.items())[:20])
    assert not differ, f"{len(differ)} of {len(words)} words stem differently (python, fts5): {some}"


def test_the_comparison_sees_a_difference():
    # The stemmer this project used before (nltk's ORIGINAL_ALGORITHM mode, every word stemmed) differed.
    from nltk.stem.porter import PorterStemmer

    before = PorterStemmer(mode=PorterStemmer.ORIGINAL_ALGORITHM)
    fts = fts5_stems(["apology", "technology", "ms"])
    assert {w: before.stem(w) for w in fts} != fts
    assert {w: stem(w) for w in fts} == fts
