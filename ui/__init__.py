"""The chat UI (Gradio): what is shown, the handlers behind it, the page's layout and its wiring.

    format.py, templating.py  escaping, dates, ids; the autoescaping Jinja2 environment over templates/
    render.py                 chat Markdown, source cards and the export for a conversation (Turn)
    viewer.py                 the decision viewer's and the decisions browser's HTML; shared addresses
    audit_log.py              audit and feedback records, append-only owner-only JSONL
    chat.py, decisions.py     the handlers: plain methods over the app's dependencies, testable without a page
    uploads.py                decision files added from the page, ingested into the open index
    layout.py, events.py      the components, then the events that connect them to the handlers
    webapp.py                 build_app(assistant, settings) and launch(); access.py: who may connect
    static/app.css, app.js    the stylesheet and script (assets.py reads them)

Importing the package sets Gradio's environment before any module of it imports gradio.
"""

import os

from core.settings import apply_offline_environment

# Before gradio is imported anywhere: it reads GRADIO_ANALYTICS_ENABLED at import time.
apply_offline_environment()
# Gradio's queue keeps per-event timings for its monitoring page and, after every event, summarises its last
# 10 000 events with pandas: under 20 concurrent sessions that summary cost more than answering (py-spy,
# bench/NOTES.md §9). Keep fewer events and summarise every 100 (read when the queue is created).
os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", "1000")
os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "100")
