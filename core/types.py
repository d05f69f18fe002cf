"""The typed values that flow between stages: Decision -> Chunk -> Hit -> Answer (with Citations)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

from core.errors import ConfigError
from core.text import category_path, display_date


@dataclass(frozen=True, slots=True)
class Paragraph:
    """One numbered paragraph, numbered as the published page numbers it (continuously)."""

    number: int
    text: str
    subheading: str | None = None


@dataclass(frozen=True, slots=True)
class Section:
    """A headed part of a decision ("The complaint", "Analysis", ...)."""

    name: str
    paragraphs: tuple[Paragraph, ...]


@dataclass(frozen=True, slots=True)
class Remedy:
    """Something the council agreed or was asked to do: a payment or another action."""

    kind: Literal["payment", "action"]
    text: str
    amount_gbp: float | None = None
    paragraph: int | None = None


@dataclass(frozen=True, slots=True)
class DecisionNames:
    """Who and what a decision is about, and how people refer to it: the fields every view of a decision starts
    with (a Decision, a row of the decisions browser)."""

    doc_id: str
    case_number: str | None
    authority: str | None
    category: str | None
    subcategory: str | None

    @property
    def label(self) -> str:
        """The case number, or the document id when it has none."""
        return self.case_number or self.doc_id

    @property
    def category_path(self) -> str:
        """'Education > School transport' ('' when the decision states no category)."""
        return category_path(self.category, self.subcategory)


@dataclass(frozen=True, slots=True)
class Decision(DecisionNames):
    """A parsed Ombudsman decision with typed metadata, sections and numbered paragraphs."""

    outcome: str | None
    decision_date: dt.date | None
    summary: str | None
    sections: tuple[Section, ...]
    remedies: tuple[Remedy, ...]
    url: str | None
    source_path: str
    content_hash: str
    fictional: bool = False
    warnings: tuple[str, ...] = ()

    @property
    def paragraphs(self) -> tuple[Paragraph, ...]:
        """Every numbered paragraph in page order."""
        return tuple(p for s in self.sections for p in s.paragraphs)

    def paragraph(self, number: int) -> Paragraph | None:
        """The paragraph with this number, if the decision has one."""
        for p in self.paragraphs:
            if p.number == number:
                return p
        return None

    def section_of(self, number: int) -> str | None:
        """Name of the section holding paragraph `number`."""
        for s in self.sections:
            if any(p.number == number for p in s.paragraphs):
                return s.name
        return None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (dates as ISO strings)."""
        data = dataclasses.asdict(self)
        data["decision_date"] = self.decision_date.isoformat() if self.decision_date else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Decision:
        """Inverse of to_dict."""
        sections = tuple(
            Section(s["name"], tuple(Paragraph(**p) for p in s["paragraphs"])) for s in data["sections"]
        )
        remedies = tuple(Remedy(**r) for r in data.get("remedies", ()))
        date = data.get("decision_date")
        return cls(
            doc_id=data["doc_id"],
            case_number=data.get("case_number"),
            authority=data.get("authority"),
            category=data.get("category"),
            subcategory=data.get("subcategory"),
            outcome=data.get("outcome"),
            decision_date=dt.date.fromisoformat(date) if date else None,
            summary=data.get("summary"),
            sections=sections,
            remedies=remedies,
            url=data.get("url"),
            source_path=data["source_path"],
            content_hash=data["content_hash"],
            fictional=bool(data.get("fictional", False)),
            warnings=tuple(data.get("warnings", ())),
        )


@dataclass(frozen=True, slots=True)
class Chunk:
    """A retrievable piece of one decision: whole paragraphs of one or more adjacent sections."""

    chunk_id: str
    doc_id: str
    case_number: str | None
    section: str
    paragraphs: tuple[int, ...]
    text: str
    header: str
    position: int
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def label(self) -> str:
        """Case number, or document id for a decision without one."""
        return self.case_number or self.doc_id

    def embedding_text(self, with_header: bool = True) -> str:
        """What is embedded and indexed lexically: the contextual header, then the text."""
        return f"{self.header}\n{self.text}" if with_header and self.header else self.text


