"""Question analysis: validation, case numbers, filters (given and inferred), follow-up rewriting."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Container, Iterable, Sequence
from typing import Any

from core.casenum import find_case_numbers
from core.errors import QuestionError
from core.text import query_terms, stem
from core.types import Filters, Message, Query

# Words that say nothing about which council is meant.
_GENERIC_AUTHORITY_WORDS = {
    "council", "county", "city", "borough", "district", "metropolitan", "unitary", "london", "royal", "of", "the",
    "and", "ltd", "limited", "care", "homes", "services", "group", "plc", "llp", "authority", "corporation",
}
_FOLLOW_UP_START = re.compile(
    r"^(and|but|so|also|what about|how about|and what about|what of|same for|in|for|did they|did it|do they|was it|"
    r"were they|what did they|what else|why|how much|how long|which|who)\b", re.I)
_PRONOUNS = re.compile(r"\b(they|them|their|it|its|that|this|those|these|he|she|her|his|the council|the decision)\b",
                       re.I)


# A question asked across decisions rather than of one: "Which complaints against X were upheld?", "How has the
# Ombudsman dealt with noise nuisance?", "What has the Ombudsman said about late EHC plans?", "List ...", "Were
# any ...". Its answer is every decision that answers, each with what it found and did (rag/policy.py
# cited_decisions, rag/answer.py ExtractiveBackend.digest; measured in eval/NOTES.md "Questions across
# decisions"). It picks 30 of the dev split's 31 topical and filter questions; the other dev and train questions
# it picks are lookups (answered from the named decision whatever the form) and unanswerable ones (declined before
# the form matters).
SURVEY_QUESTION = re.compile(
    r"^\s*(?:and\s+)?(?:which|what)\b(?:\s+[\w'’-]+){0,5}?\s+(?:complaints|decisions|cases|investigations)\b"
    r"|\bhow (?:has|have|does|do|did|would|will) the ombudsman (?:dealt|deal|treat|treated|approach|approached|"
    r"look|looked|handle|handled|view|viewed|decide|decided|respond|responded)\b"
    r"|\bwhat (?:has|have|does|did) the ombudsman (?:said|say|decided?|found|find|recommended|recommend)\b"
    r"|\bwhat (?:remedies|redress|compensation|payments?) (?:has|have|does|do) the ombudsman\b"
    r"|^\s*(?:list|show)\b|^\s*(?:were|are|was|is|have|has) (?:there )?any\b|^\s*any\b|\bin (?:which|what) cases\b"
    r"|\bexamples? of\b|\bany (?:decisions?|cases|complaints)\b", re.I)


def asks_across_decisions(question: str) -> bool:
    """Whether a question asks across decisions (which ones, how the Ombudsman has dealt with something) rather
    than for one fact of one decision."""
    return bool(SURVEY_QUESTION.search(question))


# Years and outcomes written in a question asked across decisions ("Which complaints against X were upheld?",
# "... decided in 2023 or 2024", "... since the start of 2024", "... before 2020") restrict it as the filter
# controls would; a council named in the question already does. Only for such questions: "Was the complaint
# upheld?" asks about an outcome, and must not be restricted to it. Measured in eval/NOTES.md ("Filters written
# in the question"): the dev split's filter questions typed without the filter controls.
_YEAR = r"((?:19|20)\d\d)"
_YEAR_RANGES: tuple[tuple[re.Pattern[str], Callable[[int, int], tuple[int, int]]], ...] = (
    (re.compile(rf"\bbetween {_YEAR} and {_YEAR}\b", re.I), lambda a, b: (a, b)),
    (re.compile(rf"\b(?:in|during|from) {_YEAR} (?:or|and|to|until|-|–) {_YEAR}\b", re.I), lambda a, b: (a, b)),
)
_YEAR_BOUNDS: tuple[tuple[re.Pattern[str], Callable[[int], tuple[int | None, int | None]]], ...] = (
    (re.compile(rf"\bsince (?:the (?:start|beginning) of )?{_YEAR}\b|\bfrom {_YEAR} (?:onwards?|on)\b", re.I),
     lambda y: (y, None)),
    (re.compile(rf"\bafter {_YEAR}\b", re.I), lambda y: (y + 1, None)),
    (re.compile(rf"\bbefore {_YEAR}\b", re.I), lambda y: (None, y - 1)),
    (re.compile(rf"\b(?:until|up to|by the end of) {_YEAR}\b", re.I), lambda y: (None, y)),
    (re.compile(rf"\b(?:in|during) {_YEAR}\b", re.I), lambda y: (y, y)),
)


# "Were any environmental complaints upheld?" is answered "no" by showing the decisions and their outcomes, which an
# outcome filter would hide: only "which / list / show" questions take the outcome as a filter.
_YES_NO = re.compile(r"^\s*(?:were|are|was|is|have|has|did|do|does|any)\b", re.I)


def years_asked(question: str) -> tuple[dt.date | None, dt.date | None]:
    """The span of decision dates a question names in whole years: (first day, last day), None where open."""
    first: int | None
    last: int | None
    for pattern, span in _YEAR_RANGES:
        if m := pattern.search(question):
            first, last = sorted(span(int(m.group(1)), int(m.group(2))))  # "between 2021 and 2019" too
            break
    else:
        for pattern, bound in _YEAR_BOUNDS:
            if m := pattern.search(question):
                first, last = bound(int(next(g for g in m.groups() if g)))
                break
        else:
            return None, None
    return (dt.date(first, 1, 1) if first else None), (dt.date(last, 12, 31) if last else None)


# Words of a listing question that name no subject: what is listed, when, and how it is asked for. A question asked
# across decisions whose other words all come from its filters' values ("List the Yarrowby District Council
# decisions made from 2022 onwards", "Which complaints against X were upheld?") asks for exactly the decisions its
# filters select: it is answered from the catalog, newest first (rag/retrieve.py), not judged by relevance.
_LISTING_WORDS = frozenset(stem(w) for w in """
list show give find which what any all every complaints complaint decisions decision cases case made issued decide
decided decides published ombudsman council councils since start beginning end before after between until onwards
from year years latest recent newest oldest were was
""".split())


def names_only_filters(question: str, filters: Filters, outcome: str | None = None) -> bool:
    """Whether every subject word of a question is a word of its filters' values (a council, a category, an
    outcome), of the outcome a yes/no question asks about, or a year: it asks for the decisions the filters
    select and nothing else."""
    if not filters.active:
        return False
    named = {stem(w) for value in (filters.authority, filters.category, filters.outcome, outcome) if value
             for w in query_terms(value.replace(">", " "))}
    return all(stem(w) in named or stem(w) in _LISTING_WORDS or (w.isdigit() and len(w) == 4)
               for w in query_terms(question))


# A category named beside what is asked for in a question asked across decisions ("Which housing complaints were
# closed after initial enquiries?", "List the school transport decisions", "Show upheld adult social care complaints",
# "complaints about homelessness") restricts it as the category control would. Only the words beside "complaints" /
# "decisions" / "cases" name one: "What has the Ombudsman said about noise?" asks about noise wherever a decision was
# filed (a nuisance, a planning enforcement), which a category filter would hide. Those words are matched to the
# index's category names by the share of words they have in common (people say "children's services" for
# "Children's care services"), and a name the question could mean more than one way is left alone ("planning" beside
# both "Planning" and "Planning and development", "environmental" beside "Environmental services" and "Environment
# and regulation", "housing benefit" beside "Housing"). Measured in eval/NOTES.md ("Categories named in the
# question").
_ASKED_FOR = frozenset(stem(w) for w in "complaints complaint decisions decision cases case investigations".split())
_JOINING = frozenset("the a an and about on over into involving concerning regarding of for in to with".split())
# Words that end the name before "complaints" ("Show upheld | adult social care complaints") or after "complaints
# about" ("... about council tax | were upheld", "... | in 2024", "... | against X").
_ENDS_NAME = frozenset(stem(w) for w in """
which what any all list show give find were was are is have has had been be that where when made decided upheld
closed not since from between before after during until by against did do does many recent latest newest some these
those its their his her my our your how ombudsman
""".split()) | _JOINING
_MIN_SHARE = 0.5  # more than half the name's words are in the question's, and more than half the question's in it


def category_asked(question: str, paths: Sequence[str]) -> str | None:
    """The index's category or "Category > Subcategory" a question names beside "complaints" / "decisions", when
    exactly one fits; None otherwise. paths: the index's categories (the catalog's category_paths)."""
    named = _names_beside_asked_for(question)
    if not named:
        return None
    scored = []
    for path in paths:
        parts = [p.strip() for p in path.split(">")]
        in_order = _name_words(parts[-1])
        words = set(in_order)
        if not words or parts[-1].lower() == "other":
            continue
        share = max(min(len(_shared(words, n)) / len(words), len(_shared(n, words)) / len(n)) for n in named)
        scored.append((share, len(parts), path, in_order))
    scored.sort(key=lambda s: -s[0])
    if not scored or scored[0][0] <= _MIN_SHARE or (len(scored) > 1 and scored[1][0] == scored[0][0]):
        return None
    share, level, path, words = scored[0]
    if any(other_level == level and len(other) > len(words) and other[:len(words)] == words
           for _, other_level, _, other in scored[1:]):
        return None  # "Planning" beside "Planning and development"
    return path


def _names_beside_asked_for(question: str) -> list[set[str]]:
    """The words just before "complaints" / "decisions" ("adult social care complaints") and just after
    "complaints about" ("... about homelessness were upheld"): up to six each, "and" / "of" inside a name
    ("highways and transport") passed over."""
    # "SEND complaints": the acronyms staff use for what a category spells out
    spelled = _ACRONYM_RE.sub(lambda m: ACRONYMS[m.group(1)], question)
    # "councils' homelessness decisions": whose decisions, not what about (a council's own name is no category)
    stems = [stem(_before_apostrophe(w)) for w in _words(spelled) if _before_apostrophe(w) and w not in _COUNCILS]
    out = []
    for i, s in enumerate(stems):
        if s not in _ASKED_FOR:
            continue
        # "complaint handling decisions": a name may hold "complaint" before what is asked for
        before = _name_run(reversed(stems[max(0, i - 6):i]), stop=_ENDS_NAME)[::-1]
        j = i + 1
        while j < len(stems) and stems[j] in _JOINING:
            j += 1
        after = _name_run(stems[j:j + 6], stop=_ENDS_NAME | _ASKED_FOR) if j > i + 1 else []  # "complaints about"
        out.extend(n for n in (set(before), set(after)) if n)
    return out


def _name_run(words: Iterable[str], stop: Container[str]) -> list[str]:
    """The words up to the first that ends a name (a year too), without "and" / "of"."""
    run = []
    for w in words:
        if w in _WITHIN_NAME:
            continue
        if w in stop or w.isdigit():
            break
        run.append(w)
    return run


_WITHIN_NAME = frozenset({"and", "of"})
_COUNCILS = frozenset({"councils", "councils'", "council's"})


def _shared(name: set[str], asked: set[str]) -> set[str]:
    """The name's words the question has, a stem counting when one begins the other ("environ"/"environment")."""
    return {w for w in name if any(w == a or (min(len(w), len(a)) >= 5 and (w.startswith(a) or a.startswith(w)))
                                   for a in asked)}


