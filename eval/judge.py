"""Optional LLM judge (RAGAS-style faithfulness and answer correctness), used only when an endpoint is given.

`python -m eval run ... --judge-base-url http://127.0.0.1:8080/v1 --judge-model NAME` asks any
OpenAI-compatible endpoint (vLLM, Ollama, llama.cpp server, OpenAI) to grade each answer; the API key is
the assistant's own setting (OMBUDS_OPENAI_API_KEY). Without those flags nothing here runs and no other
metric depends on it. The prompt is eval/prompts/judge.md; its version is recorded in the report.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.errors import BackendError
from rag.prompts import load_prompt

log = logging.getLogger(__name__)

PROMPT_DIR = Path(__file__).resolve().parent / "prompts"
KEYS = ("faithfulness", "correctness")


def parse_scores(text: str) -> dict[str, float | None]:
    """The two scores from the judge's reply (the first JSON object in it); None for what is missing."""
    found: dict[str, Any] = {}
    for m in re.finditer(r"\{[^{}]*\}", text):
        try:
            found = json.loads(m.group(0))
            break
        except json.JSONDecodeError:
            continue
    out: dict[str, float | None] = {}
    for key in KEYS:
        value = found.get(key) if isinstance(found, dict) else None
        try:
            out[key] = min(1.0, max(0.0, float(value))) if value is not None else None
        except (TypeError, ValueError):
            out[key] = None
    if all(v is None for v in out.values()):
        log.warning("judge reply had no scores: %.200r", text)
    return out


class Judge:
    """Grades one answer at a time through an OpenAI-compatible chat endpoint."""

    def __init__(self, base_url: str, model: str, api_key: str = "not-needed", timeout_s: float = 60.0,
                 chat_model: Any = None, prompt_dir: Path = PROMPT_DIR):
        self.base_url = base_url
        self.model = model
        self.prompt = load_prompt("judge", prompt_dir)
        if chat_model is None:
            from langchain_openai import ChatOpenAI

            chat_model = ChatOpenAI(base_url=base_url, api_key=api_key, model=model, temperature=0.0,
                                    timeout=timeout_s, max_retries=1, max_tokens=200)
        self.chat = chat_model

    @property
    def prompt_version(self) -> str:
        """Version of eval/prompts/judge.md."""
        return self.prompt.version

    def describe(self) -> dict[str, str]:
        """What the report records about the judge."""
        return {"base_url": self.base_url, "model": self.model, "prompt_version": self.prompt_version}

    def score(self, question: str, answer: str, passages: Sequence[str], reference: str | None) -> dict[str, Any]:
        """{"faithfulness": 0-1 | None, "correctness": 0-1 | None}; BackendError when the endpoint fails."""
        from langchain_core.messages import HumanMessage, SystemMessage

        user = (self.prompt.user.replace("{question}", question)
                .replace("{passages}", "\n\n".join(f"[{i}] {p}" for i, p in enumerate(passages, 1)) or "(none)")
                .replace("{answer}", answer)
                .replace("{reference}", reference or "(no reference answer)"))
        try:
            reply = self.chat.invoke([SystemMessage(self.prompt.system), HumanMessage(user)])
        except Exception as exc:  # openai/httpx raise many kinds; all mean the judge is unusable
            raise BackendError(f"The judge endpoint {self.base_url} failed ({type(exc).__name__}: "
                               f"{str(exc)[:200]}). Check --judge-base-url/--judge-model, or drop them.") from None
        scores = parse_scores(str(reply.content))
        if reference is None:
            scores["correctness"] = None
        return scores
