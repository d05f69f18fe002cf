"""A throwaway `chroma run` server for tests: its own data folder, a free loopback port, stopped afterwards."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path


class ChromaServerFailed(RuntimeError):
    """The server did not answer its heartbeat in time (the message ends with its log)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_heartbeat(url: str, proc: subprocess.Popen, log_path: Path, limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise ChromaServerFailed(f"chroma server did not start: {log_path.read_text()[-2000:]}")
        time.sleep(0.2)


@contextlib.contextmanager
def running_chroma_server(folder: Path) -> Iterator[str]:
    """Start `chroma run` with its data in folder/server-data (log in folder/chroma-server.log); yields its URL."""
    chroma = Path(sys.executable).parent / "chroma"
    port = free_port()
    log_path = folder / "chroma-server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([str(chroma), "run", "--path", str(folder / "server-data"), "--host", "127.0.0.1",
                                 "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_for_heartbeat(url, proc, log_path)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
