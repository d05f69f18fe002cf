"""`python -m bench load`: concurrent chat sessions against the app on loopback.

    python -m bench load --index-dir /tmp/loadidx --sessions 20 --seconds 60 --out bench/results/load.json
    python -m bench load --url http://127.0.0.1:7860/         # an app already running (make run)
    python -m bench load --url http://127.0.0.1:7861/ --url http://127.0.0.1:7862/   # several instances

Without --url the app is started in this process on a free 127.0.0.1 port over --index-dir (default: the configured
index), as tests/app/conftest.py does. Each session is its own client with its own session hash (its own chat
history): by default bench/gradio_http.py, plain HTTP to Gradio's queue as a browser tab sends it, which costs the
machine little; `--client gradio_client` uses the reference client instead (about 110 ms of CPU per answer on a
2-core machine, where it takes cores from the app). Each session works through a rotating list of conversations:
follow-ups that need the history, filtered questions, one off-topic question. A request is an error when it raises
or times out, when the answer is empty or an error message, when an answer has no citation and did not abstain, when
the off-topic question is answered, or when the chat does not hold exactly this conversation's turns. Prints a table
and writes JSON with the latencies and the machine's load. Only loopback targets are accepted.

Several --url targets (the instances of `make cluster`, `make bench-cluster`): session i talks to target
i mod N throughout, so the sessions are spread round-robin; the JSON lists every target ("urls") with its own
counts and latencies ("targets").

Exit codes: 0 no errors, 1 at least one error, 2 usage, configuration or index problem.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import platform
import re
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from app import is_loopback
from bench.gradio_http import HttpSession
from core.errors import ConfigError, IndexStateError
from rag.assistant import ABSTAIN_TEXT

if TYPE_CHECKING:
    from gradio_client import Client

    from core.settings import Settings
    from ingest.embed import Embedder

log = logging.getLogger(__name__)
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = PROJECT_ROOT / "bench" / "results" / "load.json"
# What the assistant says when the filters leave nothing to search (rag/assistant.py); an abstention too.
FILTERS_MATCH_NOTHING = "No indexed decisions match the filters"
# A citation marker as the UI renders it: a Markdown link to a source card, [23 009 429 ¶7](#src-1-...).
MARKER_LINK = re.compile(r"\[([^\[\]]+)\]\(#(src-[\w-]+)\)")
DROPDOWNS = ("council", "category", "outcome")
# "http": bench/gradio_http.py, what a browser tab sends (the default: it costs the machine little);
# "gradio_client": the reference client (about 110 ms of CPU per answer here, so it loads the machine itself).
ClientKind = Literal["http", "gradio_client"]
CLIENT_KINDS: tuple[ClientKind, ...] = ("http", "gradio_client")


# --- what the sessions ask ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    """One question of a conversation, its filters (UI names) and whether it must abstain."""

    question: str
    filters: Mapping[str, str] = field(default_factory=dict)
    off_topic: bool = False


@dataclass(frozen=True)
class Conversation:
    """Questions asked one after another in one chat, then "New conversation"."""

    name: str
    steps: tuple[Step, ...]


CONVERSATIONS: tuple[Conversation, ...] = (
    Conversation("ico-rectification", (
        Step("When does the ICO handle rectification?"),
        Step("What about Hampshire?"),  # needs the first question from the history
    )),
    Conversation("payment", (
        Step("Did the council pay anything to the complainant?"),
        Step("How long did it have to make the payment?"),
    )),
    Conversation("social-worker", (
        Step("Where should a father take concerns about a social worker's professionalism?",
             {"council": "Hampshire County Council"}),
    )),
    Conversation("cpc-minutes", (
        Step("Why did the Ombudsman not investigate the complaint about child protection conference minutes?"),
        Step("Who is better placed to deal with it?"),
    )),
    Conversation("off-topic", (
        Step("What is the weather forecast for Manchester this weekend?", off_topic=True),
    )),
    Conversation("data-sharing", (
        Step("What did the Ombudsman decide about a council sharing information with a child's mother?",
             {"outcome": "Closed after initial enquiries", "since": "2020-01-01"}),
        Step("Was there any fault?"),
    )),
    Conversation("remedies", (
        Step("What remedies were agreed?", {"council": "Staffordshire County Council"}),
    )),
)


def resolve_filters(wanted: Mapping[str, str], choices: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """The step's filters as the app can accept them: a council, category or outcome the app does not offer is
    replaced by the first one it does (another index), or dropped when it offers none."""
    out = {}
    for key, value in wanted.items():
        if key in DROPDOWNS:
            offered = [c for c in choices.get(key, ()) if c]
            if value not in offered:
                if not offered:
                    continue
                value = offered[0]
        out[key] = value
    return out


def choices_from_status(outputs: Sequence[Any]) -> dict[str, list[str]]:
    """Dropdown values from the /status endpoint's outputs (status Markdown, then council/category/outcome
    updates holding [label, value] pairs)."""
    found: dict[str, list[str]] = {}
    for key, update in zip(DROPDOWNS, list(outputs)[1:]):
        pairs = update.get("choices", []) if isinstance(update, dict) else []
        found[key] = [p[1] if isinstance(p, (list, tuple)) else str(p) for p in pairs]
    return found


# --- judging one reply ----------------------------------------------------------------------------------------
def text_of(message: Mapping[str, Any]) -> str:
    """Plain text of a chat message (Gradio 6 gives a list of parts)."""
    content = message.get("content")
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content or "")


def judge_reply(chat: Sequence[Mapping[str, Any]], sources_html: str, expected_messages: int,
                off_topic: bool = False) -> tuple[str, str | None]:
    """(outcome, error) for the chat and sources panel after an ask: outcome "cited", "abstained" or "error"."""
    if not isinstance(chat, list) or len(chat) != expected_messages:
        got = len(chat) if isinstance(chat, list) else type(chat).__name__
        return "error", f"chat holds {got} messages, expected {expected_messages} (history lost or mixed up)"
    reply = text_of(chat[-1]).strip() if chat[-1].get("role") == "assistant" else ""
    if not reply or "Searching the decisions" in reply:
        return "error", "empty answer"
    if reply.startswith("⚠️"):
        return "error", f"error message shown: {reply[:200]}"
    abstained = ABSTAIN_TEXT in reply or FILTERS_MATCH_NOTHING in reply
    links = MARKER_LINK.findall(reply)
    dangling = [label for label, target in links if f'id="{target}"' not in (sources_html or "")]
    if dangling:
        return "error", f"citation {dangling[0]} points at no source card"
    if off_topic and links:
        return "error", "off-topic question answered with citations"
    if links:
        return "cited", None
    if abstained:
        return "abstained", None
    return "error", f"no citation and not abstained: {reply[:200]}"


# --- one session ------------------------------------------------------------------------------------------
@dataclass
class Request:
    """One call to the app: which endpoint, when (seconds from the start), how long, and what came back."""

    session: int
    endpoint: str
    start_s: float
    latency_s: float
    first_update_s: float | None = None
    conversation: str | None = None
    turn: int | None = None
    question: str | None = None
    filters: dict[str, str] | None = None
    outcome: str = "ok"
    error: str | None = None


@dataclass
class Session:
    """What one client did: its requests, and whether it stopped by itself before the run's hard limit."""

    number: int
    url: str = ""
    requests: list[Request] = field(default_factory=list)
    finished: bool = False
    app_status: str | None = None

    @property
    def asks_done(self) -> int:
        """Questions that came back without an error."""
        return sum(1 for r in self.requests if r.endpoint == "ask" and r.error is None)


