"""`make cluster`: the product as several machines would run it, on this one machine's loopback.

A PostgreSQL server (the shared catalog, deploy/postgres.py, data in data/cluster/postgres), a `chroma run` server
(the vectors, data in data/cluster/chroma), one ingest of the sample decisions into them, then app instances
(app.py, two by default) on their own ports over those two servers. What was started is recorded in
data/cluster/cluster.json (process ids with their start times, so a recycled id is never taken for ours); `stop`
ends exactly those processes. A second start while one runs reports the running one instead.

Each process is started in its own session (its own process group), so stopping the cluster ends an app and
whatever it started, and closing the shell that ran `make cluster` does not.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

from core.errors import ConfigError
from core.settings import child_environment
from deploy.postgres import INSTALL_HINT, PostgresServer, free_port, server_binaries

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FOLDER = PROJECT_ROOT / "data" / "cluster"
SAMPLE_DIR = PROJECT_ROOT / "data" / "sample"
STATE_FILE = "cluster.json"
DATABASE = "ombuds"
START_TIMEOUT_S = 300.0  # two apps loading the embedding model at once on a busy two-core machine
STOP_TIMEOUT_S = 20.0
INGEST_TIMEOUT_S = 1800.0


@dataclass
class Service:
    """One process the cluster started: what it is, its id and start time, where it answers, its log."""

    name: str
    pid: int
    started: float
    address: str
    log: str

    def process(self) -> psutil.Process | None:
        """The running process, or None when it is gone (or the id now belongs to another process)."""
        try:
            proc = psutil.Process(self.pid)
            if abs(proc.create_time() - self.started) > 1.0 or proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return proc
        except psutil.Error:
            return None

    @property
    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.process() is not None


@dataclass
class ClusterState:
    """Everything one `start` made; saved to folder/cluster.json after each step, so `stop` can undo a start that
    failed half-way."""

    folder: str
    catalog_url: str = ""
    chroma_url: str = ""
    postgres: Service | None = None
    chroma: Service | None = None
    apps: list[Service] = field(default_factory=list)

    @property
    def services(self) -> list[Service]:
        """Apps first (they use the servers), then Chroma, then PostgreSQL: the order to stop them in."""
        return [*self.apps, *([self.chroma] if self.chroma else []), *([self.postgres] if self.postgres else [])]

    @property
    def path(self) -> Path:
        """The state file."""
        return Path(self.folder) / STATE_FILE

    def save(self) -> None:
        """Write the state file (atomically)."""
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        tmp.replace(self.path)

    @classmethod
    def load(cls, folder: Path) -> ClusterState | None:
        """The saved state in folder, or None when nothing was started there."""
        path = Path(folder) / STATE_FILE
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            one = (lambda d: Service(**d) if d else None)  # noqa: E731
            return cls(folder=data["folder"], catalog_url=data["catalog_url"], chroma_url=data["chroma_url"],
                       postgres=one(data["postgres"]), chroma=one(data["chroma"]),
                       apps=[Service(**a) for a in data["apps"]])
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path} is not a cluster state file ({exc}): stop what it started by hand, "
                              f"then delete it") from None


@dataclass(frozen=True)
class ClusterOptions:
    """What to start. Ports left out (None / empty) are chosen free at start."""

    folder: Path = DEFAULT_FOLDER
    instances: int = 2
    app_ports: tuple[int, ...] = ()
    postgres_port: int | None = None
    chroma_port: int | None = None
    ingest: tuple[Path, ...] = (SAMPLE_DIR,)
    allow_fictional: bool = False


@dataclass(frozen=True)
class Ports:
    """The ports one start uses."""

    postgres: int
    chroma: int
    apps: tuple[int, ...]


# --- ports ----------------------------------------------------------------------------------------------------
def port_in_use(port: int) -> bool:
    """Whether something already listens on 127.0.0.1:port."""
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def choose_ports(options: ClusterOptions) -> Ports:
    """The given ports (checked free and distinct) and free ones for the rest; ConfigError saying which to change."""
    if options.app_ports and len(options.app_ports) != options.instances:
        raise ConfigError(f"{len(options.app_ports)} app ports given for {options.instances} instances: give one "
                          f"port per instance (APP_PORTS=\"7861 7862\"), or none to have free ports chosen")
    given = [p for p in (options.postgres_port, options.chroma_port, *options.app_ports) if p]
    if len(set(given)) != len(given):
        raise ConfigError(f"the ports {given} repeat one another: give each server and app its own port")
    for port in given:
        if not 1024 <= port <= 65535:
            raise ConfigError(f"port {port} is out of range: use 1024-65535, or leave it out to get a free one")
        if port_in_use(port):
            raise ConfigError(f"port {port} on 127.0.0.1 is already in use: choose another, or leave it out to get "
                              "a free one")
    taken = set(given)

    def pick(port: int | None) -> int:
        """The given port, or a free one no other part of the cluster has."""
        while not port:
            port = free_port()
            port = None if port in taken else port
        taken.add(port)
        return port

    return Ports(pick(options.postgres_port), pick(options.chroma_port),
                 tuple(pick(p) for p in (options.app_ports or (None,) * options.instances)))


# --- starting -------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def exclusive(folder: Path) -> Iterator[None]:
    """One start or stop at a time per cluster folder."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"another command is starting or stopping the cluster in {folder}: wait for it to "
                              "finish, then try again") from None
        yield


