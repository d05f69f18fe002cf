"""The audit and feedback logs: owner-only, one record per line, a torn last line survived."""

from __future__ import annotations

import json
import stat
import threading

from ui.audit_log import append_jsonl, read_jsonl


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_created_owner_only_and_appended_in_order(tmp_path):
    path = tmp_path / "logs" / "audit.jsonl"
    append_jsonl(path, {"n": 1, "text": "Café ¶7 <b>"})
    append_jsonl(path, {"n": 2})
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    assert read_jsonl(path) == [{"n": 1, "text": "Café ¶7 <b>"}, {"n": 2}]
    assert path.read_bytes().count(b"\n") == 2


def test_existing_world_readable_log_is_tightened(tmp_path):
    path = tmp_path / "feedback.jsonl"
    path.write_text('{"n": 0}\n')
    path.chmod(0o644)
    append_jsonl(path, {"n": 1})
    assert mode(path) == 0o600 and [r["n"] for r in read_jsonl(path)] == [0, 1]


def test_torn_last_line_is_skipped_and_does_not_swallow_the_next_record(tmp_path):
    path = tmp_path / "audit.jsonl"
    append_jsonl(path, {"n": 1})
    with open(path, "ab") as fh:  # a crash in the middle of a write
        fh.write(b'{"n": 2, "answer": "The Council was at fa')
    assert read_jsonl(path) == [{"n": 1}]
    append_jsonl(path, {"n": 3})
    assert read_jsonl(path) == [{"n": 1}, {"n": 3}]


def test_missing_log_reads_as_empty(tmp_path):
    assert read_jsonl(tmp_path / "none.jsonl") == []


def test_concurrent_appends_never_interleave(tmp_path):
    path = tmp_path / "audit.jsonl"
    big = "x" * 20_000  # larger than a pipe buffer: one write per record still keeps lines whole

    def writer(k):
        for i in range(25):
            append_jsonl(path, {"k": k, "i": i, "pad": big})

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = path.read_bytes().splitlines()
    assert len(lines) == 100 and all(json.loads(line)["pad"] == big for line in lines)
