"""No outbound network at run time: an ingest, `python -m rag ask` and an in-process Assistant.ask, with outbound
connections blocked and monitored, attempt none.

Three layers, the first always, the others where the machine allows:
  1. netguard (a sitecustomize.py in the subprocess; install() in-process) records and refuses every
     non-loopback connect, UDP send and DNS lookup made from Python;
  2. strace records connect() calls from any code, Rust and C libraries included (Chroma, tokenizers, torch);
  3. `unshare -n` runs the command in an empty network namespace, so nothing could get out anyway.
The subprocesses start from an environment that asks for telemetry and the model hub (ANONYMIZED_TELEMETRY=True,
HF_HUB_OFFLINE=0): the entry points must switch them off themselves. Control runs prove each monitor sees a
connection when one is made.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from reliability.netguard import NetGuard

from core.settings import load_settings
from rag.assistant import Assistant

try:
    from conftest import ICO_ANSWERS, ROOT, SAMPLE_DIR
except ImportError:
    from tests.conftest import ICO_ANSWERS, ROOT, SAMPLE_DIR

HERE = Path(__file__).resolve().parent
QUESTION = "When does the ICO handle rectification?"
_CONNECT = re.compile(r'connect\(\d+, \{sa_family=AF_INET6?, [^}]*(?:inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, '
                      r'"([^"]+)"\))')


def _works(*cmd: str) -> bool:
    try:
        return subprocess.run(list(cmd), capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


STRACE = shutil.which("strace") is not None and _works("strace", "-f", "-qq", "-e", "trace=connect", "true")
UNSHARE = shutil.which("unshare") is not None and _works("unshare", "-n", "true")


class Monitored:
    """Runs commands with the netguard sitecustomize, under strace and unshare -n when available."""

    def __init__(self, folder: Path):
        self.folder = folder
        site = folder / "site"
        site.mkdir()
        (site / "sitecustomize.py").write_text(
            f"import sys\nsys.path.insert(0, {str(HERE)!r})\nimport netguard\nnetguard.install_from_environment()\n",
            encoding="utf-8")
        self.site = site
        self.runs = 0

    def run(self, args: list[str], timeout: float = 300, isolate: bool = True) -> tuple[subprocess.CompletedProcess,
                                                                                          list[str], list[str]]:
        """(result, netguard attempts, strace outbound connects)."""
        self.runs += 1
        guard_log = self.folder / f"netguard-{self.runs}.jsonl"
        trace_log = self.folder / f"strace-{self.runs}.txt"
        env = {k: v for k, v in os.environ.items() if not k.startswith("OMBUDS_")}
        # Ask for the network on purpose: the entry points must turn it off themselves.
        env.update({"ANONYMIZED_TELEMETRY": "True", "HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "0",
                    "HF_HUB_DISABLE_TELEMETRY": "0", "GRADIO_ANALYTICS_ENABLED": "True",
                    "NETGUARD_LOG": str(guard_log),
                    "PYTHONPATH": os.pathsep.join([str(self.site), str(ROOT)])})
        cmd = [sys.executable, *args]
        if STRACE:
            cmd = ["strace", "-f", "-qq", "-e", "trace=connect", "-o", str(trace_log), *cmd]
        if UNSHARE and isolate:
            cmd = ["unshare", "-n", *cmd]
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        attempts = guard_log.read_text(encoding="utf-8").splitlines() if guard_log.exists() else []
        outbound = []
        if trace_log.exists():
            for m in _CONNECT.finditer(trace_log.read_text(encoding="utf-8", errors="replace")):
                address = m.group(1) or m.group(2)
                if not (address.startswith("127.") or address in ("::1", "::ffff:127.0.0.1")):
                    outbound.append(address)
        return done, attempts, outbound


@pytest.fixture(scope="module")
def monitored(tmp_path_factory) -> Monitored:
    return Monitored(tmp_path_factory.mktemp("privacy"))


def test_the_monitors_see_a_connection_when_one_is_made(monitored):
    """Controls: without them, 'none attempted' below could mean 'nothing watched'."""
    code = ("import socket\n"
            "try:\n    socket.create_connection(('198.51.100.7', 80), timeout=2)\nexcept OSError as e:\n"
            "    print('refused', e)\n"
            "try:\n    socket.getaddrinfo('example.com', 443)\nexcept OSError as e:\n    print('refused', e)\n")
    done, attempts, _ = monitored.run(["-c", code])
    assert done.returncode == 0 and done.stdout.count("refused") == 2, done.stderr
    kinds = [json.loads(a)["kind"] for a in attempts]
    assert kinds == ["connect", "dns"], attempts
    if STRACE:  # a connect made below Python's socket module is seen by strace
        raw = "import _socket\ns = _socket.socket()\ns.settimeout(1)\ntry:\n    s.connect(('198.51.100.7', 80))\n" \
              "except OSError:\n    pass\n"
        _, attempts, outbound = monitored.run(["-c", raw])
        assert attempts == [] and outbound == ["198.51.100.7"]


@pytest.mark.slow
def test_ingest_and_ask_subprocesses_attempt_no_outbound_connection(monitored, tmp_path, test_output):
    layers = ["netguard (Python sockets and DNS)"] + (["strace (connect from any code)"] if STRACE else []) + (
        ["unshare -n (empty network namespace)"] if UNSHARE else [])
    (test_output / "privacy_check.txt").write_text(
        "python -m ingest and python -m rag ask ran under: " + "; ".join(layers) + "\n", encoding="utf-8")
    index_dir = tmp_path / "index"
    ingest, attempts, outbound = monitored.run(
        ["-m", "ingest", str(SAMPLE_DIR), "--index-dir", str(index_dir), "--json"])
    assert ingest.returncode == 0, ingest.stderr[-3000:]
    assert json.loads(ingest.stdout)["added"] == 5
    assert attempts == [] and outbound == [], (attempts, outbound)

    ask, attempts, outbound = monitored.run(["-m", "rag", "ask", QUESTION, "--json", "--index-dir", str(index_dir)])
    assert ask.returncode == 0, ask.stderr[-3000:]
    answer = json.loads(ask.stdout)
    assert not answer["abstained"] and {c["case_number"] or c["doc_id"] for c in answer["citations"]} & ICO_ANSWERS
    assert attempts == [] and outbound == [], (attempts, outbound)


def test_in_process_ask_attempts_no_outbound_connection(sample_index_dir):
    settings = load_settings(index_dir=sample_index_dir)
    with NetGuard() as guard:
        # from_settings loads everything itself (a new embedder, the Chroma client, the backend)
        with Assistant.from_settings(settings) as assistant:
            answer = assistant.ask(QUESTION)
        seen_before_control = list(guard.attempts)
        with pytest.raises(OSError):  # control: the guard is really in place
            urllib.request.urlopen("http://example.com/", timeout=2)
    assert not answer.abstained and set(answer.cited_labels) & ICO_ANSWERS
    assert seen_before_control == []
    assert [a["kind"] for a in guard.attempts] == ["dns"]
