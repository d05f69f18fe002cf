"""Logging set-up for the entry points (library modules only call logging.getLogger(__name__))."""

from __future__ import annotations

import logging
import warnings

NOISY = ("chromadb", "httpx", "httpcore", "urllib3", "sentence_transformers", "transformers", "gradio",
         "uvicorn.access", "matplotlib", "numba", "openai", "langchain")


def setup_logging(level: str = "INFO") -> None:
    """Human-readable logs on stderr; third-party chatter kept at WARNING."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    for name in NOISY:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*telemetry.*")
