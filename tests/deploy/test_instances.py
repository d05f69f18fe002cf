"""Several app instances, one ingest: two Assistants in processes of their own over one PostgreSQL catalog and one
Chroma server (both real) are asked the same questions before, during and after an ingest run by a third process.

At every moment both see the same index state they answer alike; no question errs; no answer cites a decision the
catalog does not hold; and once the ingest is over, both see the new decisions (exact search reloads its vectors
when the catalog's data_version moves, at most every EXACT_RELOAD_S: ingest/store.py). Two ingests at once are
refused by the database's advisory lock: tests/ingest/test_catalog_pg.py checks that.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from core.settings import child_environment
from ingest.store import EXACT_RELOAD_S

try:  # the shared helper in tests/conftest.py, under either pytest import mode (prepend / importlib)
    from conftest import ICO_ANSWERS, ROOT, SAMPLE_DIR
except ImportError:
    from tests.conftest import ICO_ANSWERS, ROOT, SAMPLE_DIR

pytestmark = pytest.mark.slow

WORKER = Path(__file__).with_name("instance_worker.py")
DEV_CORPUS = ROOT / "eval" / "corpus" / "dev"
# Twelve fictional decisions ingested while the instances answer; three questions only they answer (gold q001,
# q004, q005: each about one of them, though a neighbour may be the one cited), two the samples answer, one
# nothing answers.
NEW_FILES = sorted(DEV_CORPUS.glob("dev_0[01]*.txt"))[:12]
NEW_CASES = {re.search(r"\b99 \d{3} \d{3}\b", p.read_text(encoding="utf-8")).group(0) for p in NEW_FILES}
NEW_QUESTIONS = slice(2, 5)
QUESTIONS = (
    "When does the ICO handle rectification?",
    "Did the council pay anything to the complainant?",
    "How much did Kessington County Council agree to pay after its school transport panel never saw a "
    "consultant's letter about a boy's epilepsy?",
    "How late was the EHC plan in the Eastbrook City Council assessment delay case, and how was the payment for "
    "lost provision worked out?",
    "Why was there no fault when Ravensholm issued a child's EHC plan three weeks after the 20-week deadline?",
    "What is the weather forecast for Manchester this weekend?",
)


class Instance:
    """A worker process holding one Assistant (tests/deploy/instance_worker.py)."""

    def __init__(self, env: dict[str, str], log: Path):
        self.log = log.open("w")
        self.proc = subprocess.Popen([sys.executable, str(WORKER)], cwd=ROOT, env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.log_path = log

    def ready(self) -> dict[str, Any]:
        return self.read()

    def send(self, question: str) -> None:
        self.proc.stdin.write(json.dumps({"question": question}) + "\n")
        self.proc.stdin.flush()

    def read(self) -> dict[str, Any]:
        line = self.proc.stdout.readline()
        if not line:
            pytest.fail(f"instance died: {self.log_path.read_text()[-3000:]}")
        return json.loads(line)

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
        self.log.close()


@dataclass
class Round:
    """One question asked of both instances at once: their replies."""

    question: str
    replies: tuple[dict[str, Any], dict[str, Any]]

    @property
    def same_state(self) -> bool:
        """Both saw one state throughout: nothing changed in either while they answered, and it was the same."""
        a, b = self.replies
        return a["before"] == a["after"] == b["before"] == b["after"]


def ask_both(instances: list[Instance], question: str) -> Round:
    for instance in instances:
        instance.send(question)
    a, b = (instance.read() for instance in instances)
    return Round(question, (a, b))


def catalog_labels(url: str) -> set[str]:
    """Every label a citation may carry: case numbers, and ids of decisions without one."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT case_number, doc_id FROM decisions").fetchall()
    return {case for case, _ in rows if case} | {doc for case, doc in rows if not case}


def check(rounds: list[Round], url: str) -> int:
    """No errors, answers cited or declined, citations held by the catalog, and equal answers wherever both
    instances saw the same state; returns how many rounds were compared."""
    held = catalog_labels(url)  # read after the answers: the catalog only grows here, so nothing cited is missed
    compared = 0
    for r in rounds:
        for reply in r.replies:
            assert reply["error"] is None, reply["error"]
            assert reply["cited"] or reply["abstained"], reply["text"][:300]
            assert set(reply["cited"]) <= held, (r.question, reply["cited"], sorted(held))
        if r.same_state:
            a, b = r.replies
            assert [a[k] for k in ("text", "cited", "abstained", "found")] == \
                   [b[k] for k in ("text", "cited", "abstained", "found")], r.question
            compared += 1
    return compared