def start_service(name: str, command: Sequence[str], address: str, logs: Path,
                  env: dict[str, str] | None = None) -> Service:
    """Start a long-running process in its own session, output to logs/<name>.log."""
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{name}.log"
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(list(command), cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    started = psutil.Process(proc.pid).create_time()
    log.info("started %s (pid %d): %s", name, proc.pid, address)
    return Service(name, proc.pid, started, address, str(log_path))


def wait_until_answering(service: Service, probe: str, deadline: float) -> None:
    """Return once GET probe answers 200; ConfigError (with the log's end) if the process dies or time runs out."""
    while True:
        try:
            with urllib.request.urlopen(probe, timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        if not service.alive or time.monotonic() > deadline:
            why = "stopped" if not service.alive else f"did not answer within {START_TIMEOUT_S:g} s"
            raise ConfigError(f"{service.name} {why}. The end of its log ({service.log}):\n{tail(service.log)}")
        time.sleep(0.5)


def tail(path: str | Path, chars: int = 2000) -> str:
    """The end of a log file ('' when it is missing)."""
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")[-chars:]
    except OSError:
        return ""


def start_postgres(state: ClusterState, port: int) -> None:
    """initdb (first time) and start the PostgreSQL server; create the catalog's database."""
    binaries = server_binaries()
    if binaries is None:
        raise ConfigError(INSTALL_HINT)
    server = PostgresServer(binaries, Path(state.folder) / "postgres", port, durable=True).start()
    pid = server.pid
    if pid is None:
        raise ConfigError(f"PostgreSQL started but wrote no postmaster.pid; see {server.log_path}")
    state.postgres = Service("postgresql", pid, psutil.Process(pid).create_time(), server.url(DATABASE),
                             str(server.log_path))
    state.save()
    state.catalog_url = server.create_database(DATABASE, exist_ok=True)
    state.save()


def start_chroma(state: ClusterState, port: int, deadline: float) -> None:
    """`chroma run` over folder/chroma on the port; waits for its heartbeat."""
    chroma = Path(sys.executable).parent / "chroma"
    if not chroma.exists():
        raise ConfigError(f"the chroma command is not beside this Python ({chroma}): install the project "
                          "(make setup) and run this with its Python")
    url = f"http://127.0.0.1:{port}"
    command = [str(chroma), "run", "--path", str(Path(state.folder) / "chroma"), "--host", "127.0.0.1",
               "--port", str(port)]
    state.chroma = start_service("chroma", command, url, Path(state.folder) / "logs", child_environment())
    state.save()
    wait_until_answering(state.chroma, f"{url}/api/v2/heartbeat", deadline)
    state.chroma_url = url
    state.save()


def servers_environment(state: ClusterState, **more: object) -> dict[str, str]:
    """The environment that points a process at the cluster's two servers."""
    return child_environment(catalog_url=state.catalog_url, chroma_url=state.chroma_url,
                             index_dir=Path(state.folder) / "index", **more)


def run_ingest(state: ClusterState, options: ClusterOptions) -> None:
    """`python -m ingest` of the configured folders into the two servers (unchanged files are skipped)."""
    command = [sys.executable, "-m", "ingest", *map(str, options.ingest), "--quiet"]
    if options.allow_fictional:
        command.append("--allow-fictional")
    log_path = Path(state.folder) / "logs" / "ingest.log"
    log.info("ingesting %s", ", ".join(map(str, options.ingest)))
    with open(log_path, "ab") as out:
        done = subprocess.run(command, cwd=PROJECT_ROOT, env=servers_environment(state), stdout=out,
                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=INGEST_TIMEOUT_S)
    if done.returncode != 0:
        raise ConfigError(f"the ingest failed (exit {done.returncode}). The end of {log_path}:\n{tail(log_path)}")


def start_apps(state: ClusterState, ports: Sequence[int], deadline: float) -> None:
    """app.py once per port over the two servers, each with its own log folder; waits until every one answers."""
    logs = Path(state.folder) / "logs"
    for number, port in enumerate(ports, 1):
        env = servers_environment(state, port=port, host="127.0.0.1", log_dir=logs / f"app-{number}",
                                  allow_upload="false")
        state.apps.append(start_service(f"app-{number}", [sys.executable, str(PROJECT_ROOT / "app.py")],
                                        f"http://127.0.0.1:{port}/", logs, env))
        state.save()
    for app in state.apps:
        wait_until_answering(app, app.address, deadline)


def start_cluster(options: ClusterOptions) -> tuple[ClusterState, bool]:
    """Start everything; (state, True). When a cluster already runs in the folder: (its state, False), nothing
    started. A start that fails stops what it had started and raises ConfigError saying why."""
    folder = Path(options.folder).resolve()
    with exclusive(folder):
        running = ClusterState.load(folder)
        if running and any(s.alive for s in running.services):
            return running, False
        if running:
            stop_services(running)  # a cluster that died (a reboot): clear what is left of it
        ports = choose_ports(options)
        state = ClusterState(folder=str(folder))
        state.save()
        deadline = time.monotonic() + START_TIMEOUT_S
        try:
            start_postgres(state, ports.postgres)
            start_chroma(state, ports.chroma, deadline)
            run_ingest(state, options)
            start_apps(state, ports.apps, time.monotonic() + START_TIMEOUT_S)
        except BaseException:
            stop_services(state)
            state.path.unlink(missing_ok=True)
            raise
        return state, True


# --- stopping -------------------------------------------------------------------------------------------------
def end_process(service: Service) -> bool:
    """SIGTERM the service's process group (SIGKILL after STOP_TIMEOUT_S); True when it was running."""
    proc = service.process()
    if proc is None:
        return False
    members = [proc, *proc.children(recursive=True)]
    try:
        group = os.getpgid(service.pid)
        if group == service.pid:  # its own session, as start_service made it
            os.killpg(group, signal.SIGTERM)
        else:
            proc.terminate()
    except (ProcessLookupError, psutil.NoSuchProcess):
        return True
    _, left = psutil.wait_procs(members, timeout=STOP_TIMEOUT_S)
    for straggler in left:
        log.warning("%s (pid %d) did not stop within %g s: killing it", service.name, straggler.pid, STOP_TIMEOUT_S)
        with contextlib.suppress(psutil.Error):
            straggler.kill()
    psutil.wait_procs(left, timeout=5)
    return True


def stop_postgres(state: ClusterState) -> bool:
    """pg_ctl stop (fast: open sessions are rolled back); the process itself if pg_ctl cannot."""
    service = state.postgres
    if service is None or not service.alive:
        return False
    binaries = server_binaries()
    if binaries is not None:
        PostgresServer(binaries, Path(state.folder) / "postgres").stop("fast")
    if service.alive:
        end_process(service)
    return True


def stop_services(state: ClusterState) -> list[str]:
    """Stop every process the state records (apps, Chroma, PostgreSQL); the names of those that were running."""
    stopped = [s.name for s in [*state.apps, *([state.chroma] if state.chroma else [])] if end_process(s)]
    if stop_postgres(state):
        stopped.append("postgresql")
    return stopped


def stop_cluster(folder: Path = DEFAULT_FOLDER) -> list[str] | None:
    """Stop the cluster started in folder; the names of what was running, or None when none was started there."""
    folder = Path(folder).resolve()
    with exclusive(folder):
        state = ClusterState.load(folder)
        if state is None:
            return None
        stopped = stop_services(state)
        state.path.unlink(missing_ok=True)
        return stopped
