"""Ask questions of Ombudsman decisions and get answers that cite case numbers and paragraphs.

Example:
    >>> from rag import Assistant
    >>> a = Assistant.from_settings()                               # doctest: +SKIP
    >>> ans = a.ask("When does the ICO handle rectification?")      # doctest: +SKIP
    >>> print(ans.text)                                             # doctest: +SKIP
    >>> [c.label for c in ans.citations]                            # doctest: +SKIP
    ['23 009 429 ¶7', ...]
"""

from rag.assistant import Assistant
from rag.errors import (BackendError, ConfigError, IndexBusyError, IndexMismatchError, IndexStateError, OmbudsError,
                        ParseError, QuestionError)
from rag.settings import Settings, load_settings
from rag.types import Answer, Chunk, Citation, Decision, Filters, Hit, Message

__all__ = [
    "Answer", "Assistant", "BackendError", "Chunk", "Citation", "ConfigError", "Decision", "Filters", "Hit",
    "IndexBusyError", "IndexMismatchError", "IndexStateError", "Message", "OmbudsError", "ParseError",
    "QuestionError", "Settings", "load_settings",
]
