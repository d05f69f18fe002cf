"""Ask questions of Ombudsman decisions and get answers that cite case numbers and paragraphs.

Example:
    >>> from rag import Assistant
    >>> a = Assistant.from_settings()                               # doctest: +SKIP
    >>> ans = a.ask("When does the ICO handle rectification?")      # doctest: +SKIP
    >>> print(ans.text)                                             # doctest: +SKIP
    >>> [c.label for c in ans.citations]                            # doctest: +SKIP
    ['24 005 748 ¶8', '002_7d099216e168a9a0 ¶12', '23 009 429 ¶7', ...]

Names are imported lazily so that `import rag` stays light; the values and settings live in the core package.
"""

from __future__ import annotations

from core.lazy import lazy_exports

_EXPORTS = {
    "Assistant": "rag.assistant",
    "Answer": "core.types", "Chunk": "core.types", "Citation": "core.types", "Decision": "core.types",
    "Filters": "core.types", "Hit": "core.types", "Message": "core.types",
    "Settings": "core.settings", "load_settings": "core.settings",
    "BackendError": "core.errors", "ConfigError": "core.errors", "IndexBusyError": "core.errors",
    "IndexMismatchError": "core.errors", "IndexStateError": "core.errors", "OmbudsError": "core.errors",
    "ParseError": "core.errors", "QuestionError": "core.errors",
}

__all__, __getattr__, __dir__ = lazy_exports("rag", _EXPORTS)
