"""Parse a published decision (plain text, saved HTML page, or Markdown) into a typed Decision.

Every format is first turned into a stream of classified lines; one structural parser then finds the
header fields, the summary, the sections and the numbered paragraphs. Paragraphs are renumbered
continuously through the decision, as the published page numbers them (the text export restarts its
list numbering in every section).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from core.casenum import CASE_NUMBER_RE, case_number_slug, normalise_case_number
from core.errors import ParseError
from core.types import Decision, Paragraph, Remedy, Section

log = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = {".txt": "text", ".text": "text", ".html": "html", ".htm": "html", ".md": "markdown",
                      ".markdown": "markdown"}
FICTIONAL_MARK = "FICTIONAL — evaluation only"
# Benchmark files from bench/synth.py: treated exactly like FICTIONAL, so they never enter the default index.
SYNTHETIC_MARK = "SYNTHETIC — benchmark only"
_MARK_KEYS = {"fictional — evaluation only", "synthetic — benchmark only"}

LineKind = Literal["heading", "numbered", "bullet", "text"]


@dataclass(slots=True)
class Line:
    """One classified line of a decision, whatever format it came from."""

    kind: LineKind
    text: str
    indent: int = 0
    marker: str = ""
    level: int = 0  # explicit heading level from HTML/Markdown (1 = title), 0 = not explicit


# Section headings the Ombudsman uses (compared after normalise_key).
KNOWN_SECTIONS = {
    "the complaint", "complaint", "the complaints", "what the complaint is about",
    "the ombudsman's role and powers", "the ombudsmans role and powers", "our role and powers",
    "the ombudsman's role", "legal and administrative background", "relevant law and guidance",
    "law and guidance", "relevant legislation and guidance", "background",
    "how i considered this complaint", "how we considered this complaint", "how i considered this",
    "what i found", "what we found", "my assessment", "assessment", "our assessment", "analysis",
    "findings", "my findings", "conclusions", "conclusion", "key facts", "what happened",
    "agreed action", "agreed actions", "recommended action", "recommended actions", "recommendations",
    "action", "actions", "remedy", "final decision", "decision", "my decision", "our decision",
    "parts of the complaint that i did not investigate", "parts of the complaint i did not investigate",
    "parts of the complaint that we did not investigate", "investigator's final decision",
}
ACTION_SECTIONS = {"agreed action", "agreed actions", "recommended action", "recommended actions",
                   "recommendations", "action", "actions", "remedy"}

FURNITURE = {
    "back to top", "print this page", "lgo logogram", "lgsco logogram", "skip to main content",
    "share this page", "investigator's decision on behalf of the ombudsman",
    "decision on behalf of the ombudsman", "the ombudsman's final decision", "the ombudsman's final decision:",
    "local government and social care ombudsman", "menu", "search", "print", "decision search",
    "back to decisions", "search decisions",
}
COOKIE_PATTERNS = [re.compile(p) for p in (
    r"^(review your )?privacy settings$", r"^(view )?(required|analytical|functional|marketing|essential) cookies$",
    r"^these cookies\b", r"google analytics", r"^we recommend you set these", r"^(accept|reject)( all)?( cookies)?$",
    r"^we use cookies", r"^this (web)?site uses cookies", r"\bcookie (settings|preferences|policy|banner)\b",
    r"^(save|confirm) (and close|preferences|my choices|settings)$", r"^cookies? on this (site|website)",
)]

_NUMBERED = re.compile(r"^(\d{1,3})[.)]\s+(\S.*)$")
_BULLET = re.compile(r"^([-\u2022\u2013\u2014*\u00b7\u25aa\u25e6\u2023\u2043])\s+(\S.*)$")
_TITLE = re.compile(rf"^(?P<authority>.+?)\s*[(\[]\s*(?P<case>{CASE_NUMBER_RE.pattern})\s*[)\]]\s*$")
_FIELD = re.compile(r"^(?P<key>category|decision date|date of decision|decision|outcome|case (?:number|reference)|"
                    r"reference|council|authority|organisation|url|link)\s*[:\-–]\s*(?P<value>.*)$", re.I)
_SUMMARY = re.compile(r"^summary\s*:\s*(?P<text>.*)$", re.I)
_URL = re.compile(r"^https?://\S+$")
_MONEY = re.compile(r"£\s?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{2}))?")
_TRAILING_PUNCT = (".", ",", ";", ":", "?", "!", "”", '"')


def normalise_key(text: str) -> str:
    """Lower-case, straight apostrophes, single spaces, no trailing colon: for comparing headings."""
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u00a0", " ")
    text = re.sub(r"\s+", " ", text).strip().rstrip(":").strip()
    return text.lower()


def clean_text(text: str) -> str:
    """Unicode NFC, non-breaking and odd spaces to plain spaces, runs of spaces collapsed."""
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\u00a0", " ").replace("\u200b", "").replace("\ufeff", "")
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
    return re.sub(r"[ \t]+", " ", text).strip()


def is_furniture(text: str) -> bool:
    """Page furniture and cookie-banner lines that are not part of a decision."""
    key = normalise_key(text)
    if key in FURNITURE or not key:
        return True
    return any(p.search(key) for p in COOKIE_PATTERNS)


# ---------------------------------------------------------------------------------------------
# Format readers: bytes/text -> [Line]
# ---------------------------------------------------------------------------------------------

def _classify(raw: str) -> Line | None:
    """Classify one line of plain text or Markdown body."""
    expanded = raw.replace("\t", "    ").rstrip()
    if not expanded.strip():
        return None
    indent = len(expanded) - len(expanded.lstrip())
    body = clean_text(expanded)
    if m := _NUMBERED.match(body):
        return Line("numbered", m.group(2), indent, m.group(1))
    if m := _BULLET.match(body):
        return Line("bullet", m.group(2), indent, m.group(1))
    return Line("text", body, indent)


def lines_from_text(text: str) -> list[Line]:
    """Plain text as published: one line per paragraph, list markers kept as markers."""
    return [line for raw in text.splitlines() if (line := _classify(raw)) is not None]


_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_MD_INLINE = [(re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"), (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),
              (re.compile(r"(\*\*|__)(.+?)\1"), r"\2"), (re.compile(r"(?<![\w*])[*_](?!\s)(.+?)(?<!\s)[*_](?![\w*])"), r"\1"),
              (re.compile(r"`([^`]*)`"), r"\1")]


def _strip_markdown(text: str) -> str:
    for pattern, repl in _MD_INLINE:
        text = pattern.sub(repl, text)
    return text


def lines_from_markdown(text: str) -> list[Line]:
    """Markdown: '#' headings are explicit; lists and paragraphs classified like plain text."""
    out: list[Line] = []
    in_code = False
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("```"):
            in_code = not in_code
            continue
        if in_code or re.fullmatch(r"[-*_]{3,}", stripped or "x") or stripped.startswith("<!--"):
            continue
        if m := _MD_HEADING.match(stripped):
            heading = clean_text(_strip_markdown(m.group(2)))
            if heading:
                out.append(Line("heading", heading, 0, level=len(m.group(1))))
            continue
        raw = re.sub(r"^(\s*)>\s?", r"\1", raw)  # block quotes become plain text
        line = _classify(_strip_markdown(raw))
        if line is not None:
            out.append(line)
    return out


_BLOCK_TAGS = {"p", "div", "section", "article", "main", "li", "ol", "ul", "h1", "h2", "h3", "h4", "h5", "h6",
               "blockquote", "dl", "dt", "dd", "table", "tr", "header", "aside", "figure", "pre", "body", "html",
               "span_block"}
_DROP_TAGS = ["script", "style", "noscript", "nav", "footer", "form", "button", "svg", "iframe", "template",
              "input", "select", "img", "link", "meta", "head"]
_DROP_ATTR = re.compile(r"cookie|consent|skip-?link|breadcrumb|social-share|share-this|navbar|site-nav|main-nav|"
                        r"site-footer|footer|print-this", re.I)


def lines_from_html(html: str) -> list[Line]:
    """A saved decision page: headings explicit, <ol> items numbered, furniture elements dropped."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "lxml")
    for tag in soup(_DROP_TAGS):
        tag.decompose()
    for tag in soup.find_all(True):
        if getattr(tag, "decomposed", False):
            continue
        attrs = " ".join([tag.get("id") or "", " ".join(tag.get("class") or []), tag.get("role") or ""])
        if attrs.strip() and _DROP_ATTR.search(attrs) and tag.name not in ("html", "body", "main", "article"):
            tag.decompose()
    lines = _HtmlLines()
    lines.walk(soup.body or soup, [])
    return lines.out


