"""Small formatting helpers the UI's Markdown and HTML share: escaping, safe links, element ids, dates, filters.

Everything that comes from a decision or a person is shown as TEXT. HTML is escaped by the templates (autoescaping
Jinja2, ui/templating.py); Markdown, which the chat renders and which also accepts HTML, is escaped here.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Sequence
from urllib.parse import urlsplit

from core.text import display_date
from core.types import Filters

FILTER_LABELS = {"authority": "council", "category": "category", "outcome": "outcome", "since": "from",
                 "until": "to"}


def escape_markdown(text: str | None) -> str:
    """Text for a Markdown renderer that also accepts HTML: HTML escaped, link/image brackets neutralised."""
    escaped = html.escape(text or "", quote=False)
    return escaped.replace("[", "\\[").replace("]", "\\]")


def escape_export(text: str | None) -> str:
    """Text for the exported Markdown file, which people read raw as often as rendered: only what could become
    HTML (<) or a link or image ("](") is neutralised, so it stays readable."""
    return (text or "").replace("<", "&lt;").replace("](", "]\\(")


def safe_url(url: str | None) -> str | None:
    """The URL if it is a plain http(s) address, else None (no javascript:, data: or relative links)."""
    if not url:
        return None
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or any(c in url for c in "\"'<> \n\t"):
        return None
    return url


def slug(text: str) -> str:
    """Lower-case letters, digits and hyphens: safe inside an HTML id."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def card_id(turn: int, label: str) -> str:
    """The HTML id of a source card: unique per answer (turn) and decision."""
    return f"src-{turn}-{slug(label)}"


def passage_id(turn: int, label: str, paragraph: int) -> str:
    """The HTML id of one quoted paragraph inside a card (0 = the summary)."""
    return f"{card_id(turn, label)}-{'summary' if paragraph == 0 else f'p{paragraph}'}"


def format_date(value: dt.date | str | None) -> str:
    """'23 Oct 2023' from a date or an ISO string; '' when unknown (an unreadable string is shown as it is)."""
    if not value:
        return ""
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value[:10])
        except ValueError:
            return value
    return display_date(value)


def stated_date(value: dt.date | str | None) -> str:
    """format_date, or core.text.display_date's 'date not stated' when there is none."""
    return format_date(value) or display_date(None)


def describe_filters(filters: Filters, inferred: Sequence[str] = ()) -> str:
    """Plain wording of the filters an answer used, e.g. 'council: Hampshire County Council (from your question)'."""
    parts = []
    for key, value in filters.to_dict().items():
        if key in ("since", "until"):
            value = format_date(value)
        part = f"{FILTER_LABELS.get(key, key)}: {value}"
        if key in inferred:
            part += " (from your question)"
        parts.append(part)
    return "; ".join(parts)