class ReferenceSession:
    """gradio_client's Client behind HttpSession's interface (call, close), so a session does not care which it has.
    No httpx timeout on the Client: its one event stream serves every call and must outlive a slow one; call()
    bounds each request instead."""

    def __init__(self, url: str, auth: tuple[str, str] | None):
        from gradio_client import Client

        self._client: Client = Client(url, verbose=False, auth=auth, download_files=False, analytics_enabled=False)

    def call(self, api_name: str, args: Sequence[Any], timeout: float) -> tuple[Any, float | None]:
        """(result, seconds to the first streamed update); TimeoutError after `timeout` seconds."""
        started = time.perf_counter()
        job = self._client.submit(*args, api_name=api_name)
        first = None
        deadline = started + timeout
        while not job.done():
            if first is None and job.outputs():
                first = time.perf_counter() - started
            if time.perf_counter() > deadline:
                job.cancel()
                raise TimeoutError(f"no reply within {timeout:g} s")
            time.sleep(0.02)
        return job.result(timeout=0), first

    def close(self) -> None:
        self._client.close()
        self._client.executor.shutdown(wait=False, cancel_futures=True)


LoadClient = HttpSession | ReferenceSession


def call(client: LoadClient, args: Sequence[Any], api_name: str, timeout: float) -> tuple[Any, float | None]:
    """(result, seconds to the first streamed update) of one call; TimeoutError after `timeout` seconds."""
    return client.call(api_name, args, timeout)


