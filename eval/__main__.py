"""python -m eval run|compare — evaluate the assistant on a gold set, or compare configurations.

    python -m eval run --gold eval/gold/dev.jsonl --corpus data/sample eval/corpus/dev --out reports/latest
    python -m eval compare --gold eval/gold/dev.jsonl --corpus data/sample eval/corpus/dev --out reports/compare

Exit codes: 0 done, 1 failed while running, 2 usage or configuration error.
"""

from __future__ import annotations

import sys

from core.cli import dispatch

USAGE = """usage: python -m eval {run,compare} [options]

commands:
  run       ask every gold question, write results.jsonl, report.json, report.md and plots
  compare   run several configurations on the same gold set and write one comparison table
  fit-policy  fit the answer-or-decline model on one gold split and report it on another

python -m eval run --help / python -m eval compare --help for the options."""


def _run(rest: list[str]) -> int:
    from eval.run import main as run_main

    return run_main(rest, prog="python -m eval run")


def _compare(rest: list[str]) -> int:
    from eval.compare import main as compare_main

    return compare_main(rest, prog="python -m eval compare")


def _fit_policy(rest: list[str]) -> int:
    from eval.policy_fit import main as fit_main

    return fit_main(rest)


def main(argv: list[str] | None = None) -> int:
    """Dispatch to the sub-command."""
    return dispatch(argv, USAGE, {"run": _run, "compare": _compare, "fit-policy": _fit_policy})


if __name__ == "__main__":
    sys.exit(main())
