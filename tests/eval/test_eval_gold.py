"""The gold set loads and is what the issue asks for; bad lines fail with the line and the field named."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from eval.gold import TYPES, GoldError, load_gold
from ingest.parse import parse_file

ROOT = Path(__file__).resolve().parents[2]
GOLD = ROOT / "eval" / "gold" / "dev.jsonl"
HELDOUT = ROOT / "eval" / "gold" / "test.jsonl"
# Fitting only (make fit-policy fits on dev + train): written about the sample and dev decisions alone.
TRAIN = ROOT / "eval" / "gold" / "train.jsonl"
TRAIN_CORPORA = {ROOT / "data" / "sample", ROOT / "eval" / "corpus" / "dev"}
# Every gold question is asked of an index holding all of these (make eval / make heldout).
CORPORA = [ROOT / "data" / "sample", ROOT / "eval" / "corpus" / "dev", ROOT / "eval" / "corpus" / "test",
           ROOT / "eval" / "corpus" / "archive"]

GOOD = {"id": "g1", "question": "What did the council pay?", "gold_cases": ["23 009 429"],
        "reference_answer": "Nothing.", "key_facts": ["nothing"], "type": "specific"}


def _straight(text: str) -> str:
    return text.lower().replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')


@pytest.fixture(scope="module")
def corpus():
    """label (case number or doc id) -> parsed decision, over every evaluation corpus."""
    out = {}
    for folder in CORPORA:
        for path in sorted(folder.iterdir()):
            d = parse_file(path)
            out.update({label: d for label in (d.doc_id, d.case_number) if label})
    return out


def test_the_archive_is_shaped_like_the_real_one(corpus):
    """Issue 11: at least 150 fictional decisions, about half closed after initial enquiries, every category,
    many councils; all marked fictional."""
    fictional = {d.doc_id: d for d in corpus.values() if d.fictional}
    assert len(fictional) >= 150
    outcomes = Counter(d.outcome for d in fictional.values())
    assert outcomes["Closed after initial enquiries"] >= 0.3 * len(fictional)
    assert outcomes["Upheld"] >= 30 and outcomes["Not upheld"] >= 20
    assert len({d.category for d in fictional.values()}) >= 9
    assert len({d.authority for d in fictional.values()}) >= 40


@pytest.mark.parametrize("path", [GOLD, HELDOUT], ids=["dev", "test"])
def test_each_split_covers_every_type_and_many_unanswerable_questions(path):
    questions = load_gold(path)
    types = Counter(q.type for q in questions)
    assert len(questions) >= 100 and set(types) == set(TYPES)
    assert types["unanswerable"] >= 40 and types["paraphrase"] >= 10
    assert all(q.history for q in questions if q.type == "follow-up")
    assert all(not q.answerable for q in questions if q.type == "unanswerable")


def test_the_splits_together_meet_the_issue_and_share_no_question():
    dev, test = load_gold(GOLD), load_gold(HELDOUT)
    assert len(dev) + len(test) >= 250
    assert sum(not q.answerable for q in dev + test) >= 80
    assert not {q.id for q in dev} & {q.id for q in test}
    assert not {q.question for q in dev} & {q.question for q in test}


@pytest.mark.parametrize("path", [GOLD, HELDOUT, TRAIN], ids=["dev", "test", "train"])
def test_every_gold_label_names_a_decision_and_every_key_fact_is_in_one(path, corpus):
    for q in load_gold(path):
        assert all(label in corpus for label in q.gold_cases), (q.id, q.gold_cases)
        if q.id.startswith("q"):  # the first dev set's key facts may sit in a decision's header or in none
            continue
        text = _straight(" ".join(" ".join(p.text for p in corpus[c].paragraphs) + " " + (corpus[c].summary or "")
                                  + " " + c for c in q.gold_cases))
        assert all(_straight(fact) in text for fact in q.key_facts), q.id


def test_the_fitting_split_asks_only_about_sample_and_dev_decisions_and_shares_nothing_with_the_others(corpus):
    """train.jsonl adds fitting questions of the hard kinds (lay paraphrases, near-miss unanswerable questions,
    follow-ups that change the subject); the test split's decisions (test, archive) are never its gold."""
    train = load_gold(TRAIN)
    types = Counter(q.type for q in train)
    assert len(train) >= 100 and types["unanswerable"] >= 40 and types["paraphrase"] >= 40
    assert sum(1 for q in train if q.history) >= 15
    allowed = {label for label, d in corpus.items() if Path(d.source_path).parent.resolve() in TRAIN_CORPORA}
    assert all(label in allowed for q in train for label in q.gold_cases)
    others = load_gold(GOLD) + load_gold(HELDOUT)
    assert not {q.id for q in train} & {q.id for q in others}
    assert not {q.question for q in train} & {q.question for q in others}


def write(tmp_path: Path, *rows: object) -> Path:
    path = tmp_path / "gold.jsonl"
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("bad, line, field", [
    ("{not json", 2, "not valid JSON"),
    ({k: v for k, v in GOOD.items() if k != "key_facts"}, 2, "'key_facts' is missing"),
    ({**GOOD, "type": "vague"}, 2, "'type' must be one of"),
    ({**GOOD, "gold_cases": ["23009429"]}, 2, "'gold_cases' has '23009429'"),
    ({**GOOD, "gold_cases": "23 009 429"}, 2, "'gold_cases' must be a list"),
    ({**GOOD, "type": "unanswerable"}, 2, "'gold_cases' must be empty"),
    ({**GOOD, "type": "follow-up"}, 2, "'history' is needed"),
    ({**GOOD, "history": [{"role": "bot", "content": "hi"}]}, 2, "'history' turn 0"),
    ({**GOOD, "filters": {"council": "X"}}, 2, "'filters' has unknown key 'council'"),
    ({**GOOD, "filters": {"since": "1/1/2024"}}, 2, "'filters' since='1/1/2024' is not a date"),
    ({**GOOD, "answer": "x"}, 2, "'answer' is not a gold field"),
    ({**GOOD, "question": "  "}, 2, "'question' must be a non-empty string"),
    (GOOD, 2, "'id' 'g1' repeats the id on line 1"),
])
def test_a_bad_line_is_reported_with_its_line_and_field(tmp_path, bad, line, field):
    path = write(tmp_path, GOOD, bad)
    with pytest.raises(GoldError) as err:
        load_gold(path)
    assert f"{path} line {line}" in str(err.value)
    assert field in str(err.value)


def test_missing_or_empty_gold_file(tmp_path):
    with pytest.raises(GoldError, match="not found"):
        load_gold(tmp_path / "absent.jsonl")
    with pytest.raises(GoldError, match="no questions"):
        load_gold(write(tmp_path, ""))


def test_optional_fields_default_sensibly(tmp_path):
    row = {k: v for k, v in GOOD.items() if k != "reference_answer"}
    q = load_gold(write(tmp_path, "", row))[0]  # blank lines are skipped, line numbers still count them
    assert q.reference_answer is None and q.history == () and q.filters == {} and q.line == 2
    assert q.to_dict()["gold_cases"] == ["23 009 429"]