def connect(kind: ClientKind, url: str, auth: tuple[str, str] | None) -> LoadClient:
    """A new session of the given client kind (reads the app's config; logs in when auth is given)."""
    return HttpSession(url, auth) if kind == "http" else ReferenceSession(url, auth)


def disconnect(client: LoadClient) -> None:
    client.close()


def run_session(number: int, url: str, t0: float, stop_at: float, timeout: float, auth: tuple[str, str] | None,
                session: Session, kind: ClientKind = "http") -> None:
    """Connect, load the page's status (as a browser does), then ask conversations until stop_at."""

    def record(endpoint: str, started: float, **fields: Any) -> Request:
        r = Request(number, endpoint, round(started - t0, 3), round(time.perf_counter() - started, 3), **fields)
        session.requests.append(r)
        return r

    started = time.perf_counter()
    try:
        client = connect(kind, url, auth)
    except Exception as exc:  # noqa: BLE001 - any failure to connect is what this run reports
        record("connect", started, outcome="error", error=f"{type(exc).__name__}: {exc}")
        session.finished = True
        return
    record("connect", started)
    try:
        started = time.perf_counter()
        try:
            outputs, _ = call(client, [], "/status", timeout)
            choices = choices_from_status(outputs)
            session.app_status = outputs[0] if isinstance(outputs[0], str) else None
            record("status", started)
        except Exception as exc:  # noqa: BLE001
            record("status", started, outcome="error", error=f"{type(exc).__name__}: {exc}")
            choices = {}
        position = number  # sessions start at different conversations, so different questions are in flight
        while time.perf_counter() < stop_at:
            conversation = CONVERSATIONS[position % len(CONVERSATIONS)]
            position += 1
            for turn, step in enumerate(conversation.steps, 1):
                if time.perf_counter() >= stop_at:
                    break
                filters = resolve_filters(step.filters, choices)
                args = [step.question] + [filters.get(k, "") for k in DROPDOWNS] + \
                       [filters.get("since"), filters.get("until")]
                started = time.perf_counter()
                fields = {"conversation": conversation.name, "turn": turn, "question": step.question,
                          "filters": filters}
                try:
                    (_, chat, sources, _), first = call(client, args, "/ask", timeout)
                except Exception as exc:  # noqa: BLE001
                    record("ask", started, outcome="error", error=f"{type(exc).__name__}: {exc}", **fields)
                    break  # the chat is in an unknown state; start a new conversation
                outcome, error = judge_reply(chat, sources, 2 * turn, step.off_topic)
                record("ask", started, first_update_s=None if first is None else round(first, 3),
                       outcome=outcome, error=error, **fields)
            started = time.perf_counter()
            try:
                call(client, [], "/clear", timeout)
                record("clear", started)
            except Exception as exc:  # noqa: BLE001
                record("clear", started, outcome="error", error=f"{type(exc).__name__}: {exc}")
                break  # the next conversation would start on top of this one
    finally:
        disconnect(client)
        session.finished = True