def _name_words(text: str) -> list[str]:
    """Stems of a name's words in order, without the words that join them ("Highways and transport")."""
    heads = (_before_apostrophe(w) for w in _words(text))
    return [stem(w) for w in heads if w and w not in _JOINING]


def _words(text: str) -> list[str]:
    """A text's words in lower case, in order, apostrophes kept ("councils'", "children's")."""
    return [w.replace("’", "'") for w in re.findall(r"[\w'’]+", text.lower())]


def _before_apostrophe(word: str) -> str:
    """"children's" -> "children"."""
    return word.split("'")[0]


def outcome_asked(question: str, outcomes: Sequence[str]) -> str | None:
    """The index's outcome a question names in full ("not upheld" before "upheld"), or None."""
    text = " ".join(question.lower().split())
    for outcome in sorted(outcomes, key=len, reverse=True):
        if outcome and re.search(rf"(?<![\w-]){re.escape(' '.join(outcome.lower().split()))}(?![\w-])", text):
            return outcome
    return None


_ANSI_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")


# Acronyms staff use for bodies and processes the decisions spell out in full. The small embedding model
# barely knows them: "When does the ICO handle rectification?" is 0.41 similar to the sentence that answers
# it, and 0.64 once "Information Commissioner's Office" is added.
ACRONYMS = {
    "ICO": "Information Commissioner's Office", "LGO": "Local Government Ombudsman",
    "LGSCO": "Local Government and Social Care Ombudsman", "EHC": "education, health and care",
    "EHCP": "education, health and care plan", "SEND": "special educational needs and disabilities",
    "SEN": "special educational needs", "CPC": "child protection conference",
    "ICPC": "initial child protection conference", "PCN": "penalty charge notice",
    "CTR": "council tax reduction", "DFG": "disabled facilities grant", "CQC": "Care Quality Commission",
    "ASB": "anti-social behaviour", "HMO": "house in multiple occupation",
    "DoLS": "deprivation of liberty safeguards", "SAR": "subject access request",
}
_ACRONYM_RE = re.compile(r"\b(" + "|".join(sorted(ACRONYMS, key=len, reverse=True)) + r")\b")


