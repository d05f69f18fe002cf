"""Load: concurrent chat sessions against the app on loopback (bench/load.py) finish with no errors, through the
plain-HTTP client (bench/gradio_http.py, the default) and through gradio_client; the two see the same replies.
Latency is reported (printed with -s, and in the JSON), never asserted: it depends on what else the machine runs."""

from __future__ import annotations

import json

import pytest

from bench.gradio_http import AppError, HttpSession, endpoints_of
from bench.load import CONVERSATIONS, call, format_table, judge_reply, main, run_load

QUESTION = "When does the ICO handle rectification?"


def message(role, text):
    return {"role": role, "content": [{"type": "text", "text": text}]}


def chat_of(reply):
    return [message("user", "q"), message("assistant", reply)]


SOURCES = '<section class="src-turn active"><article class="src-card cited" id="src-1-23-009-429"></article></section>'


@pytest.mark.parametrize(("reply", "expected"), [
    ("The ICO is better placed. [23 009 429](#src-1-23-009-429)", "cited"),
    ("The indexed decisions don't answer this question.\n\nNearest decisions (may be related): ...", "abstained"),
    ("No indexed decisions match the filters (council: X), so nothing was searched.", "abstained"),
    ("The ICO is better placed.", "no citation and not abstained"),
    ("The ICO is better placed. [20 011 198](#src-1-20-011-198)", "citation 20 011 198 points at no source card"),
    ("⚠️ Filter since='2024-13-45' is not a date", "error message shown"),
    ("", "empty answer"),
    ("_Searching the decisions…_", "empty answer"),
])
def test_judge_reply_counts_what_staff_would_call_a_failure(reply, expected):
    outcome, error = judge_reply(chat_of(reply), SOURCES, 2)
    if expected in ("cited", "abstained"):
        assert (outcome, error) == (expected, None)
    else:
        assert outcome == "error" and error.startswith(expected), error


def test_judge_reply_catches_lost_history_and_answered_off_topic():
    reply = "The ICO is better placed. [23 009 429](#src-1-23-009-429)"
    assert "expected 4" in judge_reply(chat_of(reply), SOURCES, 4)[1]
    assert "off-topic" in judge_reply(chat_of(reply), SOURCES, 2, off_topic=True)[1]


@pytest.mark.parametrize("url", ["http://example.com:7860/", "http://10.0.0.5:7860/", "http://127.0.0.1.nip.io/",
                                 "ftp://127.0.0.1/", "127.0.0.1:7860"])
