"""The Jinja2 environment of the UI's HTML: templates are files in ui/templates/, every value autoescaped.

The only markup in the page is the templates'; text from a decision or a person goes in as a value and is
escaped, so a decision containing <script> or <img onerror=...> is displayed, never run.
"""

from __future__ import annotations

import functools
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from ui.format import format_date, stated_date


@functools.cache
def environment() -> Environment:
    """The one environment (built on first use): autoescape on for every template, block lines trimmed."""
    env = Environment(loader=PackageLoader("ui", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["date"] = format_date
    env.filters["stated_date"] = stated_date
    env.filters["num"] = "{:,}".format
    return env


def render(name: str, **values: Any) -> str:
    """A template of ui/templates/ rendered with these values, without leading or trailing whitespace."""
    return environment().get_template(name).render(**values).strip()
