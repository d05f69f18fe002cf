"""A misbehaving OpenAI-compatible endpoint on loopback, for the LLM fault tests (not a test module)."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODES = ("slow", "error-500", "invalid-json", "invalid-sse", "no-citations", "fabricated", "answer")


def free_port() -> int:
    """A loopback port nothing listens on (for "endpoint down")."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sse(text: str) -> bytes:
    """A streamed chat completion of text, word by word, as OpenAI servers send it."""
    events = []
    for i, piece in enumerate(text.split(" ")):
        chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "fake",
                 "choices": [{"index": 0, "delta": {"role": "assistant", "content": piece + " "} if i == 0 else
                              {"content": piece + " "}, "finish_reason": None}]}
        events.append(f"data: {json.dumps(chunk)}\n\n")
    done = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "fake",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    events.append(f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n")
    return "".join(events).encode()


class FakeLLMServer:
    """Serves /v1/chat/completions badly in one of MODES; bound to 127.0.0.1 only; use as a context manager."""

    def __init__(self, mode: str, reply: str = ""):
        if mode not in MODES:
            raise ValueError(mode)
        self.mode = mode
        self.reply = reply
        self.requests: list[dict] = []
        self.release = threading.Event()  # ends a "slow" wait at shutdown
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output clean
                pass

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                    pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
                try:
                    owner.requests.append(json.loads(body))
                except ValueError:
                    owner.requests.append({})
                mode = owner.mode
                if mode == "slow":
                    owner.release.wait(30)
                    return self._send(200, sse("Too late [23 009 429 ¶7]."), "text/event-stream")
                if mode == "error-500":
                    return self._send(500, b'{"error": {"message": "model crashed", "type": "server_error"}}',
                                      "application/json")
                if mode == "invalid-json":
                    return self._send(200, b'{"choices": [ {"message": oops this is not json', "application/json")
                if mode == "invalid-sse":
                    return self._send(200, b"data: {\"choices\": [{\"delta\": {\"content\": \n\ndata: [DONE]\n\n",
                                      "text/event-stream")
                return self._send(200, sse(owner.reply), "text/event-stream")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name=f"fake-llm-{mode}", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> FakeLLMServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)
