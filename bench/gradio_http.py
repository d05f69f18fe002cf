"""A light Gradio client over plain HTTP for the load benchmark: what a browser tab sends, and nothing more.

gradio_client is the reference client, but it spends about 110 ms of CPU per answer on this machine (a new httpx
client with its own TLS context for each call's POST and event stream, a cancel-watcher thread and a 20 ms
status poll per call, a deep copy per streamed update). On two cores with 20 sessions that is two thirds of the
machine, so it measured the client, not the app (bench/results/load-cluster-*.json, `cpu_seconds_during_run`).
This client keeps one connection pool per session and, per call, does what the browser does:

    POST {api}/queue/join  {"data", "fn_index", "session_hash", ...}  -> {"event_id"}
    GET  {api}/queue/data?session_hash=...  (server-sent events until this event's process_completed)

Gradio sends a generator's updates as diffs but its `process_completed` message carries the final outputs in full
(gradio/blocks.py `handle_streaming_diffs(final=True)`), so nothing is patched here; the first
`process_generating` message only times the first update. Inputs and outputs are in the shape gradio_client uses
(gr.State inputs left out and sent as null, State/layout outputs dropped), so the same judging applies to both.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import httpx

# Component types gradio_client leaves out of an endpoint's outputs (gradio_client.utils.SKIP_COMPONENTS, the ones
# this app's endpoints can have).
SKIPPED_OUTPUTS = frozenset({"state", "row", "column", "tabs", "tab", "tabitem", "box", "form", "accordion",
                             "group", "interpretation", "dataset", "sidebar"})


class AppError(RuntimeError):
    """The app's function raised, or the queue reported an error for the event."""


@dataclass(frozen=True)
class Endpoint:
    """One named event of the app: its function index, which inputs are gr.State (sent as null; the server keeps
    the session's value) and which outputs a caller sees."""

    api_name: str
    fn_index: int
    state_inputs: tuple[int, ...]
    kept_outputs: tuple[int, ...]

    def payload(self, args: Sequence[Any]) -> list[Any]:
        """The caller's arguments with null at every state input's position."""
        data = list(args)
        for position in self.state_inputs:
            data.insert(position, None)
        return data

    def visible(self, outputs: Sequence[Any]) -> tuple[Any, ...]:
        """The outputs a caller sees, in order."""
        return tuple(outputs[i] for i in self.kept_outputs if i < len(outputs))


def endpoints_of(config: Mapping[str, Any]) -> dict[str, Endpoint]:
    """Named endpoints ("/ask", ...) from the app's /config."""
    types = {c["id"]: (c.get("type"), c.get("skip_api")) for c in config.get("components", [])}

    def skipped(component: int) -> bool:
        kind, skip = types.get(component, (None, None))
        return bool(skip) if skip is not None else kind in SKIPPED_OUTPUTS

    out = {}
    for i, dep in enumerate(config.get("dependencies", [])):
        name = dep.get("api_name")
        if not name:
            continue
        out["/" + name.lstrip("/")] = Endpoint(
            "/" + name.lstrip("/"), dep.get("id", i),
            tuple(p for p, c in enumerate(dep.get("inputs", [])) if types.get(c, (None,))[0] == "state"),
            tuple(p for p, c in enumerate(dep.get("outputs", [])) if not skipped(c)))
    return out


class HttpSession:
    """One browser-like session against one app: its own session hash (so its own chat state on the server) and
    connection pool. Not thread-safe: one thread per session, as a browser tab has one user."""

    def __init__(self, url: str, auth: tuple[str, str] | None = None, connect_timeout: float = 30.0):
        self.url = url.rstrip("/") + "/"
        self.session_hash = uuid.uuid4().hex[:11]
        self._http = httpx.Client(timeout=httpx.Timeout(connect_timeout), follow_redirects=True,
                                  limits=httpx.Limits(max_connections=2, max_keepalive_connections=2))
        try:
            if auth:
                r = self._http.post(urljoin(self.url, "login"), data={"username": auth[0], "password": auth[1]})
                if r.status_code in (400, 401):  # Gradio answers a wrong password with 400
                    raise AppError(f"could not log in to {self.url}: the username or password was refused")
                r.raise_for_status()
            r = self._http.get(urljoin(self.url, "config"))
            r.raise_for_status()
            config = r.json()
        except BaseException:
            self._http.close()
            raise
        self.api = urljoin(self.url, config.get("api_prefix", "/gradio_api").strip("/") + "/")
        self.endpoints = endpoints_of(config)

    def call(self, api_name: str, args: Sequence[Any], timeout: float) -> tuple[tuple[Any, ...], float | None]:
        """(visible outputs, seconds to the first streamed update) of one event; TimeoutError when no reply within
        `timeout` seconds (the event is then cancelled on the server), AppError when the app reports an error."""
        endpoint = self.endpoints.get("/" + api_name.lstrip("/"))
        if endpoint is None:
            raise AppError(f"the app has no endpoint {api_name!r} (it has {', '.join(sorted(self.endpoints))})")
        started = time.perf_counter()
        deadline = started + timeout
        try:
            r = self._http.post(urljoin(self.api, "queue/join"), timeout=timeout,
                                json={"data": endpoint.payload(args), "fn_index": endpoint.fn_index,
                                      "session_hash": self.session_hash, "event_data": None, "trigger_id": None})
        except httpx.TimeoutException:
            raise TimeoutError(f"no reply within {timeout:g} s") from None
        if r.status_code == 503:
            raise AppError("the app's queue is full")
        r.raise_for_status()
        event_id = r.json()["event_id"]
        first = None
        try:
            remaining = max(0.001, deadline - time.perf_counter())
            with self._http.stream("GET", urljoin(self.api, "queue/data"), params={"session_hash": self.session_hash},
                                   timeout=httpx.Timeout(remaining)) as response:
                response.raise_for_status()
                for line in response.iter_lines():
                    if time.perf_counter() > deadline:  # a reply after the timeout is a timeout too
                        raise TimeoutError(f"no reply within {timeout:g} s")
                    if not line.startswith("data:"):
                        continue
                    message = json.loads(line[5:])
                    kind = message.get("msg")
                    if kind == "unexpected_error" or message.get("message") == "Server stopped unexpectedly.":
                        raise AppError(f"the app reported: {message.get('message') or kind}")
                    if message.get("event_id") != event_id:
                        continue  # heartbeats, and messages of this session's other events
                    if kind == "process_generating" and first is None:
                        first = time.perf_counter() - started
                    elif kind == "process_completed":
                        output = message.get("output") or {}
                        if not message.get("success", True) or "error" in output:
                            raise AppError(f"the app raised: {output.get('error') or output}")
                        return endpoint.visible(output.get("data", [])), first
        except httpx.TimeoutException:
            self._cancel(endpoint, event_id)
            raise TimeoutError(f"no reply within {timeout:g} s") from None
        except TimeoutError:
            self._cancel(endpoint, event_id)
            raise
        raise AppError("the app closed the event stream before the answer was complete")

    def _cancel(self, endpoint: Endpoint, event_id: str) -> None:
        try:
            self._http.post(urljoin(self.api, "cancel"), timeout=5,
                            json={"fn_index": endpoint.fn_index, "session_hash": self.session_hash,
                                  "event_id": event_id})
        except httpx.HTTPError:
            pass  # the server may be gone; the caller already reports the timeout

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HttpSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
