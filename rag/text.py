"""Small text helpers shared by retrieval and answering: content words and Porter stems."""

from __future__ import annotations

import functools
import re
from typing import Any

# Words too common in questions to help BM25 or to count as evidence.
STOPWORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being below between both
but by can could did do does doing down during each few for from further had has have having he her here hers
him his how i if in into is it its itself just me more most my no nor not now of off on once only or other our
out over own same she should so some such than that the their them then there these they this those through to
too under until up very was we were what when where which while who whom why will with would you your yours
tell say says said please know anything something happen happens happened case cases decision decisions
ombudsman ombudsmans
""".split())

_WORD = re.compile(r"[\w£]+(?:['’][\w]+)?", re.UNICODE)


def content_words(text: str) -> list[str]:
    """Lower-cased content words of a text, in order, repeats kept, stopwords left out."""
    out = []
    for word in _WORD.findall(text.lower()):
        word = word.replace("’", "'").split("'")[0]
        if len(word) < 2 or word in STOPWORDS or (word.isdigit() and len(word) < 3):
            continue
        out.append(word)
    return out


def query_terms(text: str) -> list[str]:
    """Lower-cased content words of a text, in order, without duplicates or stopwords."""
    return list(dict.fromkeys(content_words(text)))


@functools.lru_cache(maxsize=1)
def _stemmer() -> Any:
    from nltk.stem.porter import PorterStemmer

    # The original algorithm is the one SQLite FTS5's porter tokenizer implements.
    return PorterStemmer(mode=PorterStemmer.ORIGINAL_ALGORITHM)


@functools.lru_cache(maxsize=100_000)
def stem(word: str) -> str:
    """Porter stem of one lower-case word."""
    return _stemmer().stem(word)


def stems(text: str) -> set[str]:
    """Stems of the content words of text."""
    return {stem(t) for t in query_terms(text)}
