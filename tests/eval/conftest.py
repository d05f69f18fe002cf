"""Fixtures for the evaluation tests: a small gold subset over the five sample decisions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOLD = ROOT / "eval" / "gold" / "dev.jsonl"
# Gold questions answerable from data/sample alone (every type the samples support), plus two unanswerable.
SAMPLE_SUBSET = ("q002", "q013", "q032", "q042", "q062", "q068", "q079", "q080")


@pytest.fixture(scope="session")
def sample_gold(tmp_path_factory) -> Path:
    """A gold file of eight dev questions whose decisions are all in data/sample."""
    rows = {json.loads(line)["id"]: line for line in GOLD.read_text(encoding="utf-8").splitlines() if line.strip()}
    path = tmp_path_factory.mktemp("gold") / "sample-subset.jsonl"
    path.write_text("\n".join(rows[q] for q in SAMPLE_SUBSET) + "\n", encoding="utf-8")
    return path
