"""The UI's stylesheet and script, ui/static/app.css and app.js (package data), read once at start-up.

Gradio takes them as strings: launch(css=css(), head=head()).
"""

from __future__ import annotations

import functools
from importlib.resources import files


@functools.cache
def _static(name: str) -> str:
    return files("ui").joinpath("static", name).read_text(encoding="utf-8")


def css() -> str:
    """The stylesheet (ui/static/app.css)."""
    return _static("app.css")


def js() -> str:
    """The script (ui/static/app.js): opens decisions in place, shows cited cards and paragraphs."""
    return _static("app.js")


def head() -> str:
    """What goes into the page's <head>: the script."""
    return f"<script>{js()}</script>"
