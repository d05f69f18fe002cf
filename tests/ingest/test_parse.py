"""Parser: the exact metadata of the five samples, every input format, and bad input."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from core.casenum import find_case_numbers, normalise_case_number
from core.errors import ParseError
from ingest.parse import parse_file, parse_text

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_DIR = ROOT / "data" / "sample"
FORMATS = ROOT / "tests" / "fixtures" / "formats"
BAD = ROOT / "tests" / "fixtures" / "bad"

ROLE = "The Ombudsman\u2019s role and powers"

# What a reader of each published decision sees: header fields, the summary's opening, the sections in
# order and the paragraph numbers in each (numbered continuously through the decision, as on the page).
SAMPLES = {
    "000_10e5940e8b3fa3d0.txt": dict(
        doc_id="23-009-429", case_number="23 009 429", authority="Staffordshire County Council",
        category="Children's care services", subcategory="Other", outcome="Closed after initial enquiries",
        decision_date=dt.date(2023, 10, 23),
        summary_start="We will not investigate Mr X\u2019s complaint about the accuracy of a children services",
        sections=[("The complaint", [1]), (ROLE, [2]), ("How I considered this complaint", [3, 4]),
                  ("My assessment", [5, 6, 7, 8]), ("Final decision", [9])],
    ),
    "001_10632a5333b8eb24.txt": dict(
        doc_id="20-011-198", case_number="20 011 198", authority="Hampshire County Council",
        category="Children's care services", subcategory="Other", outcome="Closed after initial enquiries",
        decision_date=dt.date(2021, 3, 11),
        summary_start="We will not investigate Mr X\u2019s complaint about data sharing",
        sections=[("The complaint", [1]), (ROLE, [2, 3]), ("How I considered this complaint", [4]),
                  ("What I found", [5, 6, 7]), ("Analysis", [8, 9]), ("Final decision", [10])],
    ),
    "002_7d099216e168a9a0.txt": dict(
        doc_id="002_7d099216e168a9a0", case_number=None, authority=None, category=None, subcategory=None,
        outcome=None, decision_date=None,
        summary_start="We will not investigate Ms X\u2019s complaint about the accuracy of Child Protection",
        sections=[("The complaint", [1]), (ROLE, [2]), ("How I considered this complaint", [3, 4]),
                  ("My assessment", list(range(5, 14))), ("Final decision", [14])],
    ),
    "003_67a1953511426527.txt": dict(
        doc_id="18-009-917", case_number="18 009 917", authority="Staffordshire County Council",
        category="Children's care services", subcategory="Other", outcome="Upheld",
        decision_date=dt.date(2019, 6, 26),
        summary_start="Miss X complained the Council caused distress by disclosing her address",
        sections=[("The complaint", [1]), (ROLE, [2, 3, 4]), ("How I considered this complaint", [5, 6, 7]),
                  ("What I found", list(range(8, 34))), ("Analysis", list(range(34, 43))),
                  ("Agreed action", [43, 44, 45]), ("Final decision", [46])],
    ),
    "004_dad75dd328775d2a.txt": dict(
        doc_id="24-005-748", case_number="24 005 748", authority="Hampshire County Council",
        category="Children's care services", subcategory="Child protection", outcome="Closed after initial enquiries",
        decision_date=dt.date(2024, 9, 22),
        summary_start="We will not investigate this complaint about the conduct of a child protection conference",
        sections=[("The complaint", [1]), (ROLE, [2]), ("How I considered this complaint", [3, 4]),
                  ("My assessment", [5, 6, 7, 8]), ("Final decision", [9])],
    ),
}

FURNITURE = ["Back to top", "Print this page", "LGO logogram", "Investigator's decision on behalf",
             "Ombudsman's final decision", "privacy settings", "cookies", "Google Analytics",
             "We recommend you set these"]


@pytest.fixture(scope="module")
def samples():
    return {name: parse_file(SAMPLE_DIR / name) for name in SAMPLES}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_sample_metadata_sections_and_paragraph_numbers(samples, name):
    d, want = samples[name], SAMPLES[name]
    assert (d.doc_id, d.case_number, d.authority, d.category, d.subcategory, d.outcome, d.decision_date) == (
        want["doc_id"], want["case_number"], want["authority"], want["category"], want["subcategory"],
        want["outcome"], want["decision_date"])
    assert d.summary.startswith(want["summary_start"])
    assert [(s.name, [p.number for p in s.paragraphs]) for s in d.sections] == want["sections"]
    # Numbering runs 1..N through the whole decision without gaps or repeats.
    assert [p.number for p in d.paragraphs] == list(range(1, len(d.paragraphs) + 1))


def test_sample_000_paragraph_texts(samples):
    d = samples["000_10e5940e8b3fa3d0.txt"]
    assert d.paragraph(1).text == ("The complainant, whom I shall call Mr X, complains about children "
                                   "services\u2019 actions.")
    assert d.paragraph(4).text == "I considered the Ombudsman\u2019s Assessment Code."
    assert d.paragraph(9).text == "We will not investigate Mr X\u2019s complaint because the ICO is better placed."
    assert d.section_of(7) == "My assessment"


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_page_furniture_and_cookie_banner_in_no_paragraph(samples, name):
    d = samples[name]
    texts = [p.text for p in d.paragraphs] + [d.summary] + [s.name for s in d.sections]
    for text in texts:
        for junk in FURNITURE:
            assert junk.lower() not in text.lower().replace("\u2019", "'"), (junk, text[:80])


def test_sub_bullets_stay_inside_their_paragraph(samples):
    d003, d004 = samples["003_67a1953511426527.txt"], samples["004_dad75dd328775d2a.txt"]
    p16 = d003.paragraph(16).text
    assert p16.startswith("The Council\u2019s stage 1 response said the following:")
    assert p16.count("\u2022 ") == 6 and "\u2022 It should have advised Miss X" in p16
    p28 = d003.paragraph(28).text
    assert p28.startswith("The Council took the following action:") and p28.endswith("\u2022 Apologised to Miss X.")
    # The list and the Act reference under it belong to paragraph 2, not to new paragraphs.
    p2 = d004.paragraph(2).text
    assert p2.count("\u2022 ") == 7
    assert p2.endswith("\n(Local Government Act 1974, section 24A(6), as amended, section 34(B))")
    assert d004.paragraph(9).text.count("\u2022 ") == 3
    for d in samples.values():
        assert not any(p.text.startswith("\u2022") for p in d.paragraphs), d.doc_id


def test_quoted_passage_and_subheadings_kept_with_their_paragraphs(samples):
    d = samples["003_67a1953511426527.txt"]
    assert "\u201c\u2026on this occasion personal and sensitive data" in d.paragraph(27).text
    assert d.paragraph(24).subheading is None
    assert d.paragraph(25).subheading == "Miss X\u2019s corporate complaint"
    assert d.paragraph(34).subheading == "Miss X\u2019s statutory complaint"
    assert d.paragraph(40).subheading == "Miss X\u2019s corporate complaint"


def test_remedies_of_the_upheld_decision(samples):
    d = samples["003_67a1953511426527.txt"]
    payments = [r for r in d.remedies if r.kind == "payment"]
    assert [(r.amount_gbp, r.paragraph) for r in payments] == [(500.0, 44)]
    assert "the Council will pay Miss X \u00a3500 within four weeks" in payments[0].text
    actions = [r for r in d.remedies if r.kind == "action"]
    assert [r.paragraph for r in actions] == [43, 44, 45]
    assert actions[0].text.startswith("The Council has already apologised to Miss X")
    assert actions[2].text.startswith("Within six weeks of my final decision, the Council will investigate")
    for name in SAMPLES:
        if name != "003_67a1953511426527.txt":
            assert samples[name].remedies == (), name


def test_decision_without_header_is_named_after_its_file_and_warns(samples, tmp_path):
    d = samples["002_7d099216e168a9a0.txt"]
    assert d.doc_id == "002_7d099216e168a9a0"
    assert any("no case number" in w for w in d.warnings)
    assert all(not samples[n].warnings for n in SAMPLES if n != "002_7d099216e168a9a0.txt")
    renamed = tmp_path / "Ms X complaint (copy).txt"
    renamed.write_bytes((SAMPLE_DIR / "002_7d099216e168a9a0.txt").read_bytes())
    again = parse_file(renamed)
    assert again.doc_id == "Ms_X_complaint_copy"
    assert again.content_hash == d.content_hash  # content, not file name


@pytest.mark.parametrize("written", ["23 009 429", "23-009-429", "23009429", " 23\u00a0009\u00a0429 "])
def test_case_number_normalised_from_any_spelling(written):
    assert normalise_case_number(written) == "23 009 429"


@pytest.mark.parametrize("not_a_case", ["2300942", "123 009 429", "23 0094 29", "0300 061 0614", "23.009.429", ""])
def test_other_numbers_are_not_case_numbers(not_a_case):
    assert normalise_case_number(not_a_case) is None


def test_case_numbers_found_in_text():
    text = "Compare 23-009-429 with 20011198, not £23,009,429 or 0300 061 0614; see 23 009 429 again."
    assert find_case_numbers(text) == ["23 009 429", "20 011 198"]


def test_title_case_number_written_without_spaces_is_normalised(tmp_path):
    text = (SAMPLE_DIR / "000_10e5940e8b3fa3d0.txt").read_text(encoding="utf-8")
    for written in ("23-009-429", "23009429"):
        path = tmp_path / f"{written}.txt"
        path.write_text(text.replace("23 009 429", written), encoding="utf-8")
        d = parse_file(path)
        assert (d.case_number, d.doc_id) == ("23 009 429", "23-009-429")


# -------------------------------------------------------------------------------------------------
# Format variants: one fictional decision written in every supported way must parse the same.
# -------------------------------------------------------------------------------------------------

FOUND_6 = ("The Council's records show three things went wrong:\n"
           "\u2022 the review request sat unopened in a shared mailbox for six weeks;\n"
           "\u2022 the doctor's letter was scanned to the wrong file; and\n"
           "\u2022 nobody told Mrs B why the review was late.")


def shape(d):
    """Everything a reader sees of a decision (not where it came from)."""
    return dict(
        case_number=d.case_number, authority=d.authority, category=d.category, subcategory=d.subcategory,
        outcome=d.outcome, decision_date=d.decision_date, summary=d.summary,
        sections=[(s.name, [(p.number, p.text, p.subheading) for p in s.paragraphs]) for s in d.sections],
        remedies=[(r.kind, r.amount_gbp, r.paragraph) for r in d.remedies],
    )


@pytest.fixture(scope="module")
def baseline():
    return parse_file(FORMATS / "numbered.txt")


def test_plain_text_baseline_is_parsed_exactly(baseline):
    d = baseline
    assert (d.doc_id, d.case_number, d.authority, d.category, d.subcategory, d.outcome, d.decision_date) == (
        "22-104-567", "22 104 567", "Eastmoor District Council", "Housing", "Homelessness", "Upheld",
        dt.date(2022, 2, 14))
    assert d.summary.startswith("Mrs B complained the Council took too long") and d.summary.endswith("incoming post.")
    assert [(s.name, [p.number for p in s.paragraphs]) for s in d.sections] == [
        ("The complaint", [1]), ("The Ombudsman's role and powers", [2]),
        ("How I considered this complaint", [3, 4]), ("What I found", [5, 6, 7]),
        ("Agreed action", [8, 9]), ("Final decision", [10])]
    assert d.paragraph(6).text == FOUND_6
    assert [p.subheading for p in d.sections[3].paragraphs] == [None, "Mrs B's review request",
                                                                 "Mrs B's review request"]
    assert d.paragraph(10).text == ("I have completed my investigation. The Council was at fault and has agreed to "
                                    "remedy the injustice caused.")
    assert shape(d)["remedies"] == [("action", None, 8), ("action", None, 9), ("payment", 350.0, 8)]
    assert d.warnings == ()


@pytest.mark.parametrize("name", [
    "dash_bullets.txt",      # "-" paragraphs, header fields without blank lines, case number 22104567
    "plain_lines.txt",       # no list markers at all, some blank lines in the header, 22-104-567
    "cookie_banner.txt",     # banner of another wording before the title, privacy banner after the body
    "saved_page.html",       # doctype, head, nav, cookie-consent div, h1/h2/h3, ol/li with ul, footer
    "saved_page_dl.html",    # the same page with the header fields in a <dl>
    "decision.md",           # "# Title (case)", "**Category:** ...", "## The complaint", "1." lists
])
def test_format_variant_parses_like_the_plain_text(baseline, name):
    d = parse_file(FORMATS / name)
    assert shape(d) == shape(baseline)
    # Same content in another format is the same decision (so it is reported as a duplicate, not re-added).
    assert (d.doc_id, d.content_hash) == (baseline.doc_id, baseline.content_hash)


def test_crlf_and_byte_order_mark_are_read_like_plain_text(baseline, tmp_path):
    path = tmp_path / "windows.txt"
    text = (FORMATS / "numbered.txt").read_text(encoding="utf-8")
    path.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8"))
    assert shape(parse_file(path)) == shape(baseline)


def test_html_content_is_recognised_whatever_the_file_suffix(baseline):
    html = (FORMATS / "saved_page.html").read_text(encoding="utf-8")
    assert shape(parse_text(html, "saved-from-browser.txt")) == shape(baseline)


# -------------------------------------------------------------------------------------------------
# Bad input: a ParseError whose message says what is wrong.
# -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("content", [b"", b"\n  \r\n\t\n"])
def test_empty_file(tmp_path, content):
    path = tmp_path / "empty.txt"
    path.write_bytes(content)
    with pytest.raises(ParseError, match="empty file"):
        parse_file(path)


def test_binary_file(tmp_path):
    path = tmp_path / "scan.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
    with pytest.raises(ParseError, match="binary file"):
        parse_file(path)


def test_windows_1252_file_is_decoded(baseline, tmp_path):
    path = tmp_path / "cp1252.txt"
    data = (FORMATS / "numbered.txt").read_text(encoding="utf-8").encode("cp1252")
    assert b"\xa3350" in data  # "£350" as the single byte 0xA3, which is not valid UTF-8
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    path.write_bytes(data)
    d = parse_file(path)
    assert shape(d) == shape(baseline)
    assert "pay her \u00a3350" in d.paragraph(8).text


def test_file_over_the_size_limit(tmp_path):
    small = tmp_path / "long.txt"
    small.write_bytes((FORMATS / "numbered.txt").read_bytes())
    assert small.stat().st_size > 2048
    with pytest.raises(ParseError, match=r"file is \d\.\d KB, over the 2 KB limit"):
        parse_file(small, max_bytes=2048)
    big = tmp_path / "huge.txt"
    with big.open("wb") as f:
        f.truncate(6 * 1024 * 1024)  # the default limit is 5 MB
    with pytest.raises(ParseError, match="file is 6 MB, over the 5 MB limit"):
        parse_file(big)


def test_prose_that_is_not_a_decision(tmp_path):
    with pytest.raises(ParseError, match="no recognisable decision text"):
        parse_file(BAD / "not_a_decision.txt")
    # Without its title line the prose has no heading at all; it is still not a decision.
    untitled = tmp_path / "untitled.txt"
    untitled.write_text((BAD / "not_a_decision.txt").read_text(encoding="utf-8").split("\n", 2)[2], encoding="utf-8")
    assert untitled.read_text(encoding="utf-8").startswith("The meeting was held")
    with pytest.raises(ParseError, match="no recognisable decision text"):
        parse_file(untitled)
    # A heading alone does not make a decision either: too little text under it.
    stub = tmp_path / "stub.txt"
    stub.write_text("The complaint\nMr Y complained.\n", encoding="utf-8")
    with pytest.raises(ParseError, match="no recognisable decision text: only 3 words"):
        parse_file(stub)


def test_missing_file(tmp_path):
    with pytest.raises(ParseError, match="cannot read file"):
        parse_file(tmp_path / "nowhere.txt")