def _one_line(text: str) -> str:
    """Newlines inside an HTML element are layout, not structure: a heading, list item, definition or table row is
    one line (else a furniture line hidden inside one survived as paragraph text)."""
    return re.sub(r"\s+", " ", text).strip()


def _text_of(tag: Any) -> str:
    return clean_text(tag.get_text(" ", strip=True))


class _HtmlLines:
    """Walks an HTML tree collecting Lines; text outside block elements is gathered until the next block."""

    def __init__(self) -> None:
        self.out: list[Line] = []

    def walk(self, node: Any, list_stack: list[str]) -> None:
        from bs4 import NavigableString, Tag

        loose: list[str] = []
        for child in node.children:
            if isinstance(child, NavigableString):
                if child.__class__.__name__ not in ("Comment", "Doctype", "Declaration", "ProcessingInstruction"):
                    loose.append(str(child))
            elif not isinstance(child, Tag):
                continue
            elif child.name == "br":
                self._flush(loose)
            elif child.name not in _BLOCK_TAGS:
                loose.append(child.get_text(" ", strip=False))
            else:
                self._flush(loose)
                self._block(child, list_stack)
        self._flush(loose)

    def _flush(self, loose: list[str]) -> None:
        text = clean_text(" ".join(loose))
        loose.clear()
        if text:
            self.out.extend(lines_from_text(text))

    def _block(self, child: Any, list_stack: list[str]) -> None:
        from bs4 import Tag

        name = child.name
        if name in ("h1", "h2", "h3", "h4", "h5", "h6"):
            if text := _one_line(_text_of(child)):
                self.out.append(Line("heading", text, 0, level=int(name[1])))
        elif name in ("ol", "ul"):
            self.walk(child, list_stack + [name])
        elif name == "li":
            self._list_item(child, list_stack)
        elif name == "dl":
            key = None
            for item in child.find_all(["dt", "dd"]):
                if item.name == "dt":
                    key = _one_line(_text_of(item))
                elif key:
                    self.out.append(Line("text", f"{key.rstrip(':')} : {_one_line(_text_of(item))}"))
        elif name == "tr":
            text = " | ".join(_one_line(_text_of(c)) for c in child.find_all(["td", "th"]))
            if text.strip(" |"):
                self.out.append(Line("text", text))
        elif any(isinstance(c, Tag) and c.name in _BLOCK_TAGS for c in child.children):
            self.walk(child, list_stack)
        elif text := _text_of(child):
            self.out.extend(lines_from_text(text))

    def _list_item(self, child: Any, list_stack: list[str]) -> None:
        from bs4 import Tag

        kind: LineKind = "numbered" if list_stack and list_stack[-1] == "ol" else "bullet"
        depth = max(0, len(list_stack) - 1)
        direct = [c for c in child.children if not (isinstance(c, Tag) and c.name in ("ol", "ul"))]
        text = _one_line(clean_text(" ".join(
            c.get_text(" ", strip=True) if isinstance(c, Tag) else str(c) for c in direct)))
        if text:
            self.out.append(Line(kind, text, 4 * depth if kind == "bullet" else 2 + 4 * depth,
                                 "1" if kind == "numbered" else "\u2022"))
        for sub in child.find_all(["ol", "ul"], recursive=False):
            self.walk(sub, list_stack + [sub.name])