# --- the run ------------------------------------------------------------------------------------------------
def check_target(url: str) -> str:
    """The URL with a trailing slash, or ConfigError unless it is http(s) on a loopback address."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        raise ConfigError(f"--url {url!r} is not a valid URL ({exc}); write it like http://127.0.0.1:7860/") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigError(f"--url {url!r} is not an http(s) URL; write it like http://127.0.0.1:7860/")
    if not is_loopback(host):
        raise ConfigError(f"Refusing to send load to {host}: only loopback targets (127.0.0.1, ::1, localhost) are "
                          "allowed, so this cannot flood someone else's server. Start the app on this machine "
                          "(make run) and use --url http://127.0.0.1:7860/, or leave out --url to start one here.")
    return url.strip().rstrip("/") + "/"


def machine_state() -> dict[str, Any]:
    """Load average and free memory now (other work on the machine skews every latency)."""
    import psutil

    one, five, fifteen = os.getloadavg()
    return {"load_average": {"1m": round(one, 2), "5m": round(five, 2), "15m": round(fifteen, 2)},
            "memory_available_gib": round(psutil.virtual_memory().available / 2**30, 1)}


def percentiles(values: Sequence[float]) -> dict[str, float | None]:
    """p50, p95, max and mean in seconds (None without values)."""
    import numpy as np

    if not values:
        return {"p50": None, "p95": None, "max": None, "mean": None}
    p50, p95 = np.percentile(values, [50, 95])
    return {"p50": round(float(p50), 3), "p95": round(float(p95), 3), "max": round(max(values), 3),
            "mean": round(float(np.mean(values)), 3)}


@dataclass
class LoadReport:
    """Everything one run measured; `to_dict()` is what goes into the JSON file."""

    urls: list[str]
    mode: Literal["in-process", "url"]
    sessions: list[Session]
    seconds: float
    timeout: float
    started_at: str
    wall_s: float
    machine_start: dict[str, Any]
    machine_end: dict[str, Any]
    cpu_busy_percent: float
    app: dict[str, Any] = field(default_factory=dict)
    cpu_seconds: dict[str, Any] = field(default_factory=dict)
    client: ClientKind = "http"

    @property
    def url(self) -> str:
        """The first target (the only one, unless several were given)."""
        return self.urls[0]

    @property
    def requests(self) -> list[Request]:
        """Every request of every session, in start order."""
        return sorted((r for s in self.sessions for r in s.requests), key=lambda r: r.start_s)

    def target_stats(self) -> list[dict[str, Any]]:
        """Per target: its sessions, requests, errors, answer latencies and the status it reported."""
        out = []
        for url in self.urls:
            sessions = [s for s in self.sessions if s.url == url]
            asks = [r for s in sessions for r in s.requests if r.endpoint == "ask"]
            out.append({"url": url, "sessions": len(sessions), "requests": sum(len(s.requests) for s in sessions),
                        "errors": sum(1 for s in sessions for r in s.requests if r.error is not None),
                        "answers": sum(s.asks_done for s in sessions),
                        "ask_latency_s": percentiles([r.latency_s for r in asks if r.error is None]),
                        "status": next((s.app_status for s in sessions if s.app_status), None)})
        return out

    @property
    def errors(self) -> list[Request]:
        """Requests that failed (exceptions, timeouts, and replies judge_reply rejects)."""
        return [r for r in self.requests if r.error is not None]

    @property
    def unfinished(self) -> list[int]:
        """Sessions still running when the run's hard limit passed."""
        return [s.number for s in self.sessions if not s.finished]

    def endpoint_stats(self) -> dict[str, dict[str, Any]]:
        """Per endpoint (connect, status, ask, clear): requests, errors, and latency percentiles of the requests
        that succeeded (a timed-out one would only measure the timeout)."""
        out = {}
        for endpoint in ("ask", "connect", "status", "clear"):
            rows = [r for r in self.requests if r.endpoint == endpoint]
            if rows:
                out[endpoint] = {"requests": len(rows), "errors": sum(1 for r in rows if r.error),
                                 "latency_s": percentiles([r.latency_s for r in rows if r.error is None])}
        asks = [r for r in self.requests if r.endpoint == "ask" and r.first_update_s is not None and r.error is None]
        if "ask" in out:
            out["ask"]["first_update_s"] = percentiles([r.first_update_s for r in asks])
            out["ask"]["outcomes"] = {o: sum(1 for r in self.requests if r.endpoint == "ask" and r.outcome == o)
                                      for o in ("cited", "abstained", "error")}
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary, per-session counts, every error and every request."""
        from eval.run import git_state
        from ingest.cpu import cpu_info

        asks = [s.asks_done for s in self.sessions]
        answered = sum(asks)
        return {
            "what": "concurrent chat sessions against the app on loopback (python -m bench load)",
            "client": self.client,
            "url": self.url, "urls": list(self.urls), "mode": self.mode, "started_at": self.started_at,
            "sessions": len(self.sessions), "seconds": self.seconds, "request_timeout_s": self.timeout,
            "wall_s": round(self.wall_s, 2),
            "requests": len(self.requests), "errors": len(self.errors) + len(self.unfinished),
            "answers_per_s": round(answered / self.wall_s, 3) if self.wall_s else None,
            "endpoints": self.endpoint_stats(),
            "answers_per_session": {"min": min(asks, default=0), "max": max(asks, default=0)},
            "unfinished_sessions": self.unfinished,
            "targets": self.target_stats(),
            "machine": {
                "cpu": cpu_info().to_dict(),
                "cores_logical": os.cpu_count(), "cores_physical": _physical_cores(),
                "platform": platform.platform(), "python": platform.python_version(),
                "load_average_start": self.machine_start["load_average"],
                "load_average_end": self.machine_end["load_average"],
                "cpu_busy_percent_during_run": self.cpu_busy_percent,
                "cpu_seconds_during_run": self.cpu_seconds,
                "memory_available_gib_start": self.machine_start["memory_available_gib"],
                "note": "shared machine: other work was running; latencies include it (see load averages)",
            },
            "versions": _versions(), "git": git_state(), "app": self.app,
            "conversations": [{"name": c.name, "steps": [asdict(s) | {"filters": dict(s.filters)} for s in c.steps]}
                              for c in CONVERSATIONS],
            "error_details": [asdict(r) for r in self.errors],
            "requests_log": [asdict(r) for r in self.requests],
        }


def _physical_cores() -> int | None:
    import psutil

    return psutil.cpu_count(logical=False)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("gradio", "gradio_client"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def run_load(url: str | Sequence[str], sessions: int = 20, seconds: float = 60.0, timeout: float = 60.0,
             auth: tuple[str, str] | None = None, mode: Literal["in-process", "url"] = "url",
             client: ClientKind = "http") -> LoadReport:
    """Run `sessions` concurrent chat sessions for `seconds`, each stopping by itself; with several URLs, session
    i talks to url[i mod len(url)] (round-robin). client: which client the sessions use (CLIENT_KINDS)."""
    if client not in CLIENT_KINDS:
        raise ConfigError(f"unknown client {client!r}: use one of {', '.join(CLIENT_KINDS)}")
    import psutil

    urls = [check_target(u) for u in ([url] if isinstance(url, str) else url)]
    if not urls:
        raise ConfigError("no target: give at least one --url")
    if len(set(urls)) != len(urls):
        raise ConfigError(f"a --url is given twice ({' '.join(urls)}): give each instance once")
    machine_start = machine_state()
    cpu = _CpuAccount(urls)
    psutil.cpu_percent(interval=None)  # starts the interval the end reading averages over
    started_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    stop_at = t0 + seconds
    results = [Session(i, urls[i % len(urls)]) for i in range(sessions)]
    threads = [threading.Thread(target=run_session, args=(i, results[i].url, t0, stop_at, timeout, auth, results[i],
                                                                  client),
                                name=f"load-session-{i}", daemon=True) for i in range(sessions)]
    for t in threads:
        t.start()
    # A session starts nothing after stop_at and waits at most `timeout` per call; past this it is reported.
    hard_limit = stop_at + 2 * timeout + 30
    for t in threads:
        t.join(max(0.0, hard_limit - time.perf_counter()))
    wall = time.perf_counter() - t0
    busy = psutil.cpu_percent(interval=None)
    status = next((s.app_status for s in results if s.app_status), None)
    return LoadReport(urls, mode, results, seconds, timeout, started_at, wall, machine_start, machine_state(), busy,
                      app={"status": status}, cpu_seconds=cpu.spent(), client=client)


class _CpuAccount:
    """CPU seconds spent during the run by this load client and by each target app's process (the one listening
    on its loopback port): where the machine's cores went, so a figure limited by the client is seen as such."""

    def __init__(self, urls: Sequence[str]):
        import psutil

        self._client = time.process_time()
        self._apps: dict[str, Any] = {}
        ports = {urlsplit(u).port: u for u in urls}
        try:
            for conn in psutil.net_connections(kind="tcp"):
                if (conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port in ports and conn.pid
                        and conn.pid != os.getpid()):  # an app in this process is counted as the client
                    self._apps[ports[conn.laddr.port]] = psutil.Process(conn.pid)
        except (psutil.Error, OSError) as exc:  # another user's process: its CPU is not ours to read
            log.debug("cannot see the apps' processes: %s", exc)
        self._start = {u: self._of(p) for u, p in self._apps.items()}

    @staticmethod
    def _of(proc: Any) -> float | None:
        import psutil

        try:
            t = proc.cpu_times()
            return t.user + t.system
        except psutil.Error:
            return None

    def spent(self) -> dict[str, Any]:
        apps = {}
        for url, proc in self._apps.items():
            start, end = self._start[url], self._of(proc)
            apps[url] = round(end - start, 2) if start is not None and end is not None else None
        return {"load_client": round(time.process_time() - self._client, 2), "apps": apps}


