"""The gold set: one JSON object a line, validated; errors name the file, the line and the field."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.casenum import normalise_case_number
from core.errors import OmbudsError

TYPES = ("specific", "topical", "lookup", "filter", "paraphrase", "follow-up", "unanswerable")
FIELDS = {"id", "question", "gold_cases", "reference_answer", "key_facts", "type", "history", "filters"}
FILTER_KEYS = ("authority", "category", "outcome", "since", "until")
_CASE = re.compile(r"^\d{2} \d{3} \d{3}$")
_DOC_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{2,120}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class GoldError(OmbudsError):
    """The gold file is unreadable or a line breaks the format; the message names the line and field."""


@dataclass(frozen=True)
class GoldQuestion:
    """One gold question. `gold_cases` holds case numbers ("23 009 429") or doc ids (file stems)."""

    id: str
    question: str
    gold_cases: tuple[str, ...]
    key_facts: tuple[str, ...]
    type: str
    reference_answer: str | None = None
    history: tuple[dict[str, str], ...] = ()
    filters: dict[str, str] = field(default_factory=dict)
    line: int = 0

    @property
    def answerable(self) -> bool:
        """False for unanswerable questions (type 'unanswerable' or no gold decisions)."""
        return self.type != "unanswerable" and bool(self.gold_cases)

    def to_dict(self) -> dict[str, Any]:
        """The JSONL form (without the line number)."""
        out: dict[str, Any] = {"id": self.id, "question": self.question, "gold_cases": list(self.gold_cases),
                               "reference_answer": self.reference_answer, "key_facts": list(self.key_facts),
                               "type": self.type}
        if self.history:
            out["history"] = [dict(m) for m in self.history]
        if self.filters:
            out["filters"] = dict(self.filters)
        return out


def _fail(where: str, name: str, problem: str) -> GoldError:
    return GoldError(f"{where}: field {name!r} {problem}")


def _string_list(value: Any, where: str, name: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise _fail(where, name, f"must be a list of non-empty strings (got {value!r})")
    return tuple(v.strip() for v in value)


def parse_question(data: Any, where: str = "gold", line: int = 0) -> GoldQuestion:
    """Validate one decoded line; raises GoldError naming `where` (file:line) and the field."""
    if not isinstance(data, dict):
        raise GoldError(f"{where}: expected a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - FIELDS)
    if unknown:
        raise _fail(where, unknown[0], f"is not a gold field (known: {', '.join(sorted(FIELDS))})")
    for name in ("id", "question", "gold_cases", "key_facts", "type"):
        if name not in data:
            raise _fail(where, name, "is missing")
    qid, question, qtype = data["id"], data["question"], data["type"]
    if not isinstance(qid, str) or not qid.strip():
        raise _fail(where, "id", f"must be a non-empty string (got {qid!r})")
    if not isinstance(question, str) or not question.strip():
        raise _fail(where, "question", f"must be a non-empty string (got {question!r})")
    if qtype not in TYPES:
        raise _fail(where, "type", f"must be one of {', '.join(TYPES)} (got {qtype!r})")
    gold = _string_list(data["gold_cases"], where, "gold_cases")
    for label in gold:
        case = normalise_case_number(label)
        if case and label not in (case, case.replace(" ", "-")):
            raise _fail(where, "gold_cases", f"has {label!r}: write the case number as {case!r}")
        if not (_CASE.match(label) or _DOC_ID.match(label)):
            raise _fail(where, "gold_cases", f"has {label!r}: write a case number as 'NN NNN NNN' or give the "
                                             "doc id (the file stem) of a decision without one")
    if qtype == "unanswerable" and gold:
        raise _fail(where, "gold_cases", "must be empty for an unanswerable question")
    key_facts = _string_list(data["key_facts"], where, "key_facts")
    reference = data.get("reference_answer")
    if reference is not None and (not isinstance(reference, str) or not reference.strip()):
        raise _fail(where, "reference_answer", f"must be a non-empty string or absent (got {reference!r})")
    history_raw = data.get("history") or []
    if not isinstance(history_raw, list):
        raise _fail(where, "history", f"must be a list of {{role, content}} turns (got {history_raw!r})")
    history = []
    for i, turn in enumerate(history_raw):
        if (not isinstance(turn, dict) or turn.get("role") not in ("user", "assistant")
                or not isinstance(turn.get("content"), str) or set(turn) - {"role", "content"}):
            raise _fail(where, "history", f"turn {i} must be {{\"role\": \"user\"|\"assistant\", \"content\": "
                                          f"text}} (got {turn!r})")
        history.append({"role": turn["role"], "content": turn["content"]})
    if qtype == "follow-up" and not history:
        raise _fail(where, "history", "is needed for a follow-up question (the turns it follows)")
    filters_raw = data.get("filters") or {}
    if not isinstance(filters_raw, dict):
        raise _fail(where, "filters", f"must be an object (got {filters_raw!r})")
    filters: dict[str, str] = {}
    for key, value in filters_raw.items():
        if key not in FILTER_KEYS:
            raise _fail(where, "filters", f"has unknown key {key!r} (use {', '.join(FILTER_KEYS)})")
        if not isinstance(value, str) or not value.strip():
            raise _fail(where, "filters", f"{key} must be a non-empty string (got {value!r})")
        if key in ("since", "until") and not _DATE.match(value):
            raise _fail(where, "filters", f"{key}={value!r} is not a date: write YYYY-MM-DD")
        filters[key] = value.strip()
    return GoldQuestion(id=qid.strip(), question=question.strip(), gold_cases=gold, key_facts=key_facts,
                        type=qtype, reference_answer=reference.strip() if reference else None,
                        history=tuple(history), filters=filters, line=line)


def parse_lines(lines: Iterable[str], source: str = "gold") -> list[GoldQuestion]:
    """Validate JSONL lines (blank lines skipped); ids must be unique."""
    out: list[GoldQuestion] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        where = f"{source} line {number}"
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise GoldError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        q = parse_question(data, where, number)
        if q.id in seen:
            raise _fail(where, "id", f"{q.id!r} repeats the id on line {seen[q.id]}")
        seen[q.id] = number
        out.append(q)
    if not out:
        raise GoldError(f"{source}: no questions (expected one JSON object a line)")
    return out


def load_gold(path: str | Path) -> list[GoldQuestion]:
    """Read and validate a gold JSONL file.

    Example:
        >>> qs = load_gold("eval/gold/dev.jsonl")          # doctest: +SKIP
        >>> qs[0].id, qs[0].gold_cases                     # doctest: +SKIP
        ('q001', ('99 104 233',))
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GoldError(f"gold file {path} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GoldError(f"gold file {path} cannot be read: {exc}") from None
    return parse_lines(text.splitlines(), str(path))


def file_sha256(path: str | Path) -> str:
    """Hash of a file's bytes (recorded in reports so a changed gold set shows)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
