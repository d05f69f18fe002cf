"""Ombudsman case numbers: recognised in any common spelling, normalised to "NN NNN NNN"."""

from __future__ import annotations

import re

# Two digits, three, three; separated by one space, hyphen, non-breaking space or nothing.
# The separators must agree with the digit groups so that "23009429" and "23 009 429" match
# but a phone number such as "0300 061 0614" does not.
_SEP = r"[ \u00a0/\-\u2010\u2011\u2013]?"
CASE_NUMBER_RE = re.compile(rf"(?<![\d£$])(?<!\d[.,])(\d{{2}}){_SEP}(\d{{3}}){_SEP}(\d{{3}})(?!\d|[.,]\d)")


def normalise_case_number(text: str) -> str | None:
    """Return "NN NNN NNN" for a case number written in any supported form, else None."""
    match = CASE_NUMBER_RE.fullmatch(text.strip())
    if not match:
        return None
    return " ".join(match.groups())


def find_case_numbers(text: str) -> list[str]:
    """All case numbers mentioned in text, normalised, in order of first appearance."""
    seen: dict[str, None] = {}
    for match in CASE_NUMBER_RE.finditer(text):
        seen.setdefault(" ".join(match.groups()), None)
    return list(seen)


def case_number_slug(case_number: str) -> str:
    """File- and id-safe form of a normalised case number: "23-009-429"."""
    return case_number.replace(" ", "-")
