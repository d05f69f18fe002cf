"""The chat UI staff use: python app.py (or make run) opens it on http://127.0.0.1:7860.

main() builds Settings from the environment and flags, refuses an exposed bind address without a username and
password, opens the Assistant, warms the embedding model, builds the page (ui/) and launches it. build_app and
launch are the ui package's (ui/webapp.py), importable from here for the benchmarks and tests.
"""

import argparse
import logging
import os
import sys
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import TYPE_CHECKING

# The ui package sets Gradio's environment on import, before anything imports gradio.
from ui.access import auth_for, bind_problem, is_loopback
from ui.webapp import TITLE, build_app, launch

if TYPE_CHECKING:
    from core.settings import Settings

__all__ = ["auth_for", "bind_problem", "build_app", "build_parser", "is_loopback", "launch", "main"]

log = logging.getLogger("app")


def build_parser() -> argparse.ArgumentParser:
    """Flags override OMBUDS_* environment variables and .env."""
    p = argparse.ArgumentParser(prog="python app.py", description=f"{TITLE}: the chat UI (Gradio). "
                                "Settings come from OMBUDS_* environment variables or .env; flags override them.")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1; any other needs "
                                  "OMBUDS_AUTH_USERNAME and OMBUDS_AUTH_PASSWORD)")
    p.add_argument("--port", type=int, help="port (default 7860)")
    p.add_argument("--index-dir", type=Path, help="index folder (default data/index)")
    p.add_argument("--chroma-url", help="use a Chroma server, e.g. http://127.0.0.1:8000 (default: embedded)")
    p.add_argument("--llm", choices=["extractive", "openai", "llamacpp"], help="answer backend (default extractive)")
    p.add_argument("--openai-base-url", help="OpenAI-compatible endpoint for --llm openai")
    p.add_argument("--openai-model", help="model name for --llm openai")
    p.add_argument("--model-path", type=Path, help="GGUF file for --llm llamacpp")
    p.add_argument("--log-dir", type=Path, help="folder of the audit and feedback logs (default data/logs)")
    p.add_argument("--allow-upload", action="store_true", default=None,
                   help="let staff add decision files from the UI")
    return p


def setup_app_logging(settings: "Settings") -> None:
    """Logs to stderr and to log_dir/app.log (owner-only): tracebacks go here, never to the page."""
    from core.logs import setup_logging
    from ui.audit_log import OWNER_ONLY_FILE, ensure_private_dir

    setup_logging(settings.log_level)
    ensure_private_dir(settings.log_dir)
    path = settings.log_dir / "app.log"
    os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, OWNER_ONLY_FILE))
    handler = RotatingFileHandler(path, maxBytes=5_000_000, backupCount=3, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)


def main(argv: list[str] | None = None) -> int:
    """Entry point: 0 after a normal shutdown, 2 for configuration, access or index problems."""
    args = build_parser().parse_args(argv)
    from core.errors import ConfigError, IndexStateError
    from core.settings import load_settings

    try:
        settings = load_settings(host=args.host, port=args.port, index_dir=args.index_dir, chroma_url=args.chroma_url,
                                 llm=args.llm, openai_base_url=args.openai_base_url, openai_model=args.openai_model,
                                 llamacpp_model_path=args.model_path, log_dir=args.log_dir,
                                 allow_upload=args.allow_upload)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    problem = bind_problem(settings)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    setup_app_logging(settings)
    from rag.assistant import Assistant

    try:
        assistant = Assistant.from_settings(settings)
        log.info("warming up: the embedding model, the vector and lexical indexes")
        log.info("warm in %.1f s", assistant.warm_up())
    except (ConfigError, IndexStateError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        demo = build_app(assistant, settings)
        status = assistant.status()
        log.info("%s decisions indexed; answers by %s; open http://%s:%d", status["decisions"], status["backend"],
                 settings.host if ":" not in settings.host else f"[{settings.host}]", settings.port)
        launch(demo, settings)
    except KeyboardInterrupt:
        pass
    finally:
        assistant.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