# ---------------------------------------------------------------------------------------------
# The structural parser: [Line] -> Decision
# ---------------------------------------------------------------------------------------------

@dataclass(slots=True)
class _Header:
    authority: str | None = None
    case_number: str | None = None
    category: str | None = None
    subcategory: str | None = None
    outcome: str | None = None
    decision_date: dt.date | None = None
    url: str | None = None
    summary_parts: list[str] = field(default_factory=list)


_DATE_FORMATS = ("%d %b %Y", "%d %B %Y", "%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%d %b %y", "%d.%m.%Y", "%B %d, %Y",
                 "%b %d, %Y")


def parse_date(text: str) -> dt.date | None:
    """Dates as the Ombudsman writes them ("23 Oct 2023", "11 March 2021", ISO, dd/mm/yyyy)."""
    value = re.sub(r"(\d)(st|nd|rd|th)\b", r"\1", clean_text(text)).replace("Sept ", "Sep ").strip(" .")
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    return None


def _split_category(value: str) -> tuple[str | None, str | None]:
    parts = [p.strip() for p in re.split(r"\s*(?:>|›|»|/)\s*", value, maxsplit=1) if p.strip()]
    if not parts:
        return None, None
    return parts[0], (parts[1] if len(parts) > 1 else None)


def _is_heading_like(line: Line) -> bool:
    """A short unmarked line that reads like a sub-heading ("Miss X's corporate complaint")."""
    if line.kind != "text" or line.indent > 0:
        return False
    text = line.text
    words = text.split()
    if not words or len(words) > 10 or len(text) > 90:
        return False
    if text.endswith(_TRAILING_PUNCT) or text.startswith(("(", "“", '"', "‘", "'")):
        return False
    return text[0].isupper()


