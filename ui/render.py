"""What the chat shows, as pure functions: Answer -> chat Markdown with linked citation markers, source cards
(HTML from ui/templates/), the conversation export (Markdown) and the sidebar's index status; Turn, one question
and what came back.

No Gradio in here, so all of it is unit-tested without a browser. Everything that comes from a decision or a
person is shown as TEXT: the templates escape it in HTML, escape_markdown in Markdown, so a decision containing
<script> or <img onerror=...> is displayed, never run.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from core.casenum import case_number_slug
from core.text import category_path
from core.types import Answer, Citation, Filters, Hit
from rag.browse import BrowseQuery
from rag.cite import UNCITED_MARK
from ui.format import (
    card_id,
    describe_filters,
    escape_export,
    escape_markdown,
    format_date,
    passage_id,
    safe_url,
)
from ui.templating import render
from ui.viewer import browse_href

SNIPPET_CHARS = 420


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


def card_view(card: SourceCard, turn: int) -> dict[str, Any]:
    """What source_card.html shows of a card: ids, the address that opens it, metadata and quotes."""
    ref = case_number_slug(card.case_number) if card.case_number else card.doc_id
    paras = ",".join(str(n) for p in card.passages for n in p.paragraphs if n) if card.cited else ""
    quotes = [{"id": passage_id(turn, card.label, p.paragraphs[0]) if card.cited and len(p.paragraphs) == 1 else None,
               "para": p.paragraphs[0] if p.paragraphs else None, "label": p.label, "text": p.text}
              for p in card.passages]
    return {"id": card_id(turn, card.label), "cited": card.cited, "doc_id": card.doc_id, "label": card.label,
            "case_number": card.case_number, "outcome": card.outcome, "ref": ref, "paras": paras,
            "href": "?" + urlencode({"case": ref, **({"para": paras} if paras else {})}),
            "meta": [x for x in (card.authority or "Council not stated", card.category,
                                 format_date(card.decision_date)) if x],
            "quotes": quotes, "url": safe_url(card.url)}


def answer_sources_html(answer: Answer | None, turn: int, question: str, active: bool = True,
                        error: str | None = None) -> str:
    """The sources section for one answer: its filters, cited decision cards, 'Also retrieved' collapsed."""
    values: dict[str, Any] = {"turn": turn, "question": _short(question, 160), "active": active,
                              "answered": answer is not None, "error": error}
    if answer is not None:
        cited, retrieved = source_cards(answer)
        values.update(filters=describe_filters(answer.filters_applied, answer.inferred_filters),
                      notes=answer.notes, cited=[card_view(c, turn) for c in cited],
                      retrieved=[card_view(c, turn) for c in retrieved])
    return render("sources_turn.html", **values)


def sources_panel_html(sections: Sequence[str]) -> str:
    """The whole sources panel: one section per answer (the last one shown; citation links show others)."""
    return render("sources_panel.html", sections=sections)


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
    it used with a link that opens them in the decisions browser."""
    body = link_markers(answer.text, citation_targets(answer, turn))
    body = link_case_numbers(body, decision_refs(answer))
    body = body.replace(UNCITED_MARK, "_(no citation)_")
    wording = describe_filters(answer.filters_applied, answer.inferred_filters)
    if wording:
        href = browse_href(BrowseQuery(filters=answer.filters_applied))
        body += f"\n\n_Filters used: {escape_markdown(wording)}_ — [every decision they select]({href})"
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