RetrieverName = Literal["dense", "lexical", "lookup"]


@dataclass(frozen=True, slots=True)
class Hit:
    """A chunk found by retrieval, with its fused score, rank and which retrievers found it."""

    chunk: Chunk
    score: float
    rank: int
    retrievers: tuple[str, ...]
    dense_similarity: float | None = None
    lexical_score: float | None = None


def hit_paragraphs(hit: Hit, decision: Decision) -> list[tuple[int, str]]:
    """(number, text) of the paragraphs a hit covers; 0 is the summary."""
    out = []
    for n in hit.chunk.paragraphs:
        if n == 0:
            if decision.summary:
                out.append((0, decision.summary))
        elif (p := decision.paragraph(n)) is not None:
            out.append((n, p.text))
    return out


def citation_label(decision: Decision, paragraph: int) -> str:
    """'[23 009 429 ¶5]' (or '[23 009 429 summary]' for the summary)."""
    return f"[{decision.label} summary]" if paragraph == 0 else f"[{decision.label} ¶{paragraph}]"


def decision_heading(decision: Decision) -> str:
    """'**Staffordshire County Council — 23 009 429** (23 Oct 2023; Closed after initial enquiries)'."""
    who = decision.authority or "Council not stated"
    case = decision.case_number or f"decision {decision.doc_id} (no case number)"
    outcome = decision.outcome or "outcome not stated"
    return f"**{who} — {case}** ({display_date(decision.decision_date)}; {outcome})"


@dataclass(frozen=True, slots=True)
class Filters:
    """Restrictions on which decisions may be used. Empty fields mean no restriction."""

    authority: str | None = None
    category: str | None = None
    outcome: str | None = None
    since: dt.date | None = None
    until: dt.date | None = None

    def __post_init__(self) -> None:
        for name in ("since", "until"):
            value = getattr(self, name)
            if isinstance(value, str):
                try:
                    object.__setattr__(self, name, dt.date.fromisoformat(value.strip()))
                except ValueError:
                    raise ConfigError(
                        f"Filter {name}={value!r} is not a date: write it as YYYY-MM-DD, e.g. 2023-10-23."
                    ) from None
        for name in ("authority", "category", "outcome"):
            value = getattr(self, name)
            if isinstance(value, str) and not value.strip():
                object.__setattr__(self, name, None)
        if self.since and self.until and self.since > self.until:
            raise ConfigError(
                f"Filter since={self.since.isoformat()} is after until={self.until.isoformat()}: swap them."
            )

    @property
    def active(self) -> bool:
        """True when at least one restriction is set."""
        return any(getattr(self, f.name) is not None for f in dataclasses.fields(self))

    def to_dict(self) -> dict[str, str]:
        """Only the set fields, dates as ISO strings."""
        out: dict[str, str] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is not None:
                out[f.name] = value.isoformat() if isinstance(value, dt.date) else str(value)
        return out

    def describe(self) -> str:
        """Human wording, e.g. "council: Hampshire County Council; since 2021-01-01"."""
        parts = []
        labels = {"authority": "council", "category": "category", "outcome": "outcome"}
        for key, value in self.to_dict().items():
            parts.append(f"{key} {value}" if key in ("since", "until") else f"{labels[key]}: {value}")
        return "; ".join(parts)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Filters:
        """Build from a JSON-ish dict, ignoring empty values."""
        if not data:
            return cls()
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ConfigError(
                f"Unknown filter(s) {sorted(unknown)}: use authority, category, outcome, since, until."
            )
        return cls(**{k: v for k, v in data.items() if v not in (None, "")})


@dataclass(frozen=True, slots=True)
class Message:
    """One turn of chat history."""

    role: Literal["user", "assistant"]
    content: str


