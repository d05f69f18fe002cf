"""python -m ingest PATH... — add decision files to the index, incrementally."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from core.settings import apply_offline_environment

log = logging.getLogger("ingest")


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    p = argparse.ArgumentParser(
        prog="python -m ingest",
        description="Parse, chunk and embed Ombudsman decision files (.txt, .html, .md) into the index. "
                    "Re-running is cheap: unchanged files are skipped.",
    )
    p.add_argument("paths", nargs="+", type=Path, help="files or directories (walked recursively)")
    p.add_argument("--index-dir", type=Path, help="index folder (default: data/index or OMBUDS_INDEX_DIR)")
    p.add_argument("--chroma-url", help="use a Chroma server, e.g. http://127.0.0.1:8000 (default: embedded)")
    p.add_argument("--collection", help="Chroma collection name")
    p.add_argument("--embedding-model", help="sentence-transformers model folder or name")
    p.add_argument("--no-headers", action="store_true", help="embed chunks without their contextual header")
    p.add_argument("--prune", action="store_true", help="remove indexed decisions whose files are gone")
    p.add_argument("--rebuild", action="store_true", help="delete the index first and build it again")
    p.add_argument("--allow-fictional", action="store_true",
                   help="accept files marked FICTIONAL (evaluation data) into the default index")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings and the summary")
    return p


def print_summary(report, out=sys.stdout) -> None:
    """The human-readable summary."""
    r = report
    print(f"files seen: {r.files_seen}", file=out)
    print(f"decisions: {r.added} added, {r.updated} updated, {r.unchanged} unchanged, {r.duplicate} duplicate, "
          f"{r.failed} failed" + (f", {r.pruned} pruned" if r.pruned else "")
          + (f", {r.replaced} replaced (their file now holds another case)" if r.replaced else ""), file=out)
    print(f"chunks written: {r.chunks_written} in {r.seconds:.1f} s ({r.chunks_per_second:.1f} chunks/s)", file=out)
    for item in r.no_case_number:
        print(f"  no case number: {item['path']} (indexed as {item['doc_id']})", file=out)
    for item in r.duplicates:
        print(f"  duplicate: {item['path']} has the same content as {item['duplicate_of']}", file=out)
    for item in r.failures:
        print(f"  FAILED: {item['path']}: {item['reason']}", file=out)
    if r.recovered and any(r.recovered.values()):
        print(f"  repaired after an interrupted run: {r.recovered}", file=out)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (0 all fine, 1 some files failed, 2 usage/configuration)."""
    apply_offline_environment()
    args = build_parser().parse_args(argv)
    from core.errors import OmbudsError
    from core.logs import setup_logging
    from core.settings import load_settings

    try:
        settings = load_settings(index_dir=args.index_dir, chroma_url=args.chroma_url, collection=args.collection,
                                 embedding_model=args.embedding_model,
                                 contextual_headers=False if args.no_headers else None)
    except OmbudsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    setup_logging("WARNING" if args.quiet or args.json else settings.log_level)
    from ingest.index import Indexer, open_index

    default_index = settings.index_dir.resolve() == type(settings)().index_dir.resolve() and not settings.chroma_url
    try:
        index = open_index(settings, write=True, rebuild=args.rebuild)
    except OmbudsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        indexer = Indexer(index, allow_fictional=args.allow_fictional or not default_index)
        report = indexer.ingest(args.paths, prune=args.prune, show_bar=sys.stderr.isatty() and not args.json)
    except OmbudsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        index.close()
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        print_summary(report)
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