def expand_acronyms(text: str) -> str:
    """Add the spelled-out form after each known acronym: "the ICO (Information Commissioner's Office)"."""
    seen: set[str] = set()

    def add(match: re.Match[str]) -> str:
        word = match.group(1)
        if word in seen or ACRONYMS[word].lower() in text.lower():
            return word
        seen.add(word)
        return f"{word} ({ACRONYMS[word]})"

    return _ACRONYM_RE.sub(add, text)


def clean_question(text: str, max_chars: int) -> str:
    """Strip control characters and surrounding space; refuse empty or over-long questions."""
    if text is None:
        raise QuestionError("Please type a question.")
    if len(text) > max_chars:
        raise QuestionError(
            f"The question is {len(text):,} characters long; the limit is {max_chars:,}. "
            "Shorten it to the point you want answered."
        )
    text = _ANSI_ESCAPE.sub(" ", text)  # pasted from a terminal: drop "\x1b[31m" whole, not leave "[31m"
    cleaned = "".join(ch if ch in "\n\t" or unicodedata.category(ch)[0] != "C" else " " for ch in text)
    cleaned = re.sub(r"\s+", " ", cleaned).strip()
    if not cleaned:
        raise QuestionError("Please type a question (it was empty).")
    if not re.search(r"\w", cleaned):
        raise QuestionError("The question has no words in it; please type a question.")
    return cleaned


