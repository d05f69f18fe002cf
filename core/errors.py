"""The project's exception tree: caught only at the edges (app, CLIs), each message says what to do."""

from __future__ import annotations


class OmbudsError(Exception):
    """Base class for every error this project raises on purpose."""


class ConfigError(OmbudsError):
    """A setting or argument is invalid; the message names the value and the fix."""


class ParseError(OmbudsError):
    """A file could not be read as a decision; the message says why."""


class IndexStateError(OmbudsError):
    """The index (catalog or Chroma) is missing, corrupt or inconsistent."""


class IndexMismatchError(IndexStateError):
    """The index was built with another embedding model or chunking configuration."""


class IndexBusyError(IndexStateError):
    """Another process holds the embedded index; use the Chroma server mode to share it."""


class QuestionError(OmbudsError):
    """The question cannot be asked as given (empty, too long, ...)."""


class BackendError(OmbudsError):
    """An answer backend (LLM endpoint, local model) failed."""


def cli_error(exc: BaseException) -> int:
    """Print `error: <message>` to stderr; the exit code for it: 2 for what the person fixes (a setting, a missing
    or mismatched index), 1 for a failure while running."""
    import sys

    print(f"error: {exc}", file=sys.stderr)
    return 2 if isinstance(exc, (ConfigError, IndexStateError)) else 1


__all__ = [
    "cli_error",
    "BackendError",
    "ConfigError",
    "IndexBusyError",
    "IndexStateError",
    "IndexMismatchError",
    "OmbudsError",
    "ParseError",
    "QuestionError",
]