def _read_header(lines: list[Line]) -> tuple[_Header, int, bool]:
    """Header fields and summary from the top of the decision; returns (header, body start, fictional)."""
    reader = _HeaderReader()
    i = 0
    while i < len(lines) and reader.take(lines[i]):
        i += 1
    return reader.header, i, reader.fictional


class _HeaderReader:
    """Reads the top of a decision line by line until its body starts."""

    def __init__(self) -> None:
        self.header = _Header()
        self.fictional = False
        self.in_summary = False

    def take(self, line: Line) -> bool:
        """Read one line into the header; False when the line starts the body."""
        text, header = line.text, self.header
        key = normalise_key(text)
        if key in _MARK_KEYS:
            self.fictional = True
            return True
        if line.kind == "heading" or key in KNOWN_SECTIONS:
            return self._heading(line, key)
        if line.kind != "text" and not self.in_summary and not _FIELD.match(text):
            return False  # a field written as a list item ("- Category: ...") is still a field
        if key in FURNITURE:
            return True
        if header.case_number is None and (m := _TITLE.match(text)):
            self._title(m)
            return True
        if m := _SUMMARY.match(text):
            self.in_summary = True
            if m.group("text").strip():
                header.summary_parts.append(m.group("text").strip())
            return True
        if (m := _FIELD.match(text)) and not self.in_summary:
            self._field(m.group("key").lower(), m.group("value").strip())
            return True
        if _URL.match(text) and not self.in_summary:
            header.url = text
            return True
        if self.in_summary:
            header.summary_parts.append(text)
            return True
        return False

    def _heading(self, line: Line, key: str) -> bool:
        if line.kind == "heading" and line.level == 1 and (m := _TITLE.match(line.text)):
            self._title(m)
            return True
        if key not in KNOWN_SECTIONS and line.level in (0, 1) and not self.in_summary and self.header.authority is None:
            # An explicit title without a case number: take it as the authority name.
            if line.level == 1 and re.search(r"council|ombudsman|ltd|limited|care|trust|authority", key):
                self.header.authority = line.text
            return True
        return False

    def _title(self, m: re.Match[str]) -> None:
        self.header.authority = clean_text(m.group("authority")).strip(" -–:,")
        self.header.case_number = normalise_case_number(m.group("case"))

    def _field(self, key: str, value: str) -> None:
        header = self.header
        if key == "category":
            header.category, header.subcategory = _split_category(value)
        elif key in ("decision date", "date of decision"):
            header.decision_date = parse_date(value)
        elif key in ("decision", "outcome"):
            header.outcome = value or None
        elif key in ("case number", "case reference", "reference"):
            header.case_number = normalise_case_number(value) or header.case_number
        elif key in ("council", "authority", "organisation"):
            header.authority = value or header.authority
        elif key in ("url", "link") and _URL.match(value):
            header.url = value


def _build_sections(lines: list[Line]) -> list[Section]:
    """Group body lines into sections of continuously numbered paragraphs."""
    builder = _SectionBuilder(lines)
    for idx, line in enumerate(lines):
        builder.take(line, is_last=idx + 1 >= len(lines))
    out: list[Section] = []
    number = 0
    for name, paras, subs in builder.sections:
        built = []
        for parts, sub in zip(paras, subs):
            number += 1
            built.append(Paragraph(number, "\n".join(parts), sub))
        if built:
            out.append(Section(clean_text(name), tuple(built)))
    return out