def distinctive_name(authority: str) -> str:
    """'Hampshire County Council' -> 'hampshire': the part of a name people actually say."""
    words = [w for w in re.findall(r"[\w']+", authority.lower()) if w not in _GENERIC_AUTHORITY_WORDS]
    return " ".join(words)


def find_authorities(text: str, authorities: Sequence[str]) -> list[str]:
    """Authorities named in text, by full name or by their distinctive part as whole words."""
    lowered = " " + re.sub(r"[^\w']+", " ", text.lower()) + " "
    found = []
    for name in authorities:
        full = " " + re.sub(r"[^\w']+", " ", name.lower()).strip() + " "
        short = distinctive_name(name)
        if full in lowered or (short and f" {short} " in lowered):
            found.append(name)
    return found


def resolve_value(value: str | None, choices: Sequence[str], allow_partial: bool = True) -> str | None:
    """Map a filter value onto the catalog's spelling (case-insensitive; unique partial match allowed)."""
    if not value:
        return value
    low = value.strip().lower()
    for choice in choices:
        if choice.lower() == low:
            return choice
    if allow_partial:
        partial = [c for c in choices if low in c.lower() or (distinctive_name(c) and distinctive_name(c) == low)]
        if len(partial) == 1:
            return partial[0]
    return value.strip()


