"""The one way our `python -m PACKAGE COMMAND ...` entry points dispatch to their sub-commands."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping


def dispatch(argv: list[str] | None, usage: str, commands: Mapping[str, Callable[[list[str]], int]]) -> int:
    """Run commands[argv[0]] with the rest of argv. Exit codes: the command's; 0 for --help; 2 with the usage for
    no command or an unknown one (saying which commands there are)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage, file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in commands:
        names = list(commands)
        print(usage, file=sys.stderr)
        print(f"\nerror: unknown command {command!r}: use {', '.join(names[:-1])} or {names[-1]}", file=sys.stderr)
        return 2
    return commands[command](rest)