# --- the app in this process --------------------------------------------------------------------------------
def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def app_in_process(index_dir: Path | None, embedder: Embedder | None = None) -> Iterator[tuple[str, Settings]]:
    """(url, settings) of the app over index_dir on a free 127.0.0.1 port, uploads off, logs in a temporary
    folder; the same build_app/launch path as tests/app/conftest.py. Pass an embedder to share a loaded model."""
    from app import build_app, launch
    from core.settings import load_settings
    from ingest.index import open_index
    from rag.assistant import Assistant

    with tempfile.TemporaryDirectory(prefix="ombuds-load-") as tmp:
        settings = load_settings(index_dir=index_dir, log_dir=Path(tmp) / "logs", host="127.0.0.1",
                                 port=free_port(), allow_upload=False)
        index = open_index(settings, write=False, create=False, embedder=embedder)
        try:
            assistant = Assistant(settings, index)
        except BaseException:
            index.close()
            raise
        try:
            assistant.index.embedder.embed(["warm up"])  # load the model before the clock starts
            demo = build_app(assistant, settings)
            launch(demo, settings, prevent_thread_lock=True, quiet=True)
            try:
                yield f"http://127.0.0.1:{settings.port}/", settings
            finally:
                demo.close()
        finally:
            assistant.close()


# --- output -------------------------------------------------------------------------------------------------
def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def format_table(report: Mapping[str, Any]) -> str:
    """The run as a short text table with the machine's load beside it."""
    targets = " + ".join(report.get("urls") or [report["url"]])
    lines = [f"{report['sessions']} sessions ({report.get('client', 'gradio_client')} client) for "
             f"{report['seconds']:g} s against {targets} ({report['mode']}); "
             f"wall {report['wall_s']:.1f} s",
             f"{'endpoint':<9}{'requests':>9}{'errors':>8}{'p50 s':>8}{'p95 s':>8}{'max s':>8}{'mean s':>8}"]
    for name, row in report["endpoints"].items():
        lat = row["latency_s"]
        lines.append(f"{name:<9}{row['requests']:>9}{row['errors']:>8}{_s(lat['p50']):>8}{_s(lat['p95']):>8}"
                     f"{_s(lat['max']):>8}{_s(lat['mean']):>8}")
    ask = report["endpoints"].get("ask")
    if ask:
        first = ask["first_update_s"]
        outcomes = ask["outcomes"]
        lines.append(f"answers: {report['answers_per_s']:.2f}/s; {outcomes['cited']} cited, "
                     f"{outcomes['abstained']} abstained; per session {report['answers_per_session']['min']}-"
                     f"{report['answers_per_session']['max']}; first update (queue wait) p50 {_s(first['p50'])} s, "
                     f"p95 {_s(first['p95'])} s")
    if len(report.get("targets", [])) > 1:
        for t in report["targets"]:
            lat = t["ask_latency_s"]
            lines.append(f"  {t['url']}: {t['sessions']} sessions, {t['answers']} answers, {t['errors']} errors, "
                         f"ask p50 {_s(lat['p50'])} s, p95 {_s(lat['p95'])} s")
    m = report["machine"]
    la0, la1 = m["load_average_start"], m["load_average_end"]
    cpu_model = (m.get("cpu") or {}).get("model", "CPU not recorded")
    lines.append(f"machine: {cpu_model}, {m['cores_logical']} cores; load average (1 min) {la0['1m']:.2f} at start, "
                 f"{la1['1m']:.2f} at end; CPU busy {m['cpu_busy_percent_during_run']:.0f}% during the run")
    cpu = m.get("cpu_seconds_during_run") or {}
    if cpu:
        answered = sum(t["answers"] for t in report.get("targets", [])) or None
        apps = [v for v in cpu.get("apps", {}).values() if v is not None]
        per = f" ({1000 * sum(apps) / answered:.0f} ms of app CPU per answer)" if apps and answered else ""
        lines.append(f"CPU seconds during the run: load client {cpu['load_client']:.1f}, "
                     + (f"app processes {sum(apps):.1f}{per}" if apps else "app in this process"))
    lines.append(f"errors: {report['errors']}")
    for e in report["error_details"][:10]:
        lines.append(f"  session {e['session']} {e['endpoint']} at {e['start_s']:.1f} s: {e['error']}")
    if report["unfinished_sessions"]:
        lines.append(f"  sessions still running at the hard limit: {report['unfinished_sessions']}")
    return "\n".join(lines)


