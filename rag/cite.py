"""Citation verification: every case number and paragraph in an answer is checked against the sources.

A case number that is not among the retrieved decisions is removed (and counted); a paragraph the decision
does not have is corrected to the decision as a whole; sentences without a citation are marked. The
streaming verifier releases text only sentence by sentence, after checking, so an invented case number
never reaches the person reading.
"""

from __future__ import annotations

import re
from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from core.casenum import CASE_NUMBER_RE, normalise_case_number
from core.text import split_sentences
from core.types import Citation, Decision

UNCITED_MARK = "⟨no citation⟩"
REMOVED_MARK = "[citation removed]"

# "[23 009 429 ¶5]", "[23-009-429, para 5-6]", "[23009429 paragraphs 5 and 7; 20 011 198 ¶3]", "[doc_id ¶4]",
# "(23 009 429 ¶5)", "[23 009 429 summary]".
_PARA = r"(?:¶|§|paras?\.?|paragraphs?|p\.)\s*"
_NUMS = r"\d{1,3}(?:\s*(?:[-–]|,|and|&)\s*\d{1,3})*"
_BRACKET = re.compile(r"[\[(]([^\[\]()]{4,200})[\])]")
_DOC_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{3,80}$")
_REFERENCE = re.compile(rf"^(?P<who>.+?)(?:[\s,]*(?:{_PARA})(?P<nums>{_NUMS})|\s*,?\s*(?P<summary>summary))?\s*$", re.I)


@dataclass(frozen=True)
class Reference:
    """One reference inside a citation: a decision (case number or document id, as written) and paragraphs."""

    who: str
    paragraphs: tuple[int, ...] = ()  # none: the decision as a whole
    summary: bool = False

    @property
    def label(self) -> str:
        """The decision's label: a case number in its standard spelling, or the document id."""
        return normalise_case_number(self.who) or self.who


def parse_reference(ref: str, known: Container[str] = ()) -> Reference | None:
    """"23-009-429, paras 5-6" -> Reference; None when the text is not a citation ("sic", "see below"). A
    document id counts when it looks like one (has an underscore) or is among `known` labels."""
    m = _REFERENCE.match(ref.strip().strip(".;,"))
    if not m:
        return None
    who = m.group("who").strip().rstrip(",")
    if normalise_case_number(who) is None and not (_DOC_ID.match(who) and "_" in who or who in known):
        return None
    return Reference(who, tuple(_numbers(m.group("nums") or "")), bool(m.group("summary")))


def bracket_parts(inside: str) -> list[str]:
    """The references of one bracket: "[23 009 429 ¶5; 20 011 198 ¶3]" has two."""
    return re.split(r"\s*;\s*", inside)


def cited_labels(text: str) -> list[str]:
    """Decision labels the citations in a text refer to, one entry per reference (the evaluation counts them)."""
    return [r.label for m in _BRACKET.finditer(text) for part in bracket_parts(m.group(1))
            if (r := parse_reference(part)) is not None]


@dataclass
class Verification:
    """The checked text and what checking did."""

    text: str
    citations: list[Citation] = field(default_factory=list)
    fabricated_removed: int = 0
    paragraphs_corrected: int = 0
    uncited_sentences: int = 0
    valid_citations: int = 0


def _numbers(spec: str) -> list[int]:
    out: list[int] = []
    for part in re.split(r"\s*(?:,|and|&)\s*", spec.strip()):
        if not part:
            continue
        if m := re.fullmatch(r"(\d{1,3})\s*[-–]\s*(\d{1,3})", part):
            a, b = int(m.group(1)), int(m.group(2))
            out.extend(range(a, b + 1) if 0 < b - a < 30 else [a, b])
        elif part.isdigit():
            out.append(int(part))
    return out


