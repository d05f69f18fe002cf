"""`make cluster` (python -m deploy): PostgreSQL, a Chroma server, one ingest and two app.py instances, all real;
a second start reports the running cluster; both apps answer alike and carry load; stop leaves nothing running."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from core.errors import ConfigError
from deploy.cluster import ClusterOptions, ClusterState, choose_ports, port_in_use

try:  # the shared helper in tests/conftest.py, under either pytest import mode (prepend / importlib)
    from conftest import ICO_ANSWERS, ROOT
except ImportError:
    from tests.conftest import ICO_ANSWERS, ROOT

QUESTION = "When does the ICO handle rectification?"


def deploy(folder: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "deploy", "--dir", str(folder), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def test_ports_given_are_checked_and_the_rest_chosen_free():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        with pytest.raises(ConfigError, match=f"port {taken} on 127.0.0.1 is already in use"):
            choose_ports(ClusterOptions(chroma_port=taken))
    with pytest.raises(ConfigError, match="one port per instance"):
        choose_ports(ClusterOptions(app_ports=(7861,)))
    with pytest.raises(ConfigError, match="repeat"):
        choose_ports(ClusterOptions(postgres_port=7861, app_ports=(7861, 7862)))
    ports = choose_ports(ClusterOptions(instances=3))
    chosen = [ports.postgres, ports.chroma, *ports.apps]
    assert len(set(chosen)) == 5 and not any(port_in_use(p) for p in chosen)
    given = choose_ports(ClusterOptions(app_ports=tuple(chosen[:2]), chroma_port=chosen[2]))
    assert (given.apps, given.chroma) == (tuple(chosen[:2]), chosen[2]) and given.postgres not in chosen[:3]


def test_bad_input_says_what_to_do(tmp_path):
    missing = deploy(tmp_path / "c", "start", "--ingest", str(tmp_path / "nowhere"), timeout=60)
    assert missing.returncode == 2 and "no such file or folder" in missing.stderr
    assert "Traceback" not in missing.stderr
    ports = deploy(tmp_path / "c", "start", "--app-ports", "78a1", timeout=60)
    assert ports.returncode == 2 and "not a list of port numbers" in ports.stderr
    stopped = deploy(tmp_path / "c", "stop", timeout=60)
    assert stopped.returncode == 0 and "nothing to stop" in stopped.stdout
    assert deploy(tmp_path / "c", "urls", timeout=60).returncode == 1


def ask(url: str) -> tuple[str, str]:
    """(reply text, sources panel) for the question, through the app's API as the page calls it."""
    from gradio_client import Client

    from bench.load import text_of

    client = Client(url, verbose=False, download_files=False)
    try:
        _, chat, sources, _ = client.predict(QUESTION, "", "", "", None, None, api_name="/ask")
    finally:
        client.close()
    return text_of(chat[-1]), sources


@pytest.mark.slow
def test_make_cluster_starts_once_serves_two_alike_instances_and_stops_everything(open_folder, tmp_path):
    from bench.load import run_load

    started = deploy(open_folder, "start")
    assert started.returncode == 0, started.stderr[-3000:]
    state = ClusterState.load(open_folder)
    try:
        urls = [app.address for app in state.apps]
        assert len(urls) == 2 and all(u in started.stdout for u in urls)
        assert state.catalog_url in started.stdout and state.chroma_url in started.stdout
        assert "make cluster-stop" in started.stdout
        again = deploy(open_folder, "start")
        assert again.returncode == 0 and "already running" in again.stdout
        assert ClusterState.load(open_folder) == state  # nothing new was started
        assert deploy(open_folder, "urls").stdout.split() == urls

        replies = [ask(u) for u in urls]
        assert replies[0] == replies[1]
        assert any(case in replies[0][0] for case in ICO_ANSWERS)
        # The load client against both (a smoke: 2 sessions, 5 s), one session on each.
        report = run_load(urls, sessions=2, seconds=5, timeout=60).to_dict()
        assert report["errors"] == 0, json.dumps(report["error_details"][:3], indent=1)
        assert [(t["url"], t["sessions"]) for t in report["targets"]] == [(u, 1) for u in urls]
        assert all(t["answers"] >= 1 for t in report["targets"])
        # where the cores went: each app process (found by its listening port) and the client itself
        cpu = report["machine"]["cpu_seconds_during_run"]
        assert sorted(cpu["apps"]) == sorted(urls) and all(v > 0 for v in cpu["apps"].values()), cpu
        assert cpu["load_client"] > 0
    finally:
        stopped = deploy(open_folder, "stop")
    assert stopped.returncode == 0 and "app-1, app-2, chroma, postgresql" in stopped.stdout, stopped.stderr
    assert [s.name for s in state.services if s.alive] == []
    assert not (open_folder / "cluster.json").exists()
    ours = [p for p in psutil.process_iter(["cmdline"]) if str(open_folder) in " ".join(p.info["cmdline"] or [])]
    assert ours == []
    assert deploy(open_folder, "status").returncode == 1
