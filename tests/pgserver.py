"""A throwaway PostgreSQL server for tests: deploy/postgres.py's cluster in a temporary folder, a free loopback
port, fsync off, torn down (and deleted) afterwards. The Debian package `postgresql` provides the binaries (CI's
.ci/run installs it)."""

from __future__ import annotations

from pathlib import Path

from deploy.postgres import PostgresServer as _Server
from deploy.postgres import server_binaries

__all__ = ["INSTALL_HINT", "PostgresServer", "server_binaries"]

INSTALL_HINT = ("PostgreSQL server binaries not found: install them (apt-get install postgresql, as .ci/run does) "
                "to run the server-mode tests")


class PostgresServer(_Server):
    """The product's local cluster, made throwaway: a temporary folder, not durable, stopped immediately."""

    def __init__(self, binaries: Path):
        super().__init__(binaries, folder=None, port=None, durable=False)

    def stop(self, mode: str = "immediate") -> None:
        """Stop at once and delete the folder."""
        super().stop(mode)