class CitationVerifier:
    """Checks citations against the decisions that were retrieved for this answer."""

    def __init__(self, sources: Mapping[str, Decision], known_in_index: Iterable[str] = ()):
        # label (case number or doc id) -> decision
        self.by_label: dict[str, Decision] = {}
        for d in sources.values():
            self.by_label[d.label] = d
            self.by_label[d.doc_id] = d
        self.known_in_index = set(known_in_index)

    def _decision_for(self, ref: str) -> Decision | None:
        ref = ref.strip()
        case = normalise_case_number(ref)
        if case:
            return self.by_label.get(case)
        return self.by_label.get(ref)

    def citation(self, decision: Decision, paragraph: int | None) -> Citation:
        """A Citation with the quoted paragraph (or summary) text."""
        if paragraph == 0:
            quote = decision.summary or ""
        elif paragraph is not None:
            p = decision.paragraph(paragraph)
            quote = p.text if p else ""
        else:
            quote = decision.summary or (decision.paragraphs[0].text if decision.paragraphs else "")
        return Citation(case_number=decision.case_number, doc_id=decision.doc_id, paragraph=paragraph,
                        quote=quote, authority=decision.authority, decision_date=decision.decision_date,
                        outcome=decision.outcome, url=decision.url,
                        category=decision.category_path or None)

    def _check_ref(self, ref: str, v: Verification) -> list[str] | None:
        """Validate one reference inside brackets; returns the labels to keep, or None if not a citation."""
        reference = parse_reference(ref, self.by_label)
        if reference is None:
            return None
        decision = self._decision_for(reference.who)
        if decision is None:
            v.fabricated_removed += 1
            return []
        if reference.summary:
            v.citations.append(self.citation(decision, 0))
            v.valid_citations += 1
            return [f"{decision.label} summary"]
        nums = reference.paragraphs
        if not nums:
            v.citations.append(self.citation(decision, None))
            v.valid_citations += 1
            return [decision.label]
        kept: list[str] = []
        for n in nums:
            if n == 0 or decision.paragraph(n) is not None:
                v.citations.append(self.citation(decision, n))
                kept.append(f"{decision.label} ¶{n}" if n else f"{decision.label} summary")
            else:
                v.paragraphs_corrected += 1
                v.citations.append(self.citation(decision, None))
                kept.append(decision.label)
        v.valid_citations += len(kept)
        return list(dict.fromkeys(kept))

    def _rewrite_brackets(self, text: str, v: Verification) -> str:
        def replace(match: re.Match[str]) -> str:
            results = [self._check_ref(part, v) for part in bracket_parts(match.group(1))]
            if all(r is None for r in results):
                return match.group(0)  # not a citation: "[sic]", "(see below)"
            kept = [label for r in results if r for label in r]
            # A claim whose only citation was invented says so, rather than sitting uncited beside (and so
            # looking supported by) the next sentence's real citation.
            return "[" + "; ".join(dict.fromkeys(kept)) + "]" if kept else REMOVED_MARK

        return _BRACKET.sub(replace, text)

    def _remove_bare(self, text: str, v: Verification) -> str:
        """Case numbers outside citations: keep real ones, replace invented ones."""
        spans = [m.span() for m in re.finditer(r"\[[^\[\]]*\]", text)]

        def replace(match: re.Match[str]) -> str:
            if any(a <= match.start() < b for a, b in spans):
                return match.group(0)
            case = " ".join(match.groups())
            if case not in self.by_label:
                v.fabricated_removed += 1
                return REMOVED_MARK
            return case

        return CASE_NUMBER_RE.sub(replace, text)

    def verify(self, text: str, mark_uncited: bool = True) -> Verification:
        """Check every citation in text; returns the cleaned text and the counts."""
        v = Verification(text="")
        cleaned = self._rewrite_brackets(text, v)
        cleaned = self._remove_bare(cleaned, v)
        cleaned = re.sub(r"[ \t]+([.,;:])", r"\1", cleaned)
        cleaned = re.sub(r"[ \t]{2,}", " ", cleaned)
        if mark_uncited:
            cleaned, v.uncited_sentences = mark_uncited_sentences(cleaned)
        v.text = cleaned.strip()
        return v


def _is_structural(line: str) -> bool:
    s = line.strip()
    return (not s or s.startswith(("#", "**", ">", "_")) or s.endswith(":") or len(s.split()) < 4
            or s.startswith("Note:"))


