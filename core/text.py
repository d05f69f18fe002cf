"""Small text helpers shared by ingest, retrieval and answering: content words, Porter stems, sentences."""

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
too under until up us very was we were what when where which while who whom why will with would you your yours
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

    # Porter's own reference implementation (with his later departures from the 1980 paper, e.g. "-logi" ->
    # "-log") is what SQLite FTS5's porter tokenizer implements (tests/core/test_stems.py compares them).
    return PorterStemmer(mode=PorterStemmer.MARTIN_EXTENSIONS)


@functools.lru_cache(maxsize=100_000)
def stem(word: str) -> str:
    """Porter stem of one lower-case word, as FTS5 stems it: words under 3 or over 64 letters stay as they are."""
    if len(word) < 3 or len(word) > 64:
        return word
    return _stemmer().stem(word)


def stems(text: str) -> set[str]:
    """Stems of the content words of text."""
    return {stem(t) for t in query_terms(text)}


# The one sentence splitter. A sentence ends at . ! or ? (with a closing quote or bracket, and a [citation] that
# follows it, kept with it — not a Markdown link "[text](url)") before a space and a capital, a digit, an opening
# quote or bracket, "£" — or the end of the line; not after a title or an abbreviation ("Mr. Y", "e.g. The",
# "para. 7").
_BOUNDARY = re.compile(r"(?<=[.!?])[\"'”’)]?(?:\s*\[[^\[\]]*\](?!\())?(?=\s+[A-Z0-9“‘\"'(£]|\s*$)")
_ABBREVIATION = re.compile(r"(?:^|[\s(])(?:Mr|Mrs|Ms|Dr|Prof|St|[Pp]aras?|e\.g|i\.e|cf)\.$")


def split_sentences(line: str) -> list[str]:
    """Sentences of one line of text, each stripped; a citation after a full stop stays with its sentence."""
    pieces: list[str] = []
    start = 0
    for m in _BOUNDARY.finditer(line):
        if _ABBREVIATION.search(line[start:m.start()]):
            continue
        if piece := line[start:m.end()].strip():
            pieces.append(piece)
        start = m.end()
    if rest := line[start:].strip():
        pieces.append(rest)
    return pieces


def sentences_of(text: str) -> list[str]:
    """Sentences of a paragraph (bullet lines are their own sentences)."""
    out: list[str] = []
    for line in text.split("\n"):
        out.extend(split_sentences(line.strip().lstrip("•").strip()))
    return out


# Words addressed to a language model, not to a reader: a decision never needs them, and a paragraph that carries
# them (planted, or pasted from somewhere) is not quoted back as the answer nor counted as evidence. It stays in
# the source cards, which show the paragraph as the file has it.
_INSTRUCTION = re.compile(
    r"\b(?:ignore|disregard|forget|override)\s+(?:all\s+|any\s+|the\s+|your\s+)*(?:previous|prior|above|earlier|"
    r"preceding|system)\s+(?:instructions?|prompts?|messages?|rules)\b"
    r"|^\s*(?:system|assistant)\s*:|\byou are now (?:in \w+ mode|an? (?:ai|assistant|language model|chatbot))\b"
    r"|\bdeveloper mode\b|\bnew instructions?\s*:"
    r"|<\|?(?:im_start|im_end|system)\|?>", re.I)


def addressed_to_a_model(text: str) -> bool:
    """Whether a paragraph reads as an instruction to a language model ("Ignore previous instructions...")."""
    return bool(_INSTRUCTION.search(text))


# Shorter sentences ("The Council agreed.") match many questions loosely and answer none of them.
MIN_EVIDENCE_WORDS = 5


def evidence_sentences(text: str) -> list[str]:
    """The sentences of a paragraph that may count as evidence: five words or more, from a paragraph that is
    not addressed to a language model. Ingest stores a vector for each (ingest/sentences.py)."""
    if not text or addressed_to_a_model(text):
        return []
    return [s for s in sentences_of(text) if len(s.split()) >= MIN_EVIDENCE_WORDS]


def category_path(*parts: str | None) -> str:
    """'Education > School transport': the non-empty parts of a category, joined the one way we show them."""
    return " > ".join(x for x in parts if x)


def display_date(date: Any, iso: bool = False) -> str:
    """'23 Oct 2023' (no leading zero; '2023-10-23' with iso), or 'date not stated' when a decision has none."""
    if not date:
        return "date not stated"
    return date.isoformat() if iso else date.strftime("%d %b %Y").lstrip("0")
