"""python -m deploy start|stop|status|urls — the local cluster of `make cluster` (deploy/cluster.py).

    python -m deploy start [--app-ports 7861,7862] [--postgres-port N] [--chroma-port N] [--instances 2]
                           [--ingest FOLDER ...] [--allow-fictional] [--dir data/cluster]
    python -m deploy stop          # what start started, by the process ids it recorded
    python -m deploy status        # addresses and which processes are up (exit 1 when none is)
    python -m deploy urls          # the app addresses, one a line (make bench-cluster reads them)

Exit codes: 0 done (or already running), 1 not running (status, urls), 2 configuration or start problem.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from core.errors import ConfigError
from core.settings import apply_offline_environment
from deploy.cluster import DEFAULT_FOLDER, PROJECT_ROOT, ClusterOptions, ClusterState, start_cluster, stop_cluster

log = logging.getLogger("deploy")


def _ports(value: str) -> tuple[int, ...]:
    try:
        ports = tuple(int(p) for p in value.replace(",", " ").split())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a list of port numbers: write it like 7861,7862") from None
    if not ports:
        raise argparse.ArgumentTypeError("give at least one port, like 7861,7862")
    return ports


def _port(value: str) -> int | None:
    """A port number; empty or 0 = choose a free one."""
    if not value.strip() or value.strip() == "0":
        return None
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number (or 0 for a free one)") from None


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    p = argparse.ArgumentParser(prog="python -m deploy", description="A local cluster on loopback: PostgreSQL, a "
                                "Chroma server and several app instances over them (make cluster).")
    p.add_argument("--dir", type=Path, default=DEFAULT_FOLDER, help="cluster folder (default data/cluster)")
    sub = p.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start PostgreSQL, Chroma, ingest, then the app instances")
    start.add_argument("--instances", type=int, choices=range(1, 9), default=2, metavar="N",
                       help="app instances (1-8, default 2)")
    start.add_argument("--app-ports", type=_ports, default=(), help="one port per instance, e.g. 7861,7862 "
                       "(default: free ports)")
    start.add_argument("--postgres-port", type=_port, help="PostgreSQL's port (default: a free one)")
    start.add_argument("--chroma-port", type=_port, help="the Chroma server's port (default: a free one)")
    start.add_argument("--ingest", type=Path, action="append", help="a folder of decisions to ingest (repeatable; "
                       "default data/sample)")
    start.add_argument("--allow-fictional", action="store_true", help="accept evaluation decisions (FICTIONAL)")
    sub.add_parser("stop", help="stop everything start started")
    sub.add_parser("status", help="addresses, and which processes run")
    sub.add_parser("urls", help="the app instances' addresses, one a line")
    return p


def _shown(path: Path | str) -> str:
    path = Path(path)
    return str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else str(path)


def describe(state: ClusterState) -> str:
    """The addresses of a cluster, how to use its servers from another shell, and how to stop it."""
    rows = [(f"app {n}", app.address, app) for n, app in enumerate(state.apps, 1)]
    rows += [("PostgreSQL", state.catalog_url, state.postgres), ("Chroma", state.chroma_url, state.chroma)]
    lines = [f"  {name:<11} {address:<48} {'up' if service and service.alive else 'DOWN'}"
             for name, address, service in rows]
    folder = _shown(state.folder)
    return "\n".join([
        f"Cluster in {folder}:", *lines,
        f"  logs        {folder}/logs/",
        "Ingest more decisions into it (the apps see them within seconds):",
        f"  OMBUDS_CATALOG_URL={state.catalog_url} OMBUDS_CHROMA_URL={state.chroma_url} \\",
        f"  OMBUDS_INDEX_DIR={folder}/index python -m ingest FOLDER",
        "Load test both apps: make bench-cluster",
        "Stop it: make cluster-stop   (python -m deploy stop)",
    ])


def _start(args: argparse.Namespace) -> int:
    options = ClusterOptions(folder=args.dir, instances=args.instances, app_ports=args.app_ports,
                             postgres_port=args.postgres_port, chroma_port=args.chroma_port,
                             ingest=tuple(args.ingest) if args.ingest else ClusterOptions.ingest,
                             allow_fictional=args.allow_fictional)
    for folder in options.ingest:
        if not folder.exists():
            raise ConfigError(f"--ingest {folder}: no such file or folder; give a folder of decision files")
    state, started = start_cluster(options)
    if not started:
        print("The cluster is already running; nothing was started (make cluster-stop stops it).")
    print(describe(state))
    return 0


def _stop(args: argparse.Namespace) -> int:
    stopped = stop_cluster(args.dir)
    if stopped is None:
        print(f"No cluster was started in {_shown(args.dir)}: nothing to stop.")
    else:
        print(f"Stopped: {', '.join(stopped) if stopped else 'nothing was still running'}. The data stays in "
              f"{_shown(args.dir)} (delete it for an empty cluster next time).")
    return 0


def _status(args: argparse.Namespace, urls_only: bool) -> int:
    state = ClusterState.load(Path(args.dir).resolve())
    up = [app for app in state.apps if app.alive] if state else []
    if not up:
        print(f"No cluster is running in {_shown(args.dir)}: start one with make cluster", file=sys.stderr)
        return 1
    print("\n".join(app.address for app in up) if urls_only else describe(state))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    from core.logs import setup_logging

    apply_offline_environment()
    args = build_parser().parse_args(argv)
    setup_logging("INFO")
    try:
        if args.command == "start":
            return _start(args)
        if args.command == "stop":
            return _stop(args)
        return _status(args, urls_only=args.command == "urls")
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
