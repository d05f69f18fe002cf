"""Bad input: questions that are empty, huge, full of control characters or in another language get a clear answer
or a clear QuestionError; CLI arguments out of range get a usage message and exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from core.casenum import find_case_numbers
from core.errors import ConfigError, QuestionError
from core.settings import load_settings
from core.types import Answer
from ingest.index import open_index
from rag.assistant import ABSTAIN_TEXT, Assistant

try:
    from conftest import ROOT
except ImportError:
    from tests.conftest import ROOT

QUESTION = "When does the ICO handle rectification?"
LIMIT = load_settings().max_question_chars


@pytest.fixture(scope="module")
def assistant(sample_index_dir, embedder):
    settings = load_settings(index_dir=sample_index_dir)
    with Assistant(settings, open_index(settings, embedder=embedder)) as a:
        yield a


def _clear(answer: Answer) -> None:
    """A clear answer: text, and either verified citations or the plain abstention."""
    assert isinstance(answer, Answer) and answer.text.strip()
    retrieved = {h.chunk.case_number for h in answer.sources if h.chunk.case_number}
    assert set(find_case_numbers(answer.text)) <= retrieved
    if answer.abstained:
        assert ABSTAIN_TEXT in answer.text or "No indexed decisions match" in answer.text
    else:
        assert answer.citations


# --- questions -------------------------------------------------------------------------------------

@pytest.mark.parametrize("question, message", [
    ("", "empty"),
    ("   \n\t  \r\n ", "empty"),
    ("\x00\x01\x07\x1b\x7f\u200b\ufeff", "empty"),  # nothing but control and format characters
    ("?!… — ¿¡ 😀 🎉", "no words"),
    ("x" * 100_000, f"100,000 characters long; the limit is {LIMIT:,}"),
    ("a" * (LIMIT + 1), f"the limit is {LIMIT:,}"),
])
def test_unanswerable_questions_get_a_clear_question_error(assistant, question, message):
    with pytest.raises(QuestionError, match=message):
        assistant.ask(question)


def test_a_question_at_the_length_limit_is_answered(assistant):
    question = (QUESTION + " ") * (LIMIT // (len(QUESTION) + 1))
    question = question + "x" * (LIMIT - len(question))
    assert len(question) == LIMIT
    _clear(assistant.ask(question))


@pytest.fixture(scope="module")
def clean_answer(assistant) -> Answer:
    return assistant.ask(QUESTION)


@pytest.mark.parametrize("question", [
    "When does the ICO\x00 handle\x1b[31m rectification?\x1b[0m\x7f",  # NUL, ANSI colour escapes, DEL
    "When\u202e does the ICO handle\u200f rectification?\u2066",  # RTL override and mark, an isolate
    "\ufeffWhen does the\u200b ICO handle\u00ad rectification?",  # BOM, zero-width space, soft hyphen
    "When does the ICO \ud800handle rectification?",  # a lone surrogate (what a broken client may send)
    "When\tdoes the ICO\r\nhandle   rectification?\x0c",
])
def test_control_and_format_characters_do_not_change_the_answer(assistant, clean_answer, question):
    answer = assistant.ask(question)
    assert answer.standalone_question == clean_answer.standalone_question
    assert answer.text == clean_answer.text and answer.cited_labels == clean_answer.cited_labels


ROBUST = "Can the ICO order a council to correct its records?"  # well above the abstention threshold


@pytest.mark.parametrize("question, answered", [
    (ROBUST + " 😀👩‍👩‍👧🏳️‍🌈", True),  # emoji, ZWJ sequences
    # combining marks make "correct" another word, one no decision contains: a decline with its reason is fine
    (ROBUST.replace("correct", "corre\u0301ct\u0308"), None),
    ("<script>alert(1)</script> <img src=x onerror=alert(1)> " + ROBUST, None),  # markup words dilute the question
    (ROBUST + ' "x" OR NEAR(a b) * ^ : -- ;DROP TABLE chunks; {near/3} col:*', None),  # FTS5 and SQL syntax
    (ROBUST + " " + "x" * 1500, True),  # one huge word
])
def test_symbols_markup_and_query_syntax_in_a_question_are_harmless(assistant, question, answered):
    answer = assistant.ask(question)
    _clear(answer)
    if answered or not answer.abstained:
        assert not answer.abstained
        assert set(answer.cited_labels) & {"23 009 429", "002_7d099216e168a9a0", "24 005 748", "20 011 198"}
    else:
        assert answer.decline_reason and "Nearest decisions" in answer.text
    assert answer.question == question  # kept as typed, as plain text (escaping is the UI's job)


@pytest.mark.parametrize("question", [
    "Pryd mae'r ICO yn delio â chywiro cofnodion?",  # Welsh
    "Kiedy ICO zajmuje się sprostowaniem danych osobowych?",  # Polish
    "信息专员办公室什么时候处理更正个人数据的请求？",  # Chinese
    "متى يتعامل مكتب مفوض المعلومات مع تصحيح البيانات؟",  # Arabic (right to left)
    "Когда ICO рассматривает исправление данных?",  # Russian
])
def test_questions_in_another_language_get_a_clear_answer(assistant, question):
    _clear(assistant.ask(question))


@pytest.mark.parametrize("filters, message", [
    ({"since": "2024-01-01", "until": "2023-01-01"}, "swap them"),
    ({"since": "last tuesday"}, "is not a date"),
    ({"council": "Hampshire"}, "Unknown filter"),
])
def test_bad_filters_get_a_clear_error(assistant, filters, message):
    with pytest.raises(ConfigError, match=message):
        assistant.ask(QUESTION, filters=filters)


# --- command lines ---------------------------------------------------------------------------------

def _run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMBUDS_")}
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


USAGE = [
    (["rag", "ask", QUESTION, "--k", "0"], "usage: python -m rag", "0 is out of range: use 1 to 100"),
    (["rag", "ask", QUESTION, "--k", "1000"], "usage: python -m rag", "1000 is out of range: use 1 to 100"),
    (["rag", "ask", QUESTION, "--k", "-3"], "usage: python -m rag", "out of range"),
    (["rag", "ask", QUESTION, "--k", "many"], "usage: python -m rag", "'many' is not a whole number"),
    (["rag", "ask", QUESTION, "--since", "notadate"], "usage: python -m rag", "'notadate' is not a date"),
    (["rag", "ask", QUESTION, "--until", "2024-13-45"], "usage: python -m rag", "is not a date"),
    (["rag", "ask", QUESTION, "--llm", "gpt5"], "usage: python -m rag", "invalid choice: 'gpt5'"),
    (["rag", "ask", QUESTION, "--frobnicate"], "usage: python -m rag", "unrecognized arguments: --frobnicate"),
    (["rag", "ask"], "usage: python -m rag", "the following arguments are required: question"),
    (["rag"], "usage: python -m rag", "the following arguments are required: command"),
    (["rag", "nonsense"], "usage: python -m rag", "invalid choice: 'nonsense'"),
    (["ingest"], "usage: python -m ingest", "the following arguments are required: paths"),
    (["ingest", "data/sample", "--frobnicate"], "usage: python -m ingest", "unrecognized arguments"),
    (["eval"], "usage: python -m eval", ""),
    (["eval", "frobnicate"], "usage: python -m eval", "unknown command 'frobnicate'"),
    (["eval", "run"], "usage: python -m eval run", "the following arguments are required: --gold"),
    (["eval", "run", "--gold", "eval/gold/dev.jsonl", "--limit", "0"], "usage: python -m eval run",
     "0 is out of range"),
    (["eval", "run", "--gold", "eval/gold/dev.jsonl", "--k", "1000"], "usage: python -m eval run", "out of range"),
    (["eval", "run", "--gold", "no/such/gold.jsonl"], "usage: python -m eval run", "no such file"),
    (["eval", "compare", "--gold", "eval/gold/dev.jsonl", "--corpus", "data/sample", "--k", "0"],
     "usage: python -m eval compare", "use 1 to 100"),
]


@pytest.mark.parametrize("args, usage, message", USAGE, ids=[" ".join(a[:4])[:60] for a, _, _ in USAGE])
def test_cli_usage_errors_exit_2_with_usage(args, usage, message, tmp_path):
    if args[0] in ("rag", "ingest") and len(args) > 1 and args[1] != "nonsense":
        args = [*args, "--index-dir", str(tmp_path / "index")] if args != ["rag", "ask"] else args
    done = _run(*args)
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert usage in done.stderr and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert not (tmp_path / "index").exists()


@pytest.mark.parametrize("args, message", [
    (["ingest", "data/sample", "--chroma-url", "ftp://x"], "'ftp://x' is not an http(s) URL"),
    (["ingest", "data/sample", "--chroma-url", "http://"], "has no host"),
    (["ingest", "data/sample", "--chroma-url", "http://127.0.0.1:1"], "Cannot reach the Chroma server"),
    (["rag", "ask", QUESTION, "--chroma-url", "localhost:8000"], "is not an http(s) URL"),
])
def test_bad_chroma_url_exits_2_with_the_fix(args, message, tmp_path):
    done = _run(*args, "--index-dir", str(tmp_path / "index"))
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.startswith("error: ") and message in done.stderr, done.stderr
    assert "http://127.0.0.1:8000" in done.stderr or "make chroma" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_rag_ask_cli_on_bad_questions_and_filters(sample_index_dir):
    for args, message in [
        (["x" * 100_000], f"the limit is {LIMIT:,}"),
        (["\x01\x02 \t"], "empty"),
        ([QUESTION, "--since", "2024-01-01", "--until", "2023-01-01"], "swap them"),
    ]:
        done = _run("rag", "ask", *args, "--index-dir", str(sample_index_dir))
        assert done.returncode == 2, (args[0][:20], done.stderr[-2000:])
        assert done.stderr.startswith("error: ") and message in done.stderr and "Traceback" not in done.stderr
    welsh = _run("rag", "ask", "Pryd mae'r ICO yn delio â chywiro cofnodion?", "--index-dir", str(sample_index_dir))
    assert welsh.returncode == 0 and welsh.stdout.strip() and "Traceback" not in welsh.stderr