# The ingest of the new decisions: python -m ingest's Indexer, writing every 8 chunks instead of every 256, so
# that the catalog and the vectors move several times while the instances answer (a reload can then catch the
# vectors of a batch whose catalog rows are not committed yet).
SMALL_BATCHES = """
import sys
from core.settings import apply_offline_environment, load_settings
from ingest.index import Indexer, open_index
apply_offline_environment()
index = open_index(load_settings(), write=True)
try:
    report = Indexer(index, allow_fictional=True, batch_chunks=8).ingest([sys.argv[1]])
finally:
    index.close()
print(report.to_dict())
sys.exit(1 if report.failed else 0)
"""


def ingest_in_process(env: dict[str, str], args: list[str], log: Path) -> subprocess.Popen:
    """A third process ingesting (python ARGS), output to log."""
    with log.open("w") as out:
        return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_until_both_see(instances: list[Instance], url: str) -> list[Round]:
    """Ask until both instances answer from every vector the catalog lists, and find the new decisions for the
    questions about them (found, not necessarily cited: on a small index the policy may decline)."""
    with psycopg.connect(url) as conn:
        chunks = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
    deadline = time.monotonic() + 3 * EXACT_RELOAD_S + 60
    while True:
        rounds = [ask_both(instances, q) for q in QUESTIONS]
        found = [[sorted(NEW_CASES & set(reply["found"][:3])) for reply in r.replies] for r in rounds[NEW_QUESTIONS]]
        states = {json.dumps(reply["after"], sort_keys=True) for r in rounds for reply in r.replies}
        if (len(states) == 1 and all(r.same_state for r in rounds) and rounds[0].replies[0]["after"]["vectors"]
                == chunks and all(new for pair in found for new in pair)):
            return rounds
        assert time.monotonic() < deadline, f"the instances did not both see the ingest: {found} {states}"
        time.sleep(1)


def test_two_instances_answer_alike_before_during_and_after_an_ingest(postgres_server, catalog_url, chroma_url,
                                                                        tmp_path):
    env = child_environment(catalog_url=catalog_url, chroma_url=chroma_url, index_dir=tmp_path / "index",
                            log_dir=tmp_path / "logs")
    samples = ingest_in_process(env, ["-m", "ingest", str(SAMPLE_DIR), "--quiet"], tmp_path / "ingest-samples.log")
    assert samples.wait(600) == 0, (tmp_path / "ingest-samples.log").read_text()[-3000:]
    new = tmp_path / "new-decisions"
    new.mkdir()
    for path in NEW_FILES:
        shutil.copy(path, new / path.name)
    instances = [Instance(env, tmp_path / f"instance-{n}.log") for n in (1, 2)]
    try:
        assert [i.ready()["ready"] for i in instances] == [True, True]
        before = [ask_both(instances, q) for q in QUESTIONS]
        assert check(before, catalog_url) == len(QUESTIONS)
        assert set(before[0].replies[0]["cited"]) <= ICO_ANSWERS and before[0].replies[0]["cited"]
        assert not any(NEW_CASES & set(reply["found"]) for r in before for reply in r.replies)

        ingest = ingest_in_process(env, ["-c", SMALL_BATCHES, str(new)], tmp_path / "ingest-new.log")
        during: list[Round] = []
        while ingest.poll() is None:
            during += [ask_both(instances, q) for q in QUESTIONS]
        assert ingest.wait() == 0, (tmp_path / "ingest-new.log").read_text()[-3000:]
        compared_during = check(during, catalog_url)

        after = wait_until_both_see(instances, catalog_url)
        assert check(after, catalog_url) == len(QUESTIONS)
        assert NEW_CASES & {case for r in after for case in r.replies[0]["cited"]}  # and answer from them
        seen = {(reply["before"]["generation"], reply["before"]["vectors"]) for r in during for reply in r.replies}
        print(f"\nduring the ingest: {len(during)} questions to both, {compared_during} asked while both saw one "
              f"state (compared); (catalog generation, vectors held) seen: {sorted(seen)}")
        assert during, "the ingest finished before a question could be asked during it"
    finally:
        for instance in instances:
            instance.stop()
