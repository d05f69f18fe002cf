"""One app instance's Assistant in a process of its own, for tests/deploy/test_instances.py.

    python tests/deploy/instance_worker.py        # settings from the OMBUDS_* environment

Prints {"ready": ..., "state": ...} once warm, then answers one JSON request a line on stdin
({"question": ..., "filters": {...}}) with one JSON line on stdout: the answer's text, whether it abstained, the
decisions it cites and those retrieval found (in rank order), any error, and the index state this process saw
just before and just after answering: the catalog's write generation (shared by every process) and the
exact-search copy of the vectors it holds (its own: reloaded when another process has ingested,
ingest/store.py).
"""

from __future__ import annotations

import hashlib
import json
import sys
import traceback
from typing import Any


def index_state(assistant: Any) -> dict[str, Any]:
    """What this process answers from: the catalog generation and the vectors of its exact-search copy."""
    vectors = assistant.index.store.exact_vectors()
    ids = hashlib.sha256("\n".join(vectors.ids).encode("utf-8")).hexdigest()[:16]
    return {"generation": assistant.index.catalog.get_meta("generation"), "vectors": len(vectors), "ids": ids}


def answer(assistant: Any, request: dict[str, Any]) -> dict[str, Any]:
    """The reply to one request, with the state seen before and after."""
    before = index_state(assistant)
    try:
        a = assistant.ask(request["question"], request.get("filters"))
        found = list(dict.fromkeys(h.chunk.case_number or h.chunk.doc_id for h in a.sources))
        reply = {"text": a.text, "abstained": a.abstained, "cited": a.cited_labels, "found": found, "error": None}
    except Exception:  # noqa: BLE001 - the test reports it
        reply = {"error": traceback.format_exc()}
    return reply | {"before": before, "after": index_state(assistant)}


def main() -> int:
    from rag.assistant import Assistant

    assistant = Assistant.from_settings()
    try:
        assistant.warm_up()
        print(json.dumps({"ready": True, "state": index_state(assistant)}), flush=True)
        for line in sys.stdin:
            print(json.dumps(answer(assistant, json.loads(line))), flush=True)
    finally:
        assistant.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
