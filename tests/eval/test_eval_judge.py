"""The optional LLM judge, against a real OpenAI-compatible HTTP server on loopback with canned replies."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from core.errors import BackendError
from core.settings import load_settings
from eval.gold import GoldQuestion
from eval.judge import Judge, parse_scores
from eval.run import build_report, evaluate_assistant, open_assistant


class CannedChat(BaseHTTPRequestHandler):
    """POST /v1/chat/completions -> the next canned reply; every request body is recorded."""

    replies: list[str] = []
    seen: list[dict] = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append(body)
        content = type(self).replies.pop(0) if type(self).replies else '{"faithfulness": 1, "correctness": 1}'
        reply = {"id": "c1", "object": "chat.completion", "created": 0, "model": body["model"],
                 "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                              "finish_reason": "stop"}],
                 "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def judge_url():
    CannedChat.replies, CannedChat.seen = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), CannedChat)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_judge_sends_question_passages_answer_and_reference(judge_url):
    CannedChat.replies = ['Sure. {"faithfulness": 0.75, "correctness": 0.5}']
    judge = Judge(judge_url, "judge-model")
    scores = judge.score("What did it pay?", "It paid £500 [18 009 917 ¶9].", ["The Council will pay £500."],
                         "£500 within four weeks")
    assert scores == {"faithfulness": 0.75, "correctness": 0.5}
    sent = CannedChat.seen[0]
    assert sent["model"] == "judge-model"
    user = sent["messages"][-1]["content"]
    assert "What did it pay?" in user and "[1] The Council will pay £500." in user
    assert "It paid £500" in user and "£500 within four weeks" in user
    assert judge.describe()["prompt_version"].startswith("judge@")


def test_judge_scores_land_in_the_report(judge_url, sample_index_dir, embedder, tmp_path):
    CannedChat.replies = ['{"faithfulness": 1.0, "correctness": 0.5}', '{"faithfulness": 0.5, "correctness": 0}']
    settings = load_settings(index_dir=sample_index_dir, log_dir=tmp_path / "logs")
    questions = [GoldQuestion("j1", "What was the outcome of complaint 23 009 429?", ("23 009 429",),
                              ("Closed after initial enquiries",), "lookup", "It was closed after initial enquiries."),
                 GoldQuestion("j2", "Where should a father take concerns about a Hampshire social worker?",
                              ("20 011 198",), ("Social Work England",), "specific", None)]
    judge = Judge(judge_url, "judge-model")
    with open_assistant(settings, embedder) as assistant:
        samples, records = evaluate_assistant(assistant, questions, progress=False, judge=judge)
    assert [s.judge for s in samples] == [{"faithfulness": 1.0, "correctness": 0.5},
                                          {"faithfulness": 0.5, "correctness": None}]  # no reference, no score
    report, _ = build_report("judged", samples, records, settings, None, None, n_resamples=100, judge=judge)
    overall = report["metrics"]["overall"]
    assert overall["judge_faithfulness"]["value"] == 0.75 and overall["judge_correctness"]["n"] == 1
    assert report["judge"]["model"] == "judge-model"


def test_a_judge_that_cannot_be_reached_is_a_clear_error():
    judge = Judge("http://127.0.0.1:9/v1", "judge-model", timeout_s=2)
    with pytest.raises(BackendError, match="judge endpoint http://127.0.0.1:9/v1 failed"):
        judge.score("q", "a", [], None)


def test_unparseable_replies_give_no_scores():
    assert parse_scores("I think it is good") == {"faithfulness": None, "correctness": None}
    assert parse_scores('{"faithfulness": 7, "correctness": "high"}') == {"faithfulness": 1.0, "correctness": None}
