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
CORPORA = [ROOT / "data" / "sample", ROOT / "eval" / "corpus" / "dev"]

GOOD = {"id": "g1", "question": "What did the council pay?", "gold_cases": ["23 009 429"],
        "reference_answer": "Nothing.", "key_facts": ["nothing"], "type": "specific"}


HELDOUT = ROOT / "eval" / "gold" / "test.jsonl"
HELDOUT_CORPUS = ROOT / "eval" / "corpus" / "test"


def _straight(text: str) -> str:
    return text.lower().replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')


def test_held_out_set_loads_and_every_key_fact_is_in_its_gold_decision():
    """eval/gold/test.jsonl was written without looking at the answering code or the dev questions; its
    decisions (97 NNN NNN) are in eval/corpus/test and parse as fictional."""
    questions = load_gold(HELDOUT)
    assert len(questions) == 30 and set(Counter(q.type for q in questions)) == set(TYPES)
    decisions = {d.case_number: d for d in (parse_file(p) for p in sorted(HELDOUT_CORPUS.iterdir()))}
    assert len(decisions) == 15 and all(d.fictional and d.case_number.startswith("97") for d in decisions.values())
    for q in questions:
        text = _straight(" ".join(" ".join(p.text for p in decisions[c].paragraphs) + " " + (decisions[c].summary or "")
                                  + " " + c for c in q.gold_cases))
        assert all(_straight(fact) in text for fact in q.key_facts), q.id


def write(tmp_path: Path, *rows: object) -> Path:
    path = tmp_path / "gold.jsonl"
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_dev_gold_set_loads_and_covers_every_type():
    questions = load_gold(GOLD)
    types = Counter(q.type for q in questions)
    assert len(questions) >= 60 and set(types) == set(TYPES)
    assert types["unanswerable"] >= 10 and types["paraphrase"] >= 10
    assert all(q.history for q in questions if q.type == "follow-up")
    assert all(not q.answerable for q in questions if q.type == "unanswerable")


def test_every_gold_label_names_a_decision_in_the_corpora():
    labels = set()
    for folder in CORPORA:
        for path in folder.iterdir():
            d = parse_file(path)
            labels.update({d.doc_id, d.case_number} - {None})
    missing = {(q.id, label) for q in load_gold(GOLD) for label in q.gold_cases if label not in labels}
    assert not missing


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
