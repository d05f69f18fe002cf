"""python -m bench run|load|browse|synth — speed measurements on SYNTHETIC decisions (never a quality figure).

    python -m bench run --out bench/results                 # ingest throughput and query latency (make bench)
    python -m bench run --quick --out /tmp/b                # smoke run (make bench-quick)
    python -m bench load --url http://127.0.0.1:7860/ --sessions 20 --seconds 60
    python -m bench browse --n 50000 --rounds 5 --out bench/results   # (make bench-browse)
    python -m bench synth --n 1000 --out /tmp/synth --seed 0
    python -m bench vectors --out /tmp/here.npz; python -m bench vectors --compare A.npz B.npz

Exit codes are each command's own (see `python -m bench COMMAND --help`); 2 for an unknown command.
"""

from __future__ import annotations

import sys

from core.cli import dispatch

USAGE = """usage: python -m bench {run,load,browse,synth,vectors} [options]

commands:
  run     ingest throughput (this pipeline, the raw encoder, naive LangChain) and query latency at 10k/100k chunks
  load    concurrent chat sessions (plain HTTP to the queue, or gradio_client) against the app on loopback
  browse  the decisions browser's searches and page changes at archive size (50 000 catalog rows)
  synth   write N synthetic decisions (SYNTHETIC — benchmark only) into a folder
  vectors the encoder's vectors on this CPU (gold questions, sample chunks and sentences), or compare two CPUs'

python -m bench COMMAND --help for the options."""

def _run(rest: list[str]) -> int:
    from bench.run import main as run_main

    return run_main(rest, prog="python -m bench run")


def _load(rest: list[str]) -> int:
    from bench.load import main as load_main
    from core.logs import setup_logging

    setup_logging("WARNING")  # 20 clients' HTTP requests at INFO would bury the table
    return load_main(rest, prog="python -m bench load")


def _browse(rest: list[str]) -> int:
    from bench.browse import main as browse_main

    return browse_main(rest, prog="python -m bench browse")


def _synth(rest: list[str]) -> int:
    from bench.synth import main as synth_main

    return synth_main(rest, prog="python -m bench synth")


def _vectors(rest: list[str]) -> int:
    from bench.vectors import main as vectors_main
    from core.logs import setup_logging

    setup_logging("WARNING")
    return vectors_main(rest, prog="python -m bench vectors")


def main(argv: list[str] | None = None) -> int:
    """Dispatch to the sub-command."""
    return dispatch(argv, USAGE, {"run": _run, "load": _load, "browse": _browse, "synth": _synth,
                                  "vectors": _vectors})


if __name__ == "__main__":
    sys.exit(main())