def write_json(data: Mapping[str, Any], path: Path) -> None:
    """Write the report, creating the folder."""
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# --- command line -------------------------------------------------------------------------------------------
def _in_range(kind: Callable[[str], float], low: float, high: float) -> Callable[[str], Any]:
    def parse(value: str) -> Any:
        try:
            n = kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
        if not low <= n <= high:
            raise argparse.ArgumentTypeError(f"{value} is out of range: use {low:g} to {high:g}")
        return n
    return parse


def build_parser(prog: str = "python -m bench load") -> argparse.ArgumentParser:
    """Arguments of the load run."""
    p = argparse.ArgumentParser(prog=prog, description="Concurrent chat sessions through gradio_client against "
                                "the app on loopback; prints latency percentiles and writes JSON.")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--url", action="append", help="a running app on this machine, e.g. "
                        "http://127.0.0.1:7860/ (make run); repeat it for several instances (sessions round-robin)")
    target.add_argument("--index-dir", type=Path,
                        help="start the app in this process over this index (default: the configured index)")
    p.add_argument("--sessions", type=_in_range(int, 1, 200), default=20,
                   help="concurrent sessions (1-200, default 20)")
    p.add_argument("--seconds", type=_in_range(float, 1, 3600), default=60.0,
                   help="start new questions for this long (1-3600, default 60)")
    p.add_argument("--timeout", type=_in_range(float, 1, 600), default=60.0,
                   help="seconds one request may take before it counts as an error (1-600, default 60)")
    p.add_argument("--client", choices=CLIENT_KINDS, default="http",
                   help="http (default): plain HTTP to Gradio's queue, as a browser tab does, costing the machine "
                   "little; gradio_client: the reference client (about 110 ms of CPU per answer, so on a small machine "
                   "it competes with the app for the cores)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON report (default bench/results/load.json)")
    return p


