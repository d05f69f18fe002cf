"""The one sentence splitter (evidence, answers' citation check, the browser's first sentence, long paragraphs)
and the display helpers."""

from __future__ import annotations

import datetime as dt

import pytest

from core.text import category_path, display_date, sentences_of, split_sentences


@pytest.mark.parametrize(("line", "expected"), [
    ("Mr X complained. The Council was at fault.", ["Mr X complained.", "The Council was at fault."]),
    # The abbreviations the three splitters used to disagree about.
    ("Mr. Y asked for e.g. The decision letter. It came.", ["Mr. Y asked for e.g. The decision letter.", "It came."]),
    ("As para. 7 says, it paid. See paras. 8 and 9.", ["As para. 7 says, it paid.", "See paras. 8 and 9."]),
    # A citation after the full stop stays with its sentence; one before it is inside it anyway.
    ("It agreed to pay £250. [23 009 429 ¶5] It apologised [23 009 429 ¶6].",
     ["It agreed to pay £250. [23 009 429 ¶5]", "It apologised [23 009 429 ¶6]."]),
    ('She said "no." Then she left!', ['She said "no."', "Then she left!"]),
    # A Markdown link after a full stop is not a citation, and no sentence starts at it.
    ("It paid. [click me](javascript:x) Then more.", ["It paid. [click me](javascript:x) Then more."]),
    # No split inside numbers, before a lower-case word, or at the word "no".
    ("It was 3.5 weeks late. it said so.", ["It was 3.5 weeks late. it said so."]),
    ("The answer was no. Why? Because 8 weeks passed.", ["The answer was no.", "Why?", "Because 8 weeks passed."]),
    ("", []),
])
def test_split_sentences(line, expected):
    assert split_sentences(line) == expected


def test_sentences_of_a_paragraph_take_each_line_and_drop_bullets():
    text = "The Council agreed to:\n• apologise to Mrs Y. Within four weeks.\n• pay £300."
    assert sentences_of(text) == ["The Council agreed to:", "apologise to Mrs Y.", "Within four weeks.", "pay £300."]


def test_display_helpers():
    assert category_path("Education", None, "School transport") == "Education > School transport"
    assert category_path(None, None) == ""
    assert display_date(dt.date(2023, 10, 3)) == "3 Oct 2023"
    assert display_date(dt.date(2023, 10, 3), iso=True) == "2023-10-03"
    assert display_date(None) == "date not stated"
