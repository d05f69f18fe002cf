"""python -m bench browse --n 50000 --out bench/results — the decisions browser's speed at archive size.

Fills a fresh SQLite catalog with N SYNTHETIC decisions (bench/synth.py's text, parsed by the real parser; written
as catalog rows directly, without chunks or vectors: the browser reads only the catalog), builds the browse
index, then times what a person does in the browser tab — a search (words and/or filters, first page, count of
matches) and page changes (next page, a deep page) — through the same code the app calls
(DecisionBrowser.search and the table's HTML). Reports p50/p95/max per kind and overall, and writes a JSON
naming the CPU (ingest/cpu.py). The target is p95 <= 300 ms at 50 000 decisions. Not a test: a measurement.
With --catalog-url postgresql://... the same over a PostgreSQL catalog (an empty database, or one this benchmark
filled before: the decisions it holds are kept).
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

TARGET_P95_MS = 300.0
# Searches people type: common and rare words, phrases, a case number, words with filters, filters alone.
QUERIES = ["", "school transport", "council tax", "noise nuisance", "delay", "complaint", "the council",
           "special educational needs annual review", '"statutory nuisance"', "refuse collection missed",
           "apology payment", "enforcement agents", "planning", "housing", "fault injustice", "98 000 123"]


def synthetic_decisions(n: int, seed: int = 0, start: int = 0) -> Iterator[Any]:
    """Decisions n synthetic files would parse into (real parser, no files written)."""
    from bench.synth import render
    from ingest.parse import parse_text

    for i in range(start, start + n):
        yield parse_text(render(i, seed), f"synthetic/synth_{seed}_{i:06d}.txt")


def fill_catalog(catalog: Any, n: int, seed: int = 0, start: int = 0, batch: int = 1000) -> int:
    """Write n synthetic decisions as catalog rows (no chunks); returns how many were written."""
    written = 0
    items: list[tuple[Any, list[Any]]] = []
    for decision in synthetic_decisions(n, seed, start):
        items.append((decision, []))
        if len(items) >= batch:
            catalog.replace_decisions(items)
            written += len(items)
            items = []
    if items:
        catalog.replace_decisions(items)
        written += len(items)
    return written


@dataclass
class Timing:
    """One timed action."""

    kind: str
    query: str
    filters: dict[str, str]
    page: int
    total: int
    ms: float


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    if not values:
        return 0.0
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def summarise(timings: list[Timing]) -> dict[str, Any]:
    """p50 / p95 / max per kind of action and overall."""
    out: dict[str, Any] = {}
    kinds = sorted({t.kind for t in timings})
    for kind in [*kinds, "all"]:
        ms = [t.ms for t in timings if kind in ("all", t.kind)]
        out[kind] = {"n": len(ms), "p50_ms": round(_pct(ms, 0.5), 1), "p95_ms": round(_pct(ms, 0.95), 1),
                     "max_ms": round(max(ms), 1), "mean_ms": round(statistics.fmean(ms), 1)}
    return out


def open_bench_catalog(location: Path | str, create: bool = False) -> Any:
    """The catalog at a SQLite file path or a postgresql:// URL."""
    if str(location).startswith(("postgresql://", "postgres://")):
        from ingest.catalog_pg import PgCatalog

        return PgCatalog(str(location), create=create)
    from ingest.catalog import Catalog

    return Catalog(location, create=create)