def main(argv: list[str] | None = None, *, embedder: Embedder | None = None,
         prog: str = "python -m bench load") -> int:
    """Entry point; `embedder` lets a caller share an already loaded embedding model with the in-process app."""
    from core.settings import apply_offline_environment, load_settings

    apply_offline_environment()
    args = build_parser(prog).parse_args(argv)
    try:
        from app import auth_for

        if args.url:
            urls = [check_target(u) for u in args.url]
            auth = auth_for(load_settings())  # the app's login, when one is configured
            print(f"load: {args.sessions} sessions for {args.seconds:g} s against {' + '.join(urls)}",
                  file=sys.stderr)
            report = run_load(urls, args.sessions, args.seconds, args.timeout, auth, mode="url", client=args.client)
        else:
            print("load: starting the app in this process", file=sys.stderr)
            with app_in_process(args.index_dir, embedder) as (url, settings):
                print(f"load: {args.sessions} sessions for {args.seconds:g} s against {url} (index "
                      f"{settings.index_dir})", file=sys.stderr)
                report = run_load(url, args.sessions, args.seconds, args.timeout, auth_for(settings),
                                  mode="in-process", client=args.client)
                report.app["index_dir"] = str(settings.index_dir)
                report.app["settings"] = settings.public_dict()
    except (ConfigError, IndexStateError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    data = report.to_dict()
    write_json(data, args.out)
    print(format_table(data))
    print(f"written: {args.out}")
    return 1 if data["errors"] else 0

