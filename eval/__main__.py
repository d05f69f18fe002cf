"""python -m eval run|compare — evaluate the assistant on a gold set, or compare configurations.

    python -m eval run --gold eval/gold/dev.jsonl --corpus data/sample eval/corpus/dev --out reports/latest
    python -m eval compare --gold eval/gold/dev.jsonl --corpus data/sample eval/corpus/dev --out reports/compare

Exit codes: 0 done, 1 failed while running, 2 usage or configuration error.
"""

from __future__ import annotations

import sys

USAGE = """usage: python -m eval {run,compare} [options]

commands:
  run       ask every gold question, write results.jsonl, report.json, report.md and plots
  compare   run several configurations on the same gold set and write one comparison table
  fit-policy  fit the answer-or-decline model on one gold split and report it on another

python -m eval run --help / python -m eval compare --help for the options."""


def main(argv: list[str] | None = None) -> int:
    """Dispatch to the sub-command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "run":
        from eval.run import main as run_main

        return run_main(rest, prog="python -m eval run")
    if command == "fit-policy":
        from eval.policy_fit import main as fit_main

        return fit_main(rest)
    if command == "compare":
        from eval.compare import main as compare_main

        return compare_main(rest, prog="python -m eval compare")
    print(USAGE, file=sys.stderr)
    print(f"\nerror: unknown command {command!r}: use run, compare or fit-policy", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