@dataclass(frozen=True, slots=True)
class Query:
    """A question after analysis: case numbers found, filters in force, standalone rewrite."""

    text: str
    standalone: str
    case_numbers: tuple[str, ...]
    filters: Filters
    inferred_filters: tuple[str, ...] = ()
    survey: bool = False  # it asks across decisions ("Which complaints…", "How has the Ombudsman dealt with…")
    listing: bool = False  # it asks across decisions and names nothing but its filters ("List X's 2024 decisions")
    outcome_asked: str | None = None  # a yes/no question asks whether any decision had it ("Were any ... upheld?")


@dataclass(frozen=True, slots=True)
class Citation:
    """A checked reference to a paragraph of a retrieved decision."""

    case_number: str | None
    doc_id: str
    paragraph: int | None
    quote: str
    authority: str | None
    decision_date: dt.date | None
    outcome: str | None
    url: str | None = None
    category: str | None = None

    @property
    def label(self) -> str:
        """The marker shown in answers, e.g. "23 009 429 ¶5"."""
        who = self.case_number or self.doc_id
        if self.paragraph is None:
            return who
        return f"{who} summary" if self.paragraph == 0 else f"{who} ¶{self.paragraph}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        data = dataclasses.asdict(self)
        data["decision_date"] = self.decision_date.isoformat() if self.decision_date else None
        data["label"] = self.label
        return data


@dataclass(frozen=True, slots=True)
class Answer:
    """What every entry point gets back from Assistant.ask."""

    text: str
    abstained: bool
    citations: tuple[Citation, ...]
    sources: tuple[Hit, ...]
    filters_applied: Filters
    fabricated_citations_removed: int
    backend: str
    model: str | None
    prompt_version: str | None
    timings_ms: dict[str, float]
    question: str = ""
    standalone_question: str = ""
    notes: tuple[str, ...] = ()
    uncited_sentences: int = 0
    paragraphs_corrected: int = 0
    fabricated_before_verification: int = 0
    inferred_filters: tuple[str, ...] = ()
    decline_reason: str | None = None
    relevance: dict[str, float] = field(default_factory=dict)
    policy_version: str | None = None

    @property
    def cited_labels(self) -> list[str]:
        """Distinct decisions cited, in order of first citation."""
        seen: dict[str, None] = {}
        for c in self.citations:
            seen.setdefault(c.case_number or c.doc_id, None)
        return list(seen)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of `python -m rag ask --json`."""
        return {
            "question": self.question,
            "standalone_question": self.standalone_question,
            "answer": self.text,
            "abstained": self.abstained,
            "citations": [c.to_dict() for c in self.citations],
            "sources": [
                {
                    "rank": h.rank,
                    "case_number": h.chunk.case_number,
                    "doc_id": h.chunk.doc_id,
                    "chunk_id": h.chunk.chunk_id,
                    "section": h.chunk.section,
                    "paragraphs": list(h.chunk.paragraphs),
                    "score": round(h.score, 6),
                    "retrievers": list(h.retrievers),
                    "authority": h.chunk.metadata.get("authority"),
                    "decision_date": h.chunk.metadata.get("decision_date"),
                    "outcome": h.chunk.metadata.get("outcome"),
                    "text": h.chunk.text,
                }
                for h in self.sources
            ],
            "filters": self.filters_applied.to_dict(),
            "inferred_filters": list(self.inferred_filters),
            "fabricated_citations_removed": self.fabricated_citations_removed,
            "paragraphs_corrected": self.paragraphs_corrected,
            "uncited_sentences": self.uncited_sentences,
            "notes": list(self.notes),
            "decline_reason": self.decline_reason,
            "relevance": dict(self.relevance),
            "policy_version": self.policy_version,
            "backend": self.backend,
            "model": self.model,
            "prompt_version": self.prompt_version,
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
        }