# "the second one", "that case", "the other decision": points back at something the conversation named.
_REFERS_BACK = re.compile(r"\b(?:the|that|this) (?:first|second|third|fourth|last|latter|former|other|same|earlier|"
                          r"later) (?:one|case|decision|complaint|council)\b|\b(?:that|this) (?:case|decision)\b", re.I)
# "Was there one where...", "another case", "...looked into it anyway": the same topic, a different decision.
_ANOTHER_CASE = re.compile(r"\b(?:(?:was|is|were|are) there (?:one|another|any others?)\b|(?:was|is) there an? "
                           r"(?:case|decision|complaint) (?:where|when|in which)|an?other (?:one|case|decision|council)|"
                           r"any other (?:cases?|decisions?|councils?)|one where|anyway|instead|elsewhere)\b", re.I)
_CONJUNCTION_START = re.compile(r"^(and|but|also|so|then)\b", re.I)
# "Was she offered anything else?", "... how it handles those reviews?": a person named only as she/he in the first
# words, or "those/these" + a noun, points back at the conversation at any length. ("They"/"it" do not: lay
# questions open with "They stopped the cab..." meaning the council; 3 train questions would be misread.) On the
# dev split it finds 2 more of its 19 follow-ups and flags none of the dev or train questions asked alone.
_POINTS_BACK = re.compile(r"^\W*(?:\w+\W+){0,2}(?:she|he)\b|\b(?:those|these)\s+(?!are\b|were\b)\w+", re.I)


def follow_up_kind(question: str) -> str | None:
    """How a question leans on the previous turn (elliptical questions such as "What about Hampshire?"): "same" (about what was just discussed: "Did they pay?"),
    "another" (the same topic, a different decision: "Was there one where the council was not at fault?") or
    None (it stands alone)."""
    words = re.findall(r"\w+", question)
    q = question.strip()
    if _ANOTHER_CASE.search(q) and len(words) <= 20:
        return "another"
    if (len(words) <= 3 or _REFERS_BACK.search(q) or (_CONJUNCTION_START.match(q) and len(words) <= 20)
            or (_FOLLOW_UP_START.match(q) and len(words) <= 10) or (len(words) <= 8 and _PRONOUNS.search(q))
            or (_POINTS_BACK.search(q) and len(words) <= 20)):
        return "same"
    return None


def previous_question(history: Sequence[Message] | None) -> str | None:
    """The most recent user turn in history."""
    for message in reversed(history or []):
        if message.role == "user" and message.content.strip():
            return message.content.strip()
    return None


def coerce_history(history: Sequence[object] | None) -> list[Message]:
    """Accept Message objects, {"role","content"} dicts or (user, assistant) pairs."""
    out: list[Message] = []
    for item in history or []:
        if isinstance(item, Message):
            out.append(item)
        elif isinstance(item, dict) and "role" in item:
            content = item.get("content")
            if isinstance(content, list):  # Gradio may send content parts
                content = " ".join(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in content)
            if item["role"] in ("user", "assistant") and content:
                out.append(Message(item["role"], str(content)))
        elif isinstance(item, (list, tuple)) and len(item) == 2:
            if item[0]:
                out.append(Message("user", str(item[0])))
            if item[1]:
                out.append(Message("assistant", str(item[1])))
    return out


