"""What the chat UI shows, as pure functions: Answer -> chat Markdown with linked citation markers, source
cards (HTML), the conversation export (Markdown), and the audit and feedback log records.

No Gradio in here, so all of it is unit-tested without a browser. Everything that comes from a decision or a
person is shown as TEXT: it is HTML-escaped before it goes into HTML or Markdown, so a decision containing
<script> or <img onerror=...> is displayed, never run. Only the markup built here (anchors, cards) is HTML.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from core.casenum import case_number_slug
from core.text import category_path
from core.types import Answer, Citation, Filters, Hit
from rag.cite import UNCITED_MARK

SNIPPET_CHARS = 420
FILTER_LABELS = {"authority": "council", "category": "category", "outcome": "outcome", "since": "from",
                 "until": "to"}


# text safety ------------------------------------------------------------------------------------------------
def escape_text(text: str | None) -> str:
    """Text for HTML: <, >, & and quotes escaped."""
    return html.escape(text or "", quote=True)


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
    """'23 Oct 2023' from a date or an ISO string; '' when unknown."""
    if not value:
        return ""
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value[:10])
        except ValueError:
            return value
    return value.strftime("%d %b %Y").lstrip("0")


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


# source cards -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Passage:
    """A quoted piece of a decision: its paragraph numbers (0 = summary, none = the decision as a whole)."""

    paragraphs: tuple[int, ...]
    text: str

    @property
    def label(self) -> str:
        """'¶7', '¶8–9', '¶3, 5', 'Summary' or 'Decision'."""
        nums = list(self.paragraphs)
        if not nums:
            return "Decision"
        if nums == [0]:
            return "Summary"
        nums = [n for n in nums if n]
        if len(nums) > 1 and nums == list(range(nums[0], nums[-1] + 1)):
            return f"¶{nums[0]}–{nums[-1]}"
        return "¶" + ", ".join(str(n) for n in nums)


@dataclass(frozen=True)
class SourceCard:
    """One decision beside an answer: who, what, when, and the passages cited (or retrieved)."""

    label: str
    doc_id: str
    case_number: str | None
    authority: str | None
    category: str | None
    outcome: str | None
    decision_date: dt.date | str | None
    url: str | None
    passages: tuple[Passage, ...]
    cited: bool
    citation_labels: tuple[str, ...] = field(default=())


def _hit_meta(hits: Iterable[Hit]) -> dict[str, dict[str, Any]]:
    meta: dict[str, dict[str, Any]] = {}
    for h in hits:
        meta.setdefault(h.chunk.doc_id, dict(h.chunk.metadata))
    return meta


def _category(meta: Mapping[str, Any]) -> str | None:
    return category_path(meta.get("category"), meta.get("subcategory")) or None


def _short(text: str, limit: int = SNIPPET_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + " …"


def source_cards(answer: Answer) -> tuple[list[SourceCard], list[SourceCard]]:
    """(cited, also_retrieved): one card per cited decision in order of first citation, then the
    decisions retrieved but not cited, in rank order."""
    meta = _hit_meta(answer.sources)
    by_doc: dict[str, list[Citation]] = {}
    for c in answer.citations:
        by_doc.setdefault(c.doc_id, []).append(c)
    cited: list[SourceCard] = []
    for doc_id, cites in by_doc.items():
        first = cites[0]
        m = meta.get(doc_id, {})
        passages: dict[tuple[int, ...], Passage] = {}
        for c in sorted(cites, key=lambda c: (-1 if c.paragraph is None else c.paragraph)):
            key = () if c.paragraph is None else (c.paragraph,)
            if key not in passages and (c.quote or key):
                passages[key] = Passage(key, c.quote)
        cited.append(SourceCard(
            label=first.case_number or first.doc_id, doc_id=doc_id, case_number=first.case_number,
            authority=first.authority or m.get("authority"), category=first.category or _category(m),
            outcome=first.outcome or m.get("outcome"), decision_date=first.decision_date or m.get("decision_date"),
            url=first.url or m.get("url"), passages=tuple(passages.values()), cited=True,
            citation_labels=tuple(dict.fromkeys(c.label for c in cites))))
    also: dict[str, list[Hit]] = {}
    for h in sorted(answer.sources, key=lambda h: h.rank):
        if h.chunk.doc_id not in by_doc:
            also.setdefault(h.chunk.doc_id, []).append(h)
    retrieved = []
    for doc_id, hits in also.items():
        best = hits[0]
        m = dict(best.chunk.metadata)
        retrieved.append(SourceCard(
            label=best.chunk.case_number or doc_id, doc_id=doc_id, case_number=best.chunk.case_number,
            authority=m.get("authority"), category=_category(m), outcome=m.get("outcome"),
            decision_date=m.get("decision_date"), url=m.get("url"),
            passages=(Passage(tuple(best.chunk.paragraphs), _short(best.chunk.text)),), cited=False))
    return cited, retrieved


def _card_html(card: SourceCard, turn: int) -> str:
    meta = [escape_text(x) for x in (card.authority or "Council not stated", card.category,
                                      format_date(card.decision_date)) if x]
    outcome = f'<span class="src-outcome">{escape_text(card.outcome)}</span>' if card.outcome else ""
    kind = "" if card.case_number else \
        '<span class="src-nocase" title="No case number on the page">no case number</span>'
    quotes = []
    for p in card.passages:
        pid = passage_id(turn, card.label, p.paragraphs[0]) if card.cited and len(p.paragraphs) == 1 else None
        id_attr = f' id="{pid}"' if pid else ""
        para_attr = f' data-para="{p.paragraphs[0]}"' if p.paragraphs and p.paragraphs[0] else ""
        quotes.append(f'<blockquote class="src-quote"{id_attr}{para_attr}><span class="src-para">'
                      f'{escape_text(p.label)}</span> {escape_text(p.text) or "<em>(no text)</em>"}</blockquote>')
    url = safe_url(card.url)
    link = (f'<a class="src-link" href="{escape_text(url)}" target="_blank" rel="noopener noreferrer nofollow">'
            f'Read the published decision ↗<span class="visually-hidden"> (opens in a new tab)</span></a>'
            ) if url else ""
    ref = case_number_slug(card.case_number) if card.case_number else card.doc_id
    paras = ",".join(str(n) for p in card.passages for n in p.paragraphs if n) if card.cited else ""
    href = "?" + urlencode({"case": ref, **({"para": paras} if paras else {})})
    what = "the cited paragraphs in context" if paras else "the whole decision"
    opener = (f'<a class="src-open" href="{escape_text(href)}" data-open-ref="{escape_text(ref)}" '
              f'data-paras="{escape_text(paras)}">{escape_text(card.label)}'
              f'<span class="visually-hidden">: read {what}</span></a>')
    classes = "src-card cited" if card.cited else "src-card retrieved"
    return (f'<article class="{classes}" id="{card_id(turn, card.label)}" data-doc="{escape_text(card.doc_id)}" '
            f'data-ref="{escape_text(ref)}" data-paras="{escape_text(paras)}">'
            f'<div class="src-head"><span class="src-label">{opener}</span>{kind}{outcome}</div>'
            f'<div class="src-meta">{" · ".join(meta)}</div>'
            f'{"".join(quotes)}<div class="src-actions"><a class="src-open src-read" href="{escape_text(href)}" '
            f'data-open-ref="{escape_text(ref)}" data-paras="{escape_text(paras)}">Read the whole decision'
            f'<span class="visually-hidden"> {escape_text(card.label)}</span></a>{link}</div></article>')


def answer_sources_html(answer: Answer | None, turn: int, question: str, active: bool = True,
                        error: str | None = None) -> str:
    """The sources section for one answer: its filters, cited decision cards, 'Also retrieved' collapsed."""
    head = (f'<div class="src-turn-head"><span class="src-q">Q{turn}</span>'
            f'<span class="src-question">{escape_text(_short(question, 160))}</span></div>')
    body: list[str] = []
    if answer is None:
        body.append(f'<p class="src-empty">{escape_text(error) if error else "Searching the decisions…"}</p>')
    else:
        wording = describe_filters(answer.filters_applied, answer.inferred_filters)
        body.append(f'<div class="src-filters"><span class="src-k">Filters</span> '
                    f'{escape_text(wording) if wording else "none — all decisions searched"}</div>')
        for note in answer.notes:
            body.append(f'<div class="src-note">{escape_text(note)}</div>')
        cited, retrieved = source_cards(answer)
        if cited:
            body.append(f'<h3 class="src-h">Cited decisions <span class="src-count">{len(cited)}</span></h3>')
            body.extend(_card_html(c, turn) for c in cited)
        else:
            body.append('<p class="src-empty">No decision was cited in this answer.</p>')
        if retrieved:
            body.append(f'<details class="src-also"><summary>Also retrieved '
                        f'<span class="src-count">{len(retrieved)}</span></summary>'
                        + "".join(_card_html(c, turn) for c in retrieved) + "</details>")
    state = " active" if active else ""
    return f'<section class="src-turn{state}" id="src-turn-{turn}" data-turn="{turn}">{head}{"".join(body)}</section>'


EMPTY_SOURCES = ('<p class="src-empty">Each answer\'s sources appear here: one card per decision it cites, with '
                 "the quoted paragraphs, council, category, outcome and date.</p>")


def sources_panel_html(sections: Sequence[str]) -> str:
    """The whole sources panel: one section per answer (the last one shown; citation links show others)."""
    inner = "".join(sections) if sections else EMPTY_SOURCES
    return f'<div class="sources-panel"><h2 class="sources-title">Sources</h2>{inner}</div>'


# chat text ---------------------------------------------------------------------------------------------------
_MARKER = re.compile(r"\[([^\[\]\n]{1,300})\]|[\[\]]")


def citation_targets(answer: Answer, turn: int) -> dict[str, str]:
    """Marker label -> the HTML id it links to (the quoted paragraph, else the decision's card)."""
    targets: dict[str, str] = {}
    for c in answer.citations:
        label = c.case_number or c.doc_id
        targets.setdefault(label, card_id(turn, label))
        if c.paragraph is not None:
            targets[c.label] = passage_id(turn, label, c.paragraph)
        else:
            targets.setdefault(c.label, card_id(turn, label))
    return targets


def link_markers(text: str, targets: Mapping[str, str]) -> str:
    """Escape text for Markdown and turn citation markers like [23 009 429 ¶7] into Markdown links to their
    cards, [23 009 429 ¶7](#src-1-23-009-429-p7): rendered as a link, and still readable when copied."""
    escaped = html.escape(text, quote=False)

    def replace(match: re.Match[str]) -> str:
        inner = match.group(1)
        if inner is None:
            return "\\" + match.group(0)
        parts = re.split(r"\s*;\s*", inner.strip())
        if parts and all(html.unescape(p) in targets for p in parts):
            return " ".join(f"[{p}](#{targets[html.unescape(p)]})" for p in parts)
        return "\\[" + inner + "\\]"

    return _MARKER.sub(replace, escaped)


def decision_refs(answer: Answer) -> dict[str, str]:
    """Label (case number, or document id without one) -> what ?case= takes, for every decision the answer
    retrieved or cited."""
    refs: dict[str, str] = {}
    for h in answer.sources:
        refs[h.chunk.case_number or h.chunk.doc_id] = (case_number_slug(h.chunk.case_number) if h.chunk.case_number
                                                       else h.chunk.doc_id)
    for c in answer.citations:
        refs[c.case_number or c.doc_id] = case_number_slug(c.case_number) if c.case_number else c.doc_id
    return refs


def link_case_numbers(body: str, refs: Mapping[str, str]) -> str:
    """Make plain mentions of these decisions in (already escaped) chat Markdown into links that open them in the
    viewer, e.g. "24 005 748 — Hampshire County Council" -> "[24 005 748](?case=24-005-748) — ...". Labels inside
    citation markers ("[24 005 748 ¶8](#src-...)") are left alone; so is any case number the answer did not
    retrieve."""
    if not refs:
        return body
    names = "|".join(re.escape(k) for k in sorted(refs, key=len, reverse=True))
    pattern = re.compile(rf"(?<![\[\w-])({names})(?![\w-]|\]| ¶| summary)")
    return pattern.sub(lambda m: f"[{m.group(1)}](?{urlencode({'case': refs[m.group(1)]})})", body)


def answer_markdown(answer: Answer, turn: int) -> str:
    """The assistant message for a finished answer: escaped text, linked markers and case numbers, the filters
    it used."""
    body = link_markers(answer.text, citation_targets(answer, turn))
    body = link_case_numbers(body, decision_refs(answer))
    body = body.replace(UNCITED_MARK, "_(no citation)_")
    wording = describe_filters(answer.filters_applied, answer.inferred_filters)
    if wording:
        body += f"\n\n_Filters used: {escape_markdown(wording)}_"
    return body


def pending_markdown(partial: str) -> str:
    """The assistant message while an answer is still streaming."""
    if not partial.strip():
        return "_Searching the decisions…_"
    return escape_markdown(partial).replace(UNCITED_MARK, "(no citation)") + " ▍"


def error_markdown(message: str) -> str:
    """A short friendly error shown in the chat in place of an answer."""
    return "⚠️ " + escape_markdown(message)


# the conversation -------------------------------------------------------------------------------------------
@dataclass
class Turn:
    """One question and what came back: an Answer, or an error message for the person."""

    number: int
    question: str
    filters: Filters
    asked_at: str
    answer: Answer | None = None
    partial: str = ""
    error: str | None = None

    def chat_messages(self) -> list[dict[str, str]]:
        """The two chat bubbles of this turn (role/content dicts)."""
        if self.answer is not None:
            reply = answer_markdown(self.answer, self.number)
        elif self.error is not None:
            reply = error_markdown(self.error)
        else:
            reply = pending_markdown(self.partial)
        return [{"role": "user", "content": escape_markdown(self.question)},
                {"role": "assistant", "content": reply}]

    def sources_html(self, active: bool) -> str:
        """This turn's section of the sources panel."""
        return answer_sources_html(self.answer, self.number, self.question, active, self.error)


def chat_messages(turns: Sequence[Turn]) -> list[dict[str, str]]:
    """Chatbot value for the whole conversation."""
    return [m for t in turns for m in t.chat_messages()]


def sources_panel(turns: Sequence[Turn]) -> str:
    """Sources panel for the whole conversation (the last answer's section visible)."""
    return sources_panel_html([t.sources_html(active=i == len(turns) - 1) for i, t in enumerate(turns)])


def history(turns: Sequence[Turn]) -> list[dict[str, str]]:
    """Chat history for Assistant.stream: earlier questions and the answers they got (plain text)."""
    out: list[dict[str, str]] = []
    for t in turns:
        if t.answer is not None:
            out += [{"role": "user", "content": t.question}, {"role": "assistant", "content": t.answer.text}]
    return out


def status_markdown(status: Mapping[str, Any]) -> str:
    """Index status for the sidebar: decisions, passages, last ingest, embedding model, answer backend."""
    last = status.get("last_ingest")
    when = "never"
    if last:
        try:
            when = dt.datetime.fromisoformat(str(last)).strftime("%d %b %Y %H:%M").lstrip("0")
        except ValueError:
            when = str(last)
    backend = status.get("backend") or "?"
    if status.get("model"):
        backend += f" ({status['model']})"
    rows = [("Decisions", status.get("decisions", 0)), ("Passages", status.get("chunks", 0)),
            ("Last ingest", when), ("Embedding model", status.get("embedding_model")), ("Answers", backend)]
    return "\n".join(f"- **{k}:** {escape_markdown(str(v))}" for k, v in rows)


def export_markdown(turns: Sequence[Turn], status: Mapping[str, Any] | None = None,
                    now: dt.datetime | None = None) -> str:
    """The conversation with its citations, as a Markdown document staff can file or forward."""
    now = now or dt.datetime.now(dt.timezone.utc)
    lines = ["# Conversation with the Ombudsman decisions assistant", "",
             f"Exported {now.strftime('%d %b %Y %H:%M %Z').lstrip('0')}."]
    if status:
        lines.append(f"Index: {status.get('decisions', '?')} decisions; embedding model "
                     f"{escape_export(str(status.get('embedding_model')))}; answers by "
                     f"{escape_export(str(status.get('backend')))}"
                     + (f" ({escape_export(str(status['model']))})" if status.get("model") else "") + ".")
    lines += ["", "Answers quote published decisions of the Local Government and Social Care Ombudsman. "
                  "Check each cited paragraph before relying on it.", ""]
    for t in turns:
        lines += [f"## {t.number}. {escape_export(t.question)}", ""]
        a = t.answer
        if a is None:
            lines += [f"_No answer: {escape_export(t.error or 'not finished')}_", ""]
            continue
        wording = describe_filters(a.filters_applied, a.inferred_filters)
        lines += [f"Filters: {escape_export(wording) if wording else 'none (all decisions searched)'}", ""]
        lines += [escape_export(a.text), ""]
        cited, retrieved = source_cards(a)
        if cited:
            lines += ["### Sources cited", ""]
            for card in cited:
                facts = "; ".join(escape_export(x) for x in (card.authority or "council not stated", card.category,
                                                               card.outcome, format_date(card.decision_date)) if x)
                url = safe_url(card.url)
                lines.append(f"- **{escape_export(card.label)}** — {facts}" + (f" — <{url}>" if url else ""))
                for p in card.passages:
                    lines.append(f"  > {p.label}: {escape_export(' '.join(p.text.split()))}")
            lines.append("")
        if retrieved:
            lines.append("Also retrieved (not cited): " + "; ".join(
                escape_export(f"{c.label} ({c.authority or 'council not stated'})") for c in retrieved) + ".")
            lines.append("")
        lines += [f"<sub>{escape_export(a.backend)}{' · ' + escape_export(a.model) if a.model else ''}"
                  f"{' · prompt ' + escape_export(a.prompt_version) if a.prompt_version else ''}</sub>", ""]
    return "\n".join(lines).rstrip() + "\n"


# log records ------------------------------------------------------------------------------------------------
def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


def audit_record(turn: Turn, *, session: str | None = None, user: str | None = None,
                 error_kind: str | None = None) -> dict[str, Any]:
    """One audit line: the question, the answer with its citations and sources, or the error shown."""
    record: dict[str, Any] = {"ts": _now(), "event": "answer" if turn.answer is not None else "error",
                              "session": session, "user": user, "turn": turn.number, "asked_at": turn.asked_at,
                              "question": turn.question, "filters_requested": turn.filters.to_dict()}
    if turn.answer is not None:
        record.update(turn.answer.to_dict())
        record["question"] = turn.question
    else:
        record.update({"error": turn.error, "error_kind": error_kind})
    return record


def feedback_record(turn: Turn, rating: str, comment: str | None, settings: Mapping[str, Any], *,
                    session: str | None = None, user: str | None = None) -> dict[str, Any]:
    """One feedback line: the rating and comment with what produced the answer (question, answer,
    citations, filters, settings)."""
    a = turn.answer
    return {
        "ts": _now(), "rating": rating, "comment": (comment or "").strip() or None, "session": session,
        "user": user, "turn": turn.number, "question": turn.question,
        "answer": a.text if a else None, "error": turn.error,
        "citations": [c.to_dict() for c in a.citations] if a else [],
        "sources": [{"rank": h.rank, "doc_id": h.chunk.doc_id, "case_number": h.chunk.case_number,
                     "chunk_id": h.chunk.chunk_id, "paragraphs": list(h.chunk.paragraphs)} for h in a.sources]
        if a else [],
        "filters": a.filters_applied.to_dict() if a else turn.filters.to_dict(),
        "inferred_filters": list(a.inferred_filters) if a else [],
        "abstained": a.abstained if a else None,
        "backend": a.backend if a else None, "model": a.model if a else None,
        "prompt_version": a.prompt_version if a else None,
        "settings": dict(settings),
    }
