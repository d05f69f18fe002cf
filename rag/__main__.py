"""python -m rag ask "QUESTION" — answer from the command line (text, or --json)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.settings import apply_offline_environment


def _date(value: str) -> str:
    import datetime as dt

    try:
        dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date; write YYYY-MM-DD") from None
    return value


def _positive(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if not 1 <= n <= 100:
        raise argparse.ArgumentTypeError(f"{n} is out of range: use 1 to 100")
    return n


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    p = argparse.ArgumentParser(prog="python -m rag", description="Ask the Ombudsman decisions assistant.")
    sub = p.add_subparsers(dest="command", required=True)
    ask = sub.add_parser("ask", help="answer one question")
    ask.add_argument("question")
    ask.add_argument("--json", action="store_true", help="print the Answer as one JSON object")
    ask.add_argument("--index-dir", type=Path)
    ask.add_argument("--chroma-url")
    ask.add_argument("--llm", choices=["extractive", "openai", "llamacpp"])
    ask.add_argument("--openai-base-url")
    ask.add_argument("--openai-model")
    ask.add_argument("--model-path", type=Path, help="GGUF file for --llm llamacpp")
    ask.add_argument("--k", type=_positive, help="passages to answer from (1-100)")
    ask.add_argument("--authority", help="only decisions about this council")
    ask.add_argument("--category")
    ask.add_argument("--outcome")
    ask.add_argument("--since", type=_date, help="decided on or after YYYY-MM-DD")
    ask.add_argument("--until", type=_date, help="decided on or before YYYY-MM-DD")
    ask.add_argument("--no-stream", action="store_true", help="print the answer only when complete")
    sub.add_parser("status", help="show what the index holds").add_argument("--index-dir", type=Path)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point: exit 0 answered, 1 abstained or failed at run time, 2 usage/configuration errors."""
    apply_offline_environment()
    args = build_parser().parse_args(argv)
    from core.errors import ConfigError, IndexStateError, OmbudsError, QuestionError
    from core.logs import setup_logging
    from core.settings import load_settings
    from core.types import Answer, Filters
    from rag.assistant import Assistant

    try:
        settings = load_settings(
            index_dir=args.index_dir, chroma_url=getattr(args, "chroma_url", None), llm=getattr(args, "llm", None),
            openai_base_url=getattr(args, "openai_base_url", None), openai_model=getattr(args, "openai_model", None),
            llamacpp_model_path=getattr(args, "model_path", None), k=getattr(args, "k", None))
        setup_logging("WARNING")
        assistant = Assistant.from_settings(settings)
    except (ConfigError, IndexStateError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with assistant:
        try:
            if args.command == "status":
                for key, value in assistant.status().items():
                    print(f"{key}: {value}")
                return 0
            filters = Filters(authority=args.authority, category=args.category, outcome=args.outcome,
                              since=args.since, until=args.until)
            answer = None
            stream_out = not args.json and not args.no_stream and sys.stdout.isatty()
            for item in assistant.stream(args.question, filters):
                if isinstance(item, Answer):
                    answer = item
                elif stream_out:
                    print(item, end="", flush=True)
        except (QuestionError, ConfigError, IndexStateError) as exc:  # bad filters; damage found by a query
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except OmbudsError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    assert answer is not None
    if args.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
    else:
        if stream_out:
            print("\n")
        print(answer.text if not stream_out else "", end="\n" if not stream_out else "")
        if answer.citations:
            print("\nSources:")
            for c in answer.citations:
                date = c.decision_date.isoformat() if c.decision_date else "no date"
                print(f"  [{c.label}] {c.authority or '-'}, {date}, {c.outcome or '-'}")
        print(f"\n({answer.backend}; {answer.timings_ms.get('total_ms', 0):.0f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