class _SectionBuilder:
    """Sections as (name, paragraphs as lists of lines, each paragraph's subheading), built line by line.

    When the body numbers its paragraphs, only numbered lines start a paragraph; a body without numbers but with
    "- " lines at the margin numbers those; otherwise every line is a paragraph."""

    def __init__(self, lines: list[Line]) -> None:
        self.marked = any(l.kind == "numbered" for l in lines)
        self.dash_paragraphs = not self.marked and any(
            l.kind == "bullet" and l.indent == 0 and l.marker == "-" for l in lines)
        self.sections: list[tuple[str, list[list[str]], list[str | None]]] = []
        self.current: tuple[str, list[list[str]], list[str | None]] | None = None
        self.subheading: str | None = None
        self.open_para = False

    def take(self, line: Line, is_last: bool) -> None:
        key = normalise_key(line.text)
        if line.kind == "heading":
            if line.level >= 3 and key not in KNOWN_SECTIONS and self.current is not None:
                self.subheading, self.open_para = line.text, False
            else:
                self.start_section(line.text)
        elif line.kind == "text" and line.indent == 0 and key in KNOWN_SECTIONS:
            self.start_section(line.text.rstrip(":"))
        elif line.kind == "text" and _is_heading_like(line) and not is_last:
            if self.current is None:
                self.start_section(line.text)
            else:
                self.subheading, self.open_para = line.text, False
        elif line.kind == "numbered":
            self.new_paragraph(line.text)
        elif line.kind == "bullet":
            if self.dash_paragraphs and line.indent == 0 and line.marker == "-":
                self.new_paragraph(line.text)
            else:
                self.continue_paragraph(f"\u2022 {line.text}")
        elif self.marked or self.dash_paragraphs:
            self.continue_paragraph(line.text)
        else:
            self.new_paragraph(line.text)

    def start_section(self, name: str) -> None:
        self.current = (name, [], [])
        self.sections.append(self.current)
        self.subheading = None
        self.open_para = False

    def new_paragraph(self, text: str) -> None:
        if self.current is None:
            self.start_section("Decision")
        assert self.current is not None
        self.current[1].append([text])
        self.current[2].append(self.subheading)
        self.open_para = True

    def continue_paragraph(self, text: str) -> None:
        if self.current is None or not self.open_para or not self.current[1]:
            self.new_paragraph(text)
        else:
            self.current[1][-1].append(text)


def _remedies(sections: list[Section], summary: str | None) -> list[Remedy]:
    """Payments (with amounts) and agreed actions, where the decision states them."""
    remedies: list[Remedy] = []
    action_paras = [p for s in sections if normalise_key(s.name) in ACTION_SECTIONS for p in s.paragraphs]
    for p in action_paras:
        remedies.append(Remedy("action", p.text, None, p.number))
    money_sources: list[tuple[str, int | None]] = [(p.text, p.number) for p in action_paras]
    if not money_sources:
        finals = [p for s in sections if normalise_key(s.name) in {"final decision", "decision", "my decision"}
                  for p in s.paragraphs]
        money_sources = [(p.text, p.number) for p in finals] + ([(summary, 0)] if summary else [])
    seen: set[float] = set()
    for text, number in money_sources:
        for sentence in re.split(r"(?<=[.;])\s+", text):
            if not re.search(r"\b(pay|paid|payment|refund|reimburse|compensat|award|waive|credit)", sentence, re.I):
                continue
            for m in _MONEY.finditer(sentence):
                amount = float(m.group(1).replace(",", "") + (f".{m.group(2)}" if m.group(2) else ""))
                if amount in seen:
                    continue
                seen.add(amount)
                remedies.append(Remedy("payment", sentence.strip(), amount, number))
    return remedies


def content_hash_of(fields: dict[str, object]) -> str:
    """sha256 of the decision's content (not its file name), so re-ingesting is harmless."""
    blob = json.dumps(fields, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _doc_id_from_path(path: Path) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem).strip("_.")
    return stem or "decision"


def _drop_preamble(lines: list[Line]) -> list[Line]:
    """Drop what stands above the title line "Council (NN NNN NNN)" (banners, menus in any wording).

    The header reader stops at the first line it does not recognise, so one unknown banner line above the
    title would otherwise lose every header field. Header fields and the FICTIONAL mark above it are kept.
    """
    for i, line in enumerate(lines):
        if normalise_key(line.text) in KNOWN_SECTIONS:
            return lines
        if _TITLE.match(line.text):
            keep = [l for l in lines[:i] if _FIELD.match(l.text) or _SUMMARY.match(l.text)
                    or normalise_key(l.text) in _MARK_KEYS]
            return keep + lines[i:]
    return lines