class QueryAnalyser:
    """Turns a raw question (+ filters, + history) into a Query."""

    def __init__(self, authorities: Callable[[], Sequence[str]], categories: Callable[[], Sequence[str]],
                 outcomes: Callable[[], Sequence[str]], max_chars: int = 2000, infer_authority: bool = True,
                 category_paths: Callable[[], Sequence[str]] = tuple):
        self._authorities = authorities
        self._category_paths = category_paths
        self._categories = categories
        self._outcomes = outcomes
        self.max_chars = max_chars
        self.infer_authority = infer_authority

    def canonical_filters(self, filters: Filters) -> Filters:
        """Filters with names spelled as the catalog spells them (unknown names kept, and will match nothing)."""
        return dataclasses.replace(
            filters,
            authority=resolve_value(filters.authority, self._authorities()),
            category=resolve_value(filters.category, self._categories(), allow_partial=False)
            if filters.category and ">" not in filters.category else filters.category,
            outcome=resolve_value(filters.outcome, self._outcomes(), allow_partial=False),
        )

    def analyse(self, question: str, filters: Filters | None = None, history: Sequence[Message] | None = None,
                rewrite: Callable[[str, Sequence[Message]], str] | None = None) -> Query:
        """Validate and analyse a question; `rewrite` is the LLM condense step (None: carry terms over)."""
        text = clean_question(question, self.max_chars)
        filters = self.canonical_filters(filters or Filters())
        history = list(history or [])
        standalone = text
        previous = previous_question(history)
        carried_cases: list[str] = []
        inferred: list[str] = []
        kind = follow_up_kind(text) if previous else None
        if kind:
            if rewrite is not None:
                standalone = rewrite(text, history) or text
            else:
                standalone = f"{previous} {text}"
            if not find_case_numbers(text) and kind == "same":
                carried_cases = find_case_numbers(previous)
        cases = find_case_numbers(text) or carried_cases
        if self.infer_authority and filters.authority is None:
            named = find_authorities(text, self._authorities())
            if not named and previous and standalone != text and kind == "same":
                # "another" asks for a different decision: the previous turn's council is not carried over
                named = find_authorities(previous, self._authorities())
            distinct = {distinctive_name(n) for n in named}
            if len(distinct) == 1 and len(named) >= 1 and not cases:
                if len(named) == 1:
                    filters = dataclasses.replace(filters, authority=named[0])
                    inferred.append("authority")
        survey = asks_across_decisions(text)
        asked = None
        if survey:
            filters, asked = self._filters_written(text, filters, inferred)
        return Query(text=text, standalone=standalone, case_numbers=tuple(cases), filters=filters,
                     inferred_filters=tuple(inferred), survey=survey,
                     listing=survey and not cases and names_only_filters(text, filters, asked),
                     outcome_asked=asked)

    def _filters_written(self, text: str, filters: Filters, inferred: list[str]) -> tuple[Filters, str | None]:
        """The category, outcome and years a question asked across decisions names, where no filter control set them
        (their names are added to `inferred`); and the outcome a yes/no question ("Were any ... upheld?") asks
        about, which it keeps as a question, not a filter."""
        changes: dict[str, Any] = {}
        asked = None
        if filters.category is None and (category := category_asked(text, self._category_paths())):
            changes["category"] = category
        if filters.outcome is None and (outcome := outcome_asked(text, self._outcomes())):
            if _YES_NO.match(text):
                asked = outcome
            else:
                changes["outcome"] = outcome
        if filters.since is None and filters.until is None:
            since, until = years_asked(text)
            changes |= {k: v for k, v in (("since", since), ("until", until)) if v is not None}
        inferred.extend(changes)
        return (dataclasses.replace(filters, **changes) if changes else filters), asked