def _has_citation(sentence: str) -> bool:
    return bool(re.search(r"\[[^\]]+\]", sentence.replace(REMOVED_MARK, "")))


def _covered_by_citation(sentences: Sequence[str], reach: int) -> list[bool]:
    """Which sentences a real citation covers: its own, and up to `reach` just before it on the same line
    (unless that sentence lost an invented citation: it is not covered by its neighbour's real one)."""
    real = [_has_citation(s) for s in sentences]
    covered = list(real)
    for i, has in enumerate(real):
        if has:
            for j in range(max(0, i - reach), i):
                covered[j] = covered[j] or REMOVED_MARK not in sentences[j]
    return covered


def _line_sentences(line: str) -> tuple[str, list[str]]:
    bullet = re.match(r"^(\s*(?:[-*•]|\d+\.)\s+)", line)
    prefix = bullet.group(1) if bullet else ""
    return prefix, split_sentences(line[len(prefix):])


def mark_uncited_sentences(text: str, reach: int = 2) -> tuple[str, int]:
    """Append UNCITED_MARK to sentences no citation covers; returns (text, how many were marked).

    A citation covers its own sentence and up to `reach` sentences just before it on the same line
    ("X. Y. [23 009 429 ¶5]"): that is how people cite a short run of sentences from one paragraph.
    """
    count = 0
    out_lines: list[str] = []
    for line in text.split("\n"):
        if _is_structural(line):
            out_lines.append(line)
            continue
        prefix, sentences = _line_sentences(line)
        covered = _covered_by_citation(sentences, reach)
        marked = []
        for sentence, ok in zip(sentences, covered):
            if ok or UNCITED_MARK in sentence or (len(sentence.split()) < 4 and REMOVED_MARK not in sentence):
                marked.append(sentence)
            else:
                marked.append(f"{sentence} {UNCITED_MARK}")
                count += 1
        out_lines.append(prefix + " ".join(marked))
    return "\n".join(out_lines), count


def supported_sentences(text: str, reach: int = 2) -> int:
    """How many sentences say something (three words or more outside brackets) and are covered by a citation
    that checked out. A lone "[23 009 429]" on a line of its own supports nothing: citations cover sentences
    on their own line only. Run on verified text (invented citations already removed)."""
    count = 0
    for line in text.split("\n"):
        _, sentences = _line_sentences(line)
        for sentence, ok in zip(sentences, _covered_by_citation(sentences, reach)):
            words = re.sub(r"\[[^\]]*\]", " ", sentence).split()
            count += ok and len(words) >= 3
    return count


class StreamingVerifier:
    """Buffers streamed tokens and releases only verified, complete sentences."""

    def __init__(self, verifier: CitationVerifier):
        self.verifier = verifier
        self.buffer = ""
        self.raw = ""
        self.released: list[Verification] = []

    def _ready_cut(self) -> int:
        """Index up to which the buffer holds complete sentences (0 = none yet)."""
        cut = 0
        for m in re.finditer(r"(?:[.!?](?:\s*\[[^\]]*\])?\s+)|\n", self.buffer):
            # never cut inside an open bracket: a citation may still be arriving
            head = self.buffer[: m.end()]
            if head.count("[") == head.count("]"):
                cut = m.end()
        return cut

    def feed(self, piece: str) -> Iterator[str]:
        """Add streamed text; yield verified text that is complete."""
        self.raw += piece
        self.buffer += piece
        cut = self._ready_cut()
        if cut:
            ready, self.buffer = self.buffer[:cut], self.buffer[cut:]
            v = self.verifier.verify(ready, mark_uncited=False)
            self.released.append(v)
            trailing = ready[len(ready.rstrip()):]
            yield v.text + trailing

    def finish(self) -> Iterator[str]:
        """Flush what is left at the end of the stream."""
        if self.buffer.strip():
            v = self.verifier.verify(self.buffer, mark_uncited=False)
            self.released.append(v)
            self.buffer = ""
            yield v.text