def test_only_loopback_targets(url, tmp_path, capsys):
    out = tmp_path / "load.json"
    assert main(["--url", url, "--seconds", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and ("loopback" in err or "http(s) URL" in err) and "Traceback" not in err
    assert not out.exists()


def test_sessions_are_spread_round_robin_over_several_targets_and_all_are_recorded(tmp_path):
    """Nothing listens on these ports: every session fails to connect, at once, to the target it was given."""
    from bench.load import free_port

    urls = [f"http://127.0.0.1:{free_port()}/", f"http://127.0.0.1:{free_port()}"]
    out = tmp_path / "load.json"
    assert main(["--url", urls[0], "--url", urls[1], "--sessions", "3", "--seconds", "1", "--timeout", "5",
                 "--out", str(out)]) == 1
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["urls"] == [urls[0], urls[1] + "/"] and data["url"] == urls[0]
    assert [(t["url"], t["sessions"], t["errors"]) for t in data["targets"]] == [(urls[0], 2, 2), (urls[1] + "/", 1, 1)]
    assert {e["endpoint"] for e in data["error_details"]} == {"connect"}
    assert main(["--url", urls[0], "--url", urls[0], "--seconds", "1", "--out", str(out)]) == 2


@pytest.mark.parametrize("args", [["--sessions", "0"], ["--seconds", "-5"], ["--timeout", "abc"],
                                  ["--url", "http://127.0.0.1:7860/", "--index-dir", "x"]])
def test_bad_arguments_are_a_usage_error(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2 and "usage:" in capsys.readouterr().err


def test_endpoints_are_read_from_the_apps_config_as_gradio_client_reads_them():
    """State inputs are sent as null in their place; State and layout outputs are not shown to the caller."""
    config = {"components": [{"id": 1, "type": "textbox"}, {"id": 2, "type": "state"}, {"id": 3, "type": "chatbot"},
                             {"id": 4, "type": "html", "skip_api": True}, {"id": 5, "type": "dropdown"}],
              "dependencies": [{"id": 7, "api_name": "ask", "inputs": [1, 5, 2], "outputs": [1, 3, 2, 4, 5]},
                               {"id": 8, "api_name": None, "inputs": [], "outputs": [3]},
                               {"id": 9, "api_name": "clear", "inputs": [], "outputs": [2, 3]}]}
    found = endpoints_of(config)
    assert sorted(found) == ["/ask", "/clear"]
    ask = found["/ask"]
    assert ask.fn_index == 7 and ask.payload(["q", "Hampshire"]) == ["q", "Hampshire", None]
    assert ask.visible(["", ["chat"], "state", "<p>", "d"]) == ("", ["chat"], "d")
    assert found["/clear"].visible(["state", ["chat"]]) == (["chat"],)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["http", "gradio_client"])
def test_a_request_is_bounded_by_its_timeout(app_server, kind):
    from bench.load import connect, disconnect

    client = connect(kind, app_server.url, None)
    try:
        # 0.1 ms: no answer comes back that fast, however quick the app is on this machine
        with pytest.raises(TimeoutError, match="no reply within"):
            call(client, [QUESTION, "", "", "", None, None], "/ask", 0.0001)
        # the session still works afterwards (the timed-out event was cancelled, not left in its way)
        assert call(client, [QUESTION, "", "", "", None, None], "/ask", 60)[0][1][-1]["role"] == "assistant"
    finally:
        disconnect(client)


@pytest.mark.slow
def test_the_http_client_sees_what_gradio_client_sees(app_server):
    """The same two-turn conversation through both clients: the same chat, sources panel and follow-up history,
    so judge_reply judges both alike; and the HTTP client reports what the app refuses."""
    from gradio_client import Client

    reference = Client(app_server.url, verbose=False, download_files=False)
    try:
        with HttpSession(app_server.url) as http:
            for turn, question in enumerate([QUESTION, "Who is better placed to deal with it?"], 1):
                args = [question, "", "", "", None, None]
                expected = reference.predict(*args, api_name="/ask")
                got, first = call(http, args, "/ask", 60)
                assert len(got) == len(expected) == 4
                assert got[1] == expected[1] and got[2] == expected[2], turn  # chat and sources
                assert judge_reply(got[1], got[2], 2 * turn) == judge_reply(expected[1], expected[2], 2 * turn)
                assert first is None or first > 0
            assert len(call(http, [], "/clear", 30)[0][0]) == 0  # the chat is empty again
            with pytest.raises(AppError, match="no endpoint '/nonesuch'"):
                http.call("/nonesuch", [], 5)
            with pytest.raises(AppError, match="the app raised"):
                http.call("/ask", [QUESTION], 30)  # too few inputs: the app refuses the event
    finally:
        reference.close()


@pytest.mark.slow
def test_failures_through_the_app_are_counted(app_server):
    """A bad filter (an error shown in the chat) and a second turn judged as a first both count as errors."""
    from gradio_client import Client

    client = Client(app_server.url, verbose=False, download_files=False)
    try:
        _, chat, sources, _ = client.predict(QUESTION, "", "", "", "2024-13-45", None, api_name="/ask")
        assert judge_reply(chat, sources, 2)[1].startswith("error message shown")
        _, chat, sources, _ = client.predict(QUESTION, "", "", "", None, None, api_name="/ask")
        assert judge_reply(chat, sources, 4) == ("cited", None)
        assert "history lost" in judge_reply(chat, sources, 2)[1]
    finally:
        client.close()


@pytest.mark.slow
def test_twenty_sessions_for_twenty_seconds_without_errors(app_server):
    report = run_load(app_server.url, sessions=20, seconds=20, timeout=60, mode="in-process")
    data = report.to_dict()
    print("\n" + format_table(data))
    assert data["errors"] == 0, json.dumps(data["error_details"][:5], indent=1)
    assert data["client"] == "http"  # the default: a client that leaves the cores to the app
    assert not report.unfinished
    assert [s.number for s in report.sessions if s.asks_done < 1] == []
    asks = [r for r in report.requests if r.endpoint == "ask"]
    # 20 sessions start at different conversations: follow-ups, filtered and off-topic questions were all asked
    assert {r.conversation for r in asks} == {c.name for c in CONVERSATIONS}
    assert any(r.turn == 2 for r in asks) and any(r.filters for r in asks)
    assert all(r.outcome == "abstained" for r in asks if r.conversation == "off-topic")
    assert data["endpoints"]["ask"]["latency_s"]["p95"] is not None  # reported, not asserted


@pytest.mark.slow
def test_command_line_starts_the_app_itself_and_writes_json(app_index_dir, embedder, tmp_path, capsys):
    out = tmp_path / "results" / "load.json"
    code = main(["--index-dir", str(app_index_dir), "--sessions", "3", "--seconds", "3", "--out", str(out),
                 "--client", "gradio_client"], embedder=embedder)
    printed = capsys.readouterr().out
    assert code == 0, printed
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["mode"] == "in-process" and data["url"].startswith("http://127.0.0.1:")
    assert data["client"] == "gradio_client"
    assert data["errors"] == 0 and data["sessions"] == 3 and data["endpoints"]["ask"]["requests"] >= 3
    assert data["machine"]["cpu"]["model"] and "flags" in data["machine"]["cpu"]  # figures name their CPU
    assert data["machine"]["cores_logical"] >= 1 and set(data["machine"]["load_average_start"]) == {"1m", "5m", "15m"}
    assert data["app"]["index_dir"] == str(app_index_dir) and "**Decisions:** 5" in data["app"]["status"]
    assert "p95 s" in printed and "errors: 0" in printed
