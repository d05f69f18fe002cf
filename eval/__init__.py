"""Evaluation of the assistant against gold questions: metrics, runs, configuration comparisons.

Example:
    >>> from eval import load_gold                                        # doctest: +SKIP
    >>> questions = load_gold("eval/gold/dev.jsonl")                      # doctest: +SKIP
    >>> from eval.run import evaluate_assistant, summarise                # doctest: +SKIP

Command line: `python -m eval run ...` and `python -m eval compare ...` (see eval/__main__.py).

Names are imported lazily: `import eval` must stay light (ranx, torch, Chroma load only when used).
"""

from __future__ import annotations

from core.lazy import lazy_exports

_EXPORTS = {
    "GoldError": "eval.gold", "GoldQuestion": "eval.gold", "load_gold": "eval.gold",
    "Sample": "eval.metrics", "DocRef": "eval.metrics", "MetricInputError": "eval.metrics",
    "default_metrics": "eval.metrics", "score_samples": "eval.metrics", "summarise": "eval.metrics",
    "paired_test": "eval.metrics",
}

__all__, __getattr__, __dir__ = lazy_exports("eval", _EXPORTS)
