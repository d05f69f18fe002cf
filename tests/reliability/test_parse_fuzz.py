"""The parser fuzzed with hypothesis: whatever it is given, it returns a Decision or raises ParseError with a reason.

Inputs: random text, truncated sample decisions, samples with odd lines spliced in (RTL, combining marks, emoji,
NUL and other control characters, huge lines, HTML and Markdown fragments), and random bytes through
parse_file. On success the Decision keeps its invariants: paragraphs numbered 1, 2, 3 ... in page order, no
empty paragraph, no page furniture, no control characters, a file-safe id.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import ParseError
from core.types import Decision
from ingest.parse import FURNITURE, normalise_key, parse_file, parse_text

try:
    from conftest import SAMPLE_DIR
except ImportError:
    from tests.conftest import SAMPLE_DIR

SAMPLES = [p.read_text(encoding="utf-8") for p in sorted(SAMPLE_DIR.glob("*.txt"))]
FORMATS = st.sampled_from([None, "text", "markdown", "html"])
# Fixed examples in `make test` (reproducible); FUZZ_EXAMPLES=5000 searches harder with fresh random ones.
_EXPLORE = int(os.environ.get("FUZZ_EXAMPLES", "0"))
FUZZ = settings(max_examples=_EXPLORE or 150, deadline=None, derandomize=not _EXPLORE, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Characters people's files really contain when something has gone wrong, and some that merely look odd.
ODD = st.sampled_from([
    "\u202e", "\u202b", "\u200f", "\u061c",  # RTL override / embedding / marks
    "\u0301", "\u0308", "\u20dd", "e\u0301\u0301\u0301",  # combining marks, stacked
    "😀", "👩‍👩‍👧", "🏳️‍🌈", "\U0001f9ea",  # emoji incl. ZWJ sequences
    "\x00", "\x07", "\x0b", "\x0c", "\x1b[31m", "\x7f", "\x85", "\u2028", "\u2029",  # control / separators
    "\ufeff", "\u200b", "\u00a0", "\u3000", "\ufffd", "\U0010ffff",
    "العربية", "עברית", "中文", "Cymraeg: ŵ ŷ", "Zażółć gęślą jaźń",
])
HTML_BITS = st.sampled_from([
    "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "<b>bold", "</div></div>", "<ol><li>1</li>",
    "<!-- comment", "<![CDATA[x]]>", "&amp;&lt;&#0;&#x110000;&bogus;", "<h1>", "<h3>Heading</h3>",
    "<table><tr><td>a</td>", "<dl><dt>Category</dt><dd>x</dd></dl>", "<br/><br>", "<li>", "<p>", "<html><body>",
])
MD_BITS = st.sampled_from([
    "# ", "## The complaint", "###", "```", "```python", "---", "***", "> quote", "- ", "* * *", "1. ", "999. x",
    "[link](http://x)", "![img](x.png)", "**bold", "__x__", "`code", "| a | b |", "<!-- x -->", "#" * 7 + " deep",
])
FURNITURE_LINES = st.sampled_from(sorted(FURNITURE) + ["Back to top", "Print this page", "We use cookies on this site",
                                                      "Accept all cookies", "Review your privacy settings"])
ODD_LINE = st.one_of(
    st.lists(st.one_of(ODD, HTML_BITS, MD_BITS, st.text(max_size=20)), max_size=8).map("".join),
    st.builds(lambda c, n: c * n, st.sampled_from(["x", "word ", "£", "\u0301", "😀", "-", "1. "]),
              st.integers(1000, 60_000)),  # huge lines
    FURNITURE_LINES,
    HTML_BITS, MD_BITS,
)


def check(decision: Decision) -> None:
    """The invariants any parsed decision keeps."""
    numbers = [p.number for p in decision.paragraphs]
    assert numbers == list(range(1, len(numbers) + 1)), numbers
    furniture = {normalise_key(f) for f in FURNITURE}
    for p in decision.paragraphs:
        assert p.text.strip(), f"empty paragraph {p.number}"
        for line in p.text.split("\n"):
            assert normalise_key(line) not in furniture or not line.strip(), f"furniture kept: {line!r}"
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", p.text), f"control character in paragraph {p.number}"
    for s in decision.sections:
        assert s.paragraphs and s.name.strip()
    assert re.fullmatch(r"[A-Za-z0-9_.-]+", decision.doc_id), decision.doc_id
    assert decision.case_number is None or re.fullmatch(r"\d\d \d{3} \d{3}", decision.case_number)
    assert decision.summary is None or decision.summary.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", decision.content_hash)


def parse_or_reason(text: str, fmt: str | None, name: str = "fuzz.txt") -> Decision | None:
    """Parse; a ParseError must say why. Any other exception fails the test."""
    try:
        decision = parse_text(text, name, fmt)
    except ParseError as exc:
        assert str(exc).strip(), "ParseError without a reason"
        return None
    check(decision)
    return decision


@FUZZ
@given(text=st.text(st.characters(exclude_categories=("Cs",)), max_size=3000), fmt=FORMATS)
def test_random_text(text, fmt):
    parse_or_reason(text, fmt)


@FUZZ
@given(sample=st.sampled_from(SAMPLES), cut=st.floats(0, 1), fmt=FORMATS)
def test_truncated_real_decisions(sample, cut, fmt):
    parse_or_reason(sample[: int(len(sample) * cut)], fmt)


@FUZZ
@given(sample=st.sampled_from(SAMPLES), data=st.data(), fmt=FORMATS)
def test_real_decisions_with_odd_lines_spliced_in(sample, data, fmt):
    lines = sample.splitlines()
    for _ in range(data.draw(st.integers(1, 6), label="insertions")):
        at = data.draw(st.integers(0, len(lines)), label="at")
        if data.draw(st.booleans(), label="inside a line") and at < len(lines):
            line = lines[at]
            cut = data.draw(st.integers(0, len(line)), label="cut")
            lines[at] = line[:cut] + data.draw(ODD_LINE, label="bit") + line[cut:]
        else:
            lines.insert(at, data.draw(ODD_LINE, label="line"))
    newline = data.draw(st.sampled_from(["\n", "\r\n", "\r", "\u2028"]), label="newline")
    parse_or_reason(newline.join(lines), fmt)


@FUZZ
@given(sample=st.sampled_from(SAMPLES), data=st.data())
def test_real_decisions_as_html_and_markdown_fragments(sample, data):
    """A decision pasted into an HTML page or a Markdown file, with broken markup around it."""
    lines = sample.splitlines()
    wrap = data.draw(st.sampled_from(["html", "markdown"]), label="format")
    bits = HTML_BITS if wrap == "html" else MD_BITS
    out = []
    for line in lines:
        if data.draw(st.integers(0, 3), label="decorate") == 0:
            line = data.draw(bits, label="before") + line + data.draw(bits, label="after")
        out.append(line)
    text = "\n".join(out)
    if wrap == "html":
        text = "<html><body>" + text.replace("\n", "<br>\n")
    parse_or_reason(text, wrap)


@FUZZ
@given(data=st.one_of(
    st.binary(max_size=4000),
    st.builds(lambda s, cut, enc: s[: int(len(s) * cut)].encode(enc, errors="replace"),
              st.sampled_from(SAMPLES), st.floats(0, 1), st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "utf-16",
                                                                          "latin-1"])),
    st.builds(lambda s, junk, at: s.encode()[:at] + junk + s.encode()[at:],
              st.sampled_from(SAMPLES), st.binary(min_size=1, max_size=50), st.integers(0, 3000)),
), suffix=st.sampled_from([".txt", ".md", ".html", ".htm", ".text"]))
def test_parse_file_on_arbitrary_bytes(data, suffix, tmp_path_factory):
    folder = Path(tempfile.mkdtemp(dir=tmp_path_factory.getbasetemp()))
    path = folder / f"decision{suffix}"
    path.write_bytes(data)
    try:
        decision = parse_file(path)
    except ParseError as exc:
        assert str(exc).strip()
        return
    check(decision)


@pytest.mark.parametrize("sample", range(len(SAMPLES)))
def test_every_sample_keeps_the_invariants_in_every_format(sample):
    """The real decisions parse in all three readers (the fuzzers above start from them)."""
    text = SAMPLES[sample]
    d = parse_or_reason(text, "text")
    assert d is not None and len(d.paragraphs) > 3
    md = parse_or_reason(text, "markdown")
    assert md is not None and [p.number for p in md.paragraphs] == [p.number for p in d.paragraphs]