def run(catalog_path: Path | str, rounds: int, seed: int = 1) -> list[Timing]:
    """Time searches and page changes as the app does them (search + render), on a fresh browser object
    (and each round forgets the cached results, so every round's searches are computed afresh)."""
    from core.types import Filters
    from rag.browse import BrowseQuery, DecisionBrowser
    from ui.viewer import browse_table_html

    catalog = open_bench_catalog(catalog_path)
    browser = DecisionBrowser(catalog)
    rng = random.Random(seed)
    councils = catalog.distinct("authority")
    outcomes = catalog.distinct("outcome")
    categories = catalog.distinct("category")
    timings: list[Timing] = []

    def timed(kind: str, query: BrowseQuery) -> Any:
        started = time.perf_counter()
        page = browser.search(query)
        browse_table_html(page)
        ms = (time.perf_counter() - started) * 1000
        timings.append(Timing(kind, query.text, query.filters.to_dict(), page.query.page, page.total, ms))
        return page

    for r in range(rounds):
        browser.forget_results()  # each round's searches are new searches
        for text in QUERIES:
            choice = rng.random()
            filters = Filters()
            if choice < 0.25:
                filters = Filters(authority=rng.choice(councils))
            elif choice < 0.45:
                filters = Filters(outcome=rng.choice(outcomes), since="2020-01-01")
            elif choice < 0.6:
                filters = Filters(category=rng.choice(categories))
            page = timed("search", BrowseQuery(text, filters))
            if page.pages > 1:
                page = timed("next_page", page.query.with_page(2))
                timed("deep_page", page.query.with_page(max(1, page.pages * 3 // 4)))
                timed("last_page", page.query.with_page(page.pages))
    catalog.close()
    return timings


def run_through_app(n: int, rounds: int, seed: int = 1) -> list[Timing]:
    """The same searches and page changes through the running app's API (gradio_client -> the app on loopback
    -> DecisionBrowser -> HTML -> back), over an index of the sample decisions plus n synthetic catalog rows."""
    from gradio_client import Client

    from app import build_app, launch
    from core.settings import PROJECT_ROOT, load_settings
    from ingest.catalog import Catalog
    from ingest.index import Indexer, open_index
    from rag.assistant import Assistant

    with tempfile.TemporaryDirectory(prefix="bench-browse-app-") as tmp:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        settings = load_settings(index_dir=Path(tmp) / "index", log_dir=Path(tmp) / "logs", host="127.0.0.1",
                                 port=port)
        index = open_index(settings, write=True)
        try:
            Indexer(index).ingest([PROJECT_ROOT / "data" / "sample"])
        finally:
            index.close()
        catalog = Catalog(settings.index_dir / "catalog.sqlite", create=False)
        fill_catalog(catalog, n)
        catalog.close()
        assistant = Assistant.from_settings(settings)
        demo = build_app(assistant, settings)  # builds the browse index
        launch(demo, settings, prevent_thread_lock=True, quiet=True)
        try:
            client = Client(f"http://127.0.0.1:{port}/", verbose=False)
            councils = assistant.choices("authority")
            outcomes = assistant.choices("outcome")
            rng = random.Random(seed)
            timings: list[Timing] = []

            def timed(kind: str, text: str, filters: dict[str, str], api: str, *args: Any) -> None:
                started = time.perf_counter()
                client.predict(*args, api_name=api)
                timings.append(Timing(kind, text, filters, 0, 0, (time.perf_counter() - started) * 1000))

            client.predict("", "", "", "", None, None, api_name="/browse")  # the session's first call
            for _ in range(rounds):
                # As an ingest would: move the catalog's change counter, so no search of this round is cached.
                with sqlite3.connect(settings.index_dir / "catalog.sqlite") as conn:
                    conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'browse_generation'")
                for text in QUERIES:
                    council = rng.choice(councils) if rng.random() < 0.25 else ""
                    outcome = rng.choice(outcomes) if not council and rng.random() < 0.25 else ""
                    filters = {k: v for k, v in (("authority", council), ("outcome", outcome)) if v}
                    timed("search", text, filters, "/browse", text, council, "", outcome, None, None)
                    timed("next_page", text, filters, "/browse_next")
                    timed("prev_page", text, filters, "/browse_prev")
            return timings
        finally:
            demo.close()
            assistant.close()


def main(argv: list[str] | None = None, prog: str = "python -m bench browse") -> int:
    """Entry point."""
    from core.logs import setup_logging
    from core.settings import redact_url
    from ingest.cpu import cpu_info

    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=50_000, help="synthetic decisions in the catalog (default 50000)")
    p.add_argument("--rounds", type=int, default=5, help="passes over the query list (default 5)")
    p.add_argument("--catalog", type=Path, help="reuse (or create) this catalog file instead of a temporary one")
    p.add_argument("--catalog-url", help="a PostgreSQL catalog (postgresql://...) instead of a SQLite file")
    p.add_argument("--out", type=Path, default=Path("bench/results"), help="folder for browse-<n>.json")
    p.add_argument("--through-app", action="store_true",
                   help="time the requests through the running app's API instead (sample index + N rows)")
    args = p.parse_args(argv)
    setup_logging("INFO")
    if not 1 <= args.n <= 1_000_000:
        p.error(f"--n {args.n}: give 1 to 1000000")
    if args.through_app:
        return main_through_app(args, argv, prog)
    with tempfile.TemporaryDirectory(prefix="bench-browse-") as tmp:
        location = args.catalog_url or args.catalog or Path(tmp) / "catalog.sqlite"
        built = build_catalog(location, args.n)
        timings = run(location, args.rounds)
    summary = summarise(timings)
    cpu = cpu_info()
    result = {
        "benchmark": "browse", "rounds": args.rounds, "target_p95_ms": TARGET_P95_MS,
        "meets_target": summary["all"]["p95_ms"] <= TARGET_P95_MS, "summary": summary,
        **built, "cpu": cpu.to_dict(), "python": platform.python_version(),
        "slowest": [t.__dict__ for t in sorted(timings, key=lambda t: -t.ms)[:10]],
        "command": f"{prog} " + " ".join(redact_url(a) if a.startswith("postgres") else a
                                         for a in (argv if argv is not None else sys.argv[1:])),
    }
    decisions = built["decisions"]
    name = f"browse-{decisions}.json" if built["catalog"] == "sqlite" else f"browse-pg-{decisions}.json"
    return write_report(result, args.out / name, f"{decisions} decisions ({built['catalog']}) on {cpu.describe()}")


def build_catalog(location: Path | str, n: int) -> dict[str, Any]:
    """Fill the catalog up to n synthetic decisions and build the browse index; what the report says of it."""
    from rag.browse import DecisionBrowser

    catalog = open_bench_catalog(location, create=True)
    try:
        have = catalog.count_decisions()
        fill_s = 0.0
        if have < n:
            started = time.perf_counter()
            fill_catalog(catalog, n - have, start=have)
            fill_s = time.perf_counter() - started
            log.info("catalog filled: %d synthetic decisions in %.0f s", n - have, fill_s)
        started = time.perf_counter()
        browser = DecisionBrowser(catalog)
        browser.ensure_index()
        browser.close()
        index_s = time.perf_counter() - started
        out: dict[str, Any] = {"decisions": catalog.count_decisions(), "fill_s": round(fill_s, 1),
                               "browse_index_build_s": round(index_s, 1)}
        if isinstance(location, Path):
            return {**out, "catalog": "sqlite", "sqlite": sqlite3.sqlite_version,
                    "catalog_mb": round(location.stat().st_size / 1e6, 1)}
        version = catalog.get_meta("schema_version")
        return {**out, "catalog": "postgresql", "catalog_schema": version, "catalog_at": catalog.path}
    finally:
        catalog.close()


def main_through_app(args: argparse.Namespace, argv: list[str] | None, prog: str) -> int:
    """--through-app: the same report, measured as the page's requests see it (minus the browser's drawing)."""
    from core.settings import apply_offline_environment
    from ingest.cpu import cpu_info

    apply_offline_environment()
    timings = run_through_app(args.n, args.rounds)
    summary = summarise(timings)
    cpu = cpu_info()
    decisions = args.n + 5
    result = {
        "benchmark": "browse-through-app", "decisions": decisions, "rounds": args.rounds,
        "target_p95_ms": TARGET_P95_MS, "meets_target": summary["all"]["p95_ms"] <= TARGET_P95_MS,
        "summary": summary, "cpu": cpu.to_dict(), "python": platform.python_version(),
        "method": "gradio_client calls to the app's /browse, /browse_next and /browse_prev endpoints on loopback "
                  "(one session); the index holds the 5 sample decisions plus N synthetic catalog rows; the "
                  "catalog's change counter is moved before each round, so no search is served from the cache",
        "slowest": [t.__dict__ for t in sorted(timings, key=lambda t: -t.ms)[:10]],
        "command": f"{prog} " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    return write_report(result, args.out / f"browse-app-{decisions}.json",
                        f"{decisions} decisions, through the app, on {cpu.describe()}")


def write_report(result: dict, out: Path, title: str) -> int:
    """Write the JSON and print the summary table; exit code 0."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(title)
    for kind, s in result["summary"].items():
        print(f"  {kind:10s} n={s['n']:4d}  p50 {s['p50_ms']:7.1f} ms  p95 {s['p95_ms']:7.1f} ms  "
              f"max {s['max_ms']:7.1f} ms")
    print(f"target p95 <= {TARGET_P95_MS:.0f} ms: {'met' if result['meets_target'] else 'NOT met'}; wrote {out}")
    return 0

