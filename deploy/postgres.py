"""A local PostgreSQL cluster on loopback: initdb in a folder, start, stop; for tests (a throwaway cluster in a
temporary folder) and for `make cluster` (a kept one under data/cluster/).

initdb refuses to run as root, so as root every server command runs as the `postgres` user (the Debian package
`postgresql` creates it) and the folder is handed to that user. Authentication is `trust` on 127.0.0.1 only: a
cluster for one machine's tests and demos, never a production database.
"""

from __future__ import annotations

import glob
import logging
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from core.errors import ConfigError

log = logging.getLogger(__name__)

INSTALL_HINT = ("PostgreSQL server binaries not found: install them (apt-get install postgresql, as .ci/run does) "
                "or put initdb and pg_ctl on the PATH")
SUPERUSER = "ombuds"
COMMAND_TIMEOUT_S = 120


def server_binaries() -> Path | None:
    """The folder holding initdb and pg_ctl: Debian's /usr/lib/postgresql/<version>/bin (newest), else the PATH's."""
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_of, reverse=True):
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    found = shutil.which("initdb")
    return Path(found).parent if found and shutil.which("pg_ctl") else None


def _version_of(folder: str) -> int:
    name = Path(folder).parent.name
    return int(name) if name.isdigit() else 0


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_as() -> tuple[list[str], pwd.struct_passwd | None]:
    """The command prefix (and user) server commands run as: `postgres` when this process is root."""
    if os.geteuid() != 0:
        return [], None
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        raise ConfigError("PostgreSQL refuses to run as root and there is no `postgres` user to run it as: "
                          "install the postgresql package (it creates the user) or run this as another user") from None
    return ["runuser", "-u", "postgres", "--"], user


class PostgresServer:
    """One cluster in `folder` (data in folder/data, log in folder/postgres.log, socket in folder).

    folder=None: a new temporary folder, deleted by stop() (tests). A given folder is kept, and start() reuses
    the cluster already initialised there. port=None: a free loopback port. durable=False turns fsync off
    (tests: faster, and nothing to keep after a crash).
    """

    def __init__(self, binaries: Path, folder: Path | None = None, port: int | None = None, durable: bool = True):
        self.bin = binaries
        self.temporary = folder is None
        self.folder = Path(tempfile.mkdtemp(prefix="ombuds-pg-")) if folder is None else Path(folder).resolve()
        self.data = self.folder / "data"
        self.log_path = self.folder / "postgres.log"
        self.port = port or free_port()
        self.durable = durable
        self._as, self._user = _run_as()

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self._as, *args], check=True, capture_output=True, text=True,
                              timeout=COMMAND_TIMEOUT_S)

    def _prepare_folder(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if self._user is not None:
            os.chown(self.folder, self._user.pw_uid, self._user.pw_gid)
            os.chmod(self.folder, 0o700)
            try:
                self._run("test", "-w", str(self.folder))
            except subprocess.CalledProcessError:
                raise ConfigError(f"the postgres user cannot reach {self.folder}: a folder above it is closed to "
                                  "other users. Let it through (chmod o+x on each parent folder) or choose a folder "
                                  "under one it can reach, such as /tmp") from None

    @property
    def initialised(self) -> bool:
        """Whether initdb has already made a cluster in the folder."""
        return (self.data / "PG_VERSION").is_file()

    def start(self) -> PostgresServer:
        """initdb when the folder holds no cluster yet, then start; waits until it accepts connections."""
        self._prepare_folder()
        if not self.initialised:
            log.info("initdb %s", self.data)
            self._checked(self.bin / "initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8",
                          "--locale=C.UTF-8")
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder}"
        if not self.durable:
            options += " -c fsync=off"
        self._checked(self.bin / "pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-w", "-t", "60",
                      "-o", options, "start")
        log.info("PostgreSQL on 127.0.0.1:%d (data %s)", self.port, self.data)
        return self

    def _checked(self, program: Path, *args: str) -> None:
        """Run a server command; a failure says what PostgreSQL said and where its log is."""
        try:
            self._run(str(program), *args)
        except subprocess.CalledProcessError as exc:
            said = (exc.stderr or exc.stdout or "").strip()[-1500:]
            raise ConfigError(f"{program.name} failed (exit {exc.returncode}): {said}\n"
                              f"See {self.log_path}; delete {self.folder} to start from an empty cluster.") from None

    @property
    def pid(self) -> int | None:
        """The postmaster's process id, from postmaster.pid (None when it is not running)."""
        try:
            return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def url(self, database: str = "postgres") -> str:
        """A URL for a database of this server."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str, exist_ok: bool = False) -> str:
        """A new empty database (or the existing one, with exist_ok); its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if found and not exist_ok:
                raise ConfigError(f"database {name!r} already exists on 127.0.0.1:{self.port}")
            if not found:
                conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (a temporary cluster is also deleted). mode: pg_ctl's smart, fast or immediate."""
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")
        except (subprocess.SubprocessError, OSError) as exc:
            log.info("pg_ctl stop %s: %s", self.data, getattr(exc, "stderr", None) or exc)
        if self.temporary:
            shutil.rmtree(self.folder, ignore_errors=True)
