"""build_app(assistant, settings) makes the Gradio Blocks over an opened Assistant; launch(demo, settings) serves it
with the app's look and access rules.

Gradio is imported when the page is built, not when this module is: `import app` (the CLI's --help, the load
test's client) stays quick.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ui import assets
from ui.access import auth_for
from ui.audit_log import ensure_private_dir

if TYPE_CHECKING:
    import gradio as gr

    from core.settings import Settings
    from rag.assistant import Assistant

TITLE = "Ombudsman decisions assistant"


def build_app(assistant: Assistant, settings: Settings) -> gr.Blocks:
    """The chat UI over an opened Assistant. Launch it with launch(demo, settings)."""
    import gradio as gr

    from ui.chat import ChatHandlers
    from ui.decisions import DecisionHandlers, open_browser
    from ui.events import wire
    from ui.layout import build_page
    from ui.render import status_markdown

    browser = open_browser(assistant)
    ensure_private_dir(settings.log_dir)
    export_dir = Path(tempfile.mkdtemp(prefix="ombuds-export-"))  # 0700; each export file 0600
    atexit.register(shutil.rmtree, export_dir, ignore_errors=True)
    chat = ChatHandlers(assistant, settings, export_dir)
    decisions = DecisionHandlers(assistant, browser, export_dir)
    # A local GGUF model is not safe to call from two threads at once; the other backends are.
    concurrency = 1 if settings.llm == "llamacpp" else 4
    with gr.Blocks(title=TITLE, analytics_enabled=False, fill_width=True, delete_cache=(3600, 86400)) as demo:
        page = build_page(chat.filter_choices, status_markdown(assistant.status()), settings.allow_upload)
        wire(demo, page, chat, decisions, concurrency)
    return demo


def theme() -> Any:
    """A calm, readable theme with system fonts (no web-font download: the app makes no outbound requests)."""
    import gradio as gr

    system = ["system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif"]
    mono = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]
    return gr.themes.Default(primary_hue="blue", secondary_hue="slate", neutral_hue="slate", font=system,
                             font_mono=mono, radius_size="md").set(
        body_background_fill="#f3f5f8", block_shadow="none", block_label_background_fill="transparent",
        block_label_border_width="0px", block_title_text_weight="600",
        # WCAG 2.2 AA contrast (4.5:1 for text), measured by axe-core: the default subdued text (#94a3b8 on
        # #f3f5f8, 2.3:1) and white on the default primary blue (#3b82f6, 3.7:1) fall short.
        body_text_color_subdued="#475569", button_primary_background_fill="#1d4ed8",
        button_primary_background_fill_hover="#1e40af", button_primary_text_color="#ffffff",
        button_primary_text_color_hover="#ffffff",
    )


def launch_kwargs(settings: Settings) -> dict[str, Any]:
    """Everything launch() needs besides host and port: look, auth, and nothing that calls out."""
    return {
        "theme": theme(),
        "css": assets.css(),
        "head": assets.head(),
        "auth": auth_for(settings),
        "auth_message": "Sign in to the Ombudsman decisions assistant.",
        "share": False,
        "show_error": False,  # tracebacks go to the server log, never to the page
        "footer_links": [],
        "max_file_size": settings.max_file_bytes,
        "enable_monitoring": False,
        "pwa": False,
        "mcp_server": False,
        "ssr_mode": False,
        "inbrowser": False,
    }


def launch(demo: gr.Blocks, settings: Settings, **overrides: Any) -> Any:
    """Launch on settings.host:settings.port with the app's look and access rules (overrides win)."""
    kwargs = launch_kwargs(settings)
    kwargs.update(overrides)
    return demo.launch(server_name=settings.host, server_port=settings.port, **kwargs)