def parse_lines(lines: list[Line], source_path: str | Path) -> Decision:
    """Build a Decision from classified lines. Raises ParseError when it is not a decision."""
    path = Path(source_path)
    # A list item that is nothing but a furniture phrase ("<li>Back to top</li>") is furniture too; the
    # cookie patterns stay for unmarked lines only, as they also match sentences about cookie policies.
    kept = _drop_preamble([l for l in lines if not (l.kind in ("text", "heading") and is_furniture(l.text)
                                                    or normalise_key(l.text) in FURNITURE)])
    header, start, fictional = _read_header(kept)
    body = kept[start:]
    sections = _build_sections(body)
    # Count only headings present in the text: body before any heading goes into a section the parser
    # itself names "Decision", which must not make any prose look like a decision.
    known = [l for l in body if (l.kind == "heading" or (l.kind == "text" and l.indent == 0))
             and normalise_key(l.text) in KNOWN_SECTIONS]
    words = sum(len(p.text.split()) for s in sections for p in s.paragraphs)
    if not known and header.case_number is None:
        raise ParseError(
            "no recognisable decision text: no header with a case number and no section headings such as "
            "'The complaint' or 'Final decision'"
        )
    if words < 20:
        raise ParseError(f"no recognisable decision text: only {words} words of body under the headings")
    summary = clean_text(" ".join(header.summary_parts)) or None
    warnings: list[str] = []
    if header.case_number is None:
        warnings.append("no case number found: the decision is identified by its file name")
    if header.decision_date is None:
        warnings.append("no decision date found")
    if header.authority is None:
        warnings.append("no council or care provider named in a header")
    content = {
        "case_number": header.case_number, "authority": header.authority, "category": header.category,
        "subcategory": header.subcategory, "outcome": header.outcome,
        "decision_date": header.decision_date.isoformat() if header.decision_date else None,
        "summary": summary, "sections": [[s.name, [[p.number, p.text, p.subheading] for p in s.paragraphs]]
                                         for s in sections],
    }
    doc_id = case_number_slug(header.case_number) if header.case_number else _doc_id_from_path(path)
    return Decision(
        doc_id=doc_id,
        case_number=header.case_number,
        authority=header.authority,
        category=header.category,
        subcategory=header.subcategory,
        outcome=header.outcome,
        decision_date=header.decision_date,
        summary=summary,
        sections=tuple(sections),
        remedies=tuple(_remedies(sections, summary)),
        url=header.url,
        source_path=str(path),
        content_hash=content_hash_of(content),
        fictional=fictional,
        warnings=tuple(warnings),
    )


def detect_format(path: Path, text: str) -> str:
    """'html', 'markdown' or 'text', from the suffix, or the content for unknown suffixes."""
    fmt = SUPPORTED_SUFFIXES.get(path.suffix.lower())
    head = text.lstrip()[:500].lower()
    if head.startswith(("<!doctype html", "<html")) or (fmt != "markdown" and "<body" in head):
        return "html"
    return fmt or "text"


def parse_text(text: str, source_path: str | Path, fmt: str | None = None) -> Decision:
    """Parse decision text already decoded; fmt is 'text', 'html' or 'markdown' (guessed when None)."""
    path = Path(source_path)
    fmt = fmt or detect_format(path, text)
    if fmt == "html":
        lines = lines_from_html(text)
    elif fmt == "markdown":
        lines = lines_from_markdown(text)
    else:
        lines = lines_from_text(text)
    return parse_lines(lines, path)


def decode_bytes(data: bytes) -> str:
    """UTF-8 (with or without BOM), falling back to cp1252; ParseError for binary data."""
    if not data.strip():
        raise ParseError("empty file")
    if b"\x00" in data[:8192]:
        raise ParseError("binary file (contains NUL bytes), not decision text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        raise ParseError("not text: neither UTF-8 nor Windows-1252 (cp1252)") from None
    log.info("decoded as cp1252 (not valid UTF-8)")
    return text


def _size(n: int) -> str:
    """Bytes for people: "5 MB", "2.9 KB" (a small limit must not read as "0 MB")."""
    if n >= 1_048_576:
        return f"{n / 1_048_576:.1f}".removesuffix(".0") + " MB"
    return f"{n / 1024:.1f}".removesuffix(".0") + " KB"


def parse_file(path: str | Path, max_bytes: int = 5 * 1024 * 1024) -> Decision:
    """Read and parse one decision file. Raises ParseError with the reason when it cannot."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ParseError(f"cannot read file: {exc.strerror or exc}") from None
    if size > max_bytes:
        raise ParseError(f"file is {_size(size)}, over the {_size(max_bytes)} limit")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ParseError(f"cannot read file: {exc.strerror or exc}") from None
    text = decode_bytes(data)
    return parse_text(text, path)
