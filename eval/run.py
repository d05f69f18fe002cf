"""`python -m eval run`: ask every gold question, score the answers, write results, report and plots.

    python -m eval run --gold eval/gold/dev.jsonl --corpus data/sample eval/corpus/dev --out reports/latest

With --corpus and no --index-dir the corpus is ingested into a fresh temporary index (fictional
evaluation decisions allowed there), deleted afterwards. Outputs in --out: results.jsonl (one line per
question), report.json, report.md, metrics_by_type.png, latency.png.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import logging
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eval.gold import GoldQuestion, file_sha256, load_gold
from eval.metrics import (
    DocRef,
    Metric,
    Sample,
    default_metrics,
    latency_stages,
    score_samples,
    summarise,
    worst_questions,
)

if TYPE_CHECKING:
    from core.settings import Settings
    from core.types import Answer
    from eval.judge import Judge
    from ingest.embed import Embedder
    from rag.assistant import Assistant

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
N_RESAMPLES = 2000
SEED = 20240601


# --- the corpus and its index -------------------------------------------------------------------------
@dataclass
class CorpusInfo:
    """What was evaluated against: the paths ingested, the index, and a fingerprint of the content."""

    paths: list[str]
    index_dir: str
    temporary: bool
    fingerprint: str
    decisions: int
    chunks: int
    ingest: dict[str, Any] = field(default_factory=dict)
    ingest_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dict(self.__dict__)


def corpus_fingerprint(catalog: Any) -> str:
    """sha256 over the sorted content hashes of every indexed decision (file names do not matter)."""
    hashes = sorted(state.content_hash for doc_id, _ in catalog.all_sources()
                    if (state := catalog.state(doc_id)) is not None)
    return hashlib.sha256("\n".join(hashes).encode()).hexdigest()


def is_default_index(settings: Settings) -> bool:
    """True for the index the app serves (fictional evaluation decisions must not go there)."""
    from core.settings import Settings

    return not settings.chroma_url and Path(settings.index_dir).resolve() == Settings().index_dir.resolve()


def ingest_corpus(settings: Settings, paths: Sequence[str | Path], embedder: Embedder | None = None,
                  show_bar: bool = False) -> dict[str, Any]:
    """Ingest decision files into the index the settings name (incremental); returns the ingest report."""
    from ingest.index import Indexer, open_index

    index = open_index(settings, write=True, embedder=embedder)
    try:
        report = Indexer(index, allow_fictional=not is_default_index(settings)).ingest(paths, show_bar=show_bar)
    finally:
        index.close()
    if report.failed:
        for item in report.failures:
            log.warning("not ingested: %s: %s", item["path"], item["reason"])
    return report.to_dict()


def describe_index(settings: Settings, paths: Sequence[str | Path], temporary: bool,
                   ingest: dict[str, Any] | None = None, seconds: float = 0.0) -> CorpusInfo:
    """Fingerprint and counts of the index the settings name."""
    from ingest.catalog import open_catalog

    catalog = open_catalog(settings, create=False)
    try:
        return CorpusInfo(paths=[str(p) for p in paths], index_dir=str(settings.index_dir), temporary=temporary,
                          fingerprint=corpus_fingerprint(catalog), decisions=catalog.count_decisions(),
                          chunks=catalog.count_chunks(), ingest=_ingest_summary(ingest), ingest_seconds=seconds)
    finally:
        catalog.close()


def _ingest_summary(report: dict[str, Any] | None) -> dict[str, Any]:
    if not report:
        return {}
    keys = ("files_seen", "added", "updated", "unchanged", "duplicate", "failed", "chunks_written", "seconds")
    return {k: report[k] for k in keys if k in report} | {"failures": report.get("failures", [])}


def open_assistant(settings: Settings, embedder: Embedder | None = None, backend: Any = None) -> Assistant:
    """An Assistant over an existing index, sharing an already-loaded embedder when given."""
    from ingest.index import open_index
    from rag.assistant import Assistant

    index = open_index(settings, write=False, create=False, embedder=embedder)
    try:
        return Assistant(settings, index, backend=backend)
    except BaseException:
        index.close()
        raise


# --- asking, and turning an Answer into a Sample ------------------------------------------------------
def count_sentences(text: str) -> int:
    """Sentences the citation check considers (4 words or more, outside headings), with or without citations."""
    from rag.cite import UNCITED_MARK, mark_uncited_sentences

    bare = re.sub(r"\[[^\[\]]*\]", "", text).replace(UNCITED_MARK, "")
    return mark_uncited_sentences(bare)[1]


class DocLabels:
    """doc id -> DocRef (with case number), looked up in the catalog once per decision."""

    def __init__(self, catalog: Any):
        self.catalog = catalog
        self._cache: dict[str, DocRef] = {}

    def __call__(self, doc_ids: Sequence[str]) -> list[DocRef]:
        missing = [d for d in doc_ids if d not in self._cache]
        if missing:
            found = self.catalog.decisions(missing)
            for d in missing:
                self._cache[d] = DocRef(d, found[d].case_number if d in found else None)
        return [self._cache[d] for d in doc_ids]


def decision_ranking(assistant: Assistant, q: GoldQuestion, answer: Answer) -> list[str]:
    """Every decision retrieval ranked for the question (Answer.sources holds only the top k chunks).

    The query is analysed again exactly as the assistant did; an LLM's standalone rewrite of a follow-up
    is taken from the Answer rather than asked for again.
    """
    from core.types import Filters
    from rag.answer import ChatBackend
    from rag.query import coerce_history

    messages = coerce_history(list(q.history))
    rewrite = None
    if isinstance(assistant.backend, ChatBackend) and messages:
        standalone = answer.standalone_question

        def rewrite(_question: str, _history: Any) -> str:
            return standalone

    query = assistant.analyser.analyse(q.question, Filters.from_dict(q.filters or None), messages, rewrite=rewrite)
    return list(assistant.retriever.retrieve(query).ranked_docs)


def sample_from_answer(q: GoldQuestion, answer: Answer, ranking: Sequence[DocRef],
                       judge: dict[str, Any] | None = None) -> Sample:
    """A Sample from the assistant's Answer and the full decision ranking."""
    from rag.cite import cited_labels  # the citation grammar the verifier uses

    sources = {h.chunk.doc_id for h in answer.sources} | {h.chunk.case_number for h in answer.sources
                                                          if h.chunk.case_number}
    refs = cited_labels(answer.text)
    fabricated_after = sum(1 for r in refs if r not in sources)
    fabricated_before = max(answer.fabricated_citations_removed, answer.fabricated_before_verification)
    cited: dict[str, DocRef] = {}
    for c in answer.citations:
        cited.setdefault(c.doc_id, DocRef(c.doc_id, c.case_number))
    return Sample.from_gold(
        q, retrieved=tuple(ranking), cited=tuple(cited.values()), answer=answer.text, abstained=answer.abstained,
        citations_written=len(refs) - fabricated_after + fabricated_before, fabricated_before=fabricated_before,
        citations_delivered=len(refs), fabricated_after=fabricated_after,
        sentences=0 if answer.abstained else count_sentences(answer.text),
        uncited_sentences=answer.uncited_sentences, timings_ms=dict(answer.timings_ms), judge=judge or {})


@dataclass
class RunRecord:
    """Per-question extras that results.jsonl carries beside the Sample."""

    backend: str
    prompt_version: str | None
    standalone_question: str
    filters_applied: dict[str, str]
    notes: list[str]
    fabricated_citations_removed: int
    paragraphs_corrected: int
    sources: list[dict[str, Any]]
    decline_reason: str | None = None
    policy_version: str | None = None
    relevance: dict[str, float] | None = None


def evaluate_assistant(assistant: Assistant, questions: Sequence[GoldQuestion], *, progress: bool = True,
                       desc: str = "questions", judge: Judge | None = None) -> tuple[list[Sample], list[RunRecord]]:
    """Ask every question (with its filters and history); returns the samples and per-question extras."""
    from tqdm import tqdm

    labels = DocLabels(assistant.index.catalog)
    samples: list[Sample] = []
    records: list[RunRecord] = []
    for q in tqdm(questions, desc=desc, unit="q", disable=not progress, file=sys.stderr, dynamic_ncols=True):
        try:
            answer = assistant.ask(q.question, filters=q.filters or None, history=[dict(m) for m in q.history])
        except Exception as exc:
            raise RuntimeError(f"gold question {q.id} ({q.question[:60]!r}) failed: {exc}") from exc
        ranking = labels(decision_ranking(assistant, q, answer))
        scores = None
        if judge is not None:
            scores = judge.score(q.question, answer.text, [h.chunk.text for h in answer.sources], q.reference_answer)
        samples.append(sample_from_answer(q, answer, ranking, scores))
        records.append(RunRecord(
            backend=answer.backend, prompt_version=answer.prompt_version,
            standalone_question=answer.standalone_question, filters_applied=answer.filters_applied.to_dict(),
            notes=list(answer.notes), fabricated_citations_removed=answer.fabricated_citations_removed,
            paragraphs_corrected=answer.paragraphs_corrected, decline_reason=answer.decline_reason,
            policy_version=answer.policy_version, relevance=dict(answer.relevance),
            sources=[{"rank": h.rank, "label": h.chunk.label, "section": h.chunk.section,
                      "paragraphs": list(h.chunk.paragraphs), "retrievers": list(h.retrievers)}
                     for h in answer.sources]))
    return samples, records


def policy_margin(assistant: Assistant, questions: Sequence[GoldQuestion], delta: float = 0.01,
                  progress: bool = False) -> dict[str, Any]:
    """How many questions' answer/decline outcome flips when every similarity moves by ±delta (issue 11)."""
    from eval.policy_fit import examine_all, flips

    return flips(examine_all(assistant, questions, progress), assistant.relevance, delta)


def _cpu() -> str:
    from ingest.cpu import cpu_info

    return cpu_info().describe()


# --- provenance -------------------------------------------------------------------------------------
def git_state(root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """Commit and whether the work tree has changes; None values when git or the repository is absent."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip() != ""
        return {"commit": commit, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def prompt_versions(settings: Settings) -> dict[str, str | None]:
    """Versions of the prompt files the settings point at (recorded even for the extractive backend)."""
    from core.errors import ConfigError
    from rag.prompts import load_prompt

    out: dict[str, str | None] = {}
    for name in ("answer", "condense"):
        try:
            out[name] = load_prompt(name, settings.prompt_dir).version
        except ConfigError:
            out[name] = None
    return out


def build_report(name: str, samples: Sequence[Sample], records: Sequence[RunRecord], settings: Settings,
                 corpus: CorpusInfo | None, gold_path: Path | None, metrics: Sequence[Metric] | None = None,
                 n_resamples: int = N_RESAMPLES, seed: int = SEED, judge: Judge | None = None,
                 extra: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, list[float | None]]]:
    """report.json's content and the per-question scores."""
    if metrics is None:
        metrics = default_metrics(judge=judge is not None, stages=latency_stages(samples))
    scores = score_samples(samples, metrics)
    summary = summarise(samples, metrics, scores, n_resamples=n_resamples, seed=seed)
    by_type: dict[str, int] = {}
    for s in samples:
        by_type[s.type] = by_type.get(s.type, 0) + 1
    used_versions = sorted({r.prompt_version for r in records if r.prompt_version})
    policy_versions = sorted({r.policy_version for r in records if r.policy_version})
    reasons: dict[str, int] = {}
    false_reasons: dict[str, int] = {}  # the same, for answerable questions only: the false declines' reasons
    for r, s in zip(records, samples):
        if r.decline_reason:
            reasons[r.decline_reason] = reasons.get(r.decline_reason, 0) + 1
            if s.gold_cases:
                false_reasons[r.decline_reason] = false_reasons.get(r.decline_reason, 0) + 1
    backends = sorted({r.backend for r in records})
    worst = []
    for i, value in worst_questions(samples, scores, 10):
        s = samples[i]
        worst.append({"id": s.id, "type": s.type, "question": s.question, "question_score": round(value, 4),
                      "gold": list(s.gold_cases), "retrieved": [r.label for r in (s.retrieved or ())[:10]],
                      "cited": [r.label for r in (s.cited or ())], "abstained": s.abstained,
                      "mrr@10": scores["mrr@10"][i] if "mrr@10" in scores else None,
                      "key_fact_recall": scores.get("key_fact_recall", [None] * len(samples))[i]})
    report = {
        "name": name,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "git": git_state(),
        "gold": {"path": str(gold_path) if gold_path else None,
                 "sha256": file_sha256(gold_path) if gold_path and Path(gold_path).is_file() else None,
                 "questions": len(samples), "by_type": by_type},
        "corpus": corpus.to_dict() if corpus else None,
        "settings": settings.public_dict(),
        "backend": backends[0] if len(backends) == 1 else backends,
        "prompt_version": used_versions[0] if len(used_versions) == 1 else (used_versions or None),
        "prompt_files": prompt_versions(settings),
        "policy_version": policy_versions[0] if len(policy_versions) == 1 else (policy_versions or None),
        "decline_reasons": reasons,
        "false_decline_reasons": false_reasons,
        "judge": judge.describe() if judge else None,
        "bootstrap": {"method": "percentile", "resamples": n_resamples, "seed": seed, "confidence": 0.95},
        "metric_definitions": {m.name: {"group": m.group, "higher_is_better": m.higher_is_better,
                                        "description": m.description} for m in metrics},
        "metrics": summary,
        "worst": worst,
    }
    if extra:
        report.update(extra)
    return report, scores


def write_results(path: Path, samples: Sequence[Sample], records: Sequence[RunRecord] | None,
                  scores: dict[str, list[float | None]]) -> None:
    """results.jsonl: per question the Sample fields, readable labels, extras and every score."""
    import json

    with path.open("w", encoding="utf-8") as fh:
        for i, s in enumerate(samples):
            row = s.to_dict()
            row["retrieved_labels"] = [r.label for r in (s.retrieved or ())]
            row["cited_labels"] = None if s.cited is None else [r.label for r in s.cited]
            if records is not None:
                row.update(records[i].__dict__)
            row["scores"] = {name: (None if col[i] is None else round(col[i], 6)) for name, col in scores.items()}
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_run_outputs(out: Path, report: dict[str, Any], samples: Sequence[Sample],
                      records: Sequence[RunRecord] | None, scores: dict[str, list[float | None]]) -> dict[str, Path]:
    """Write results.jsonl, report.json, report.md and the plots into out; returns their paths."""
    import json

    from eval.report import plot_latency, plot_metrics_by_type, render_run_markdown

    out.mkdir(parents=True, exist_ok=True)
    paths = {"results": out / "results.jsonl", "report_json": out / "report.json", "report_md": out / "report.md",
             "metrics_plot": out / "metrics_by_type.png", "latency_plot": out / "latency.png"}
    write_results(paths["results"], samples, records, scores)
    paths["report_json"].write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    plot_metrics_by_type(report, paths["metrics_plot"])
    plot_latency(samples, paths["latency_plot"], title=report["name"])
    paths["report_md"].write_text(render_run_markdown(report, plots={"metrics": paths["metrics_plot"].name,
                                                                     "latency": paths["latency_plot"].name}),
                                  encoding="utf-8")
    return paths


# --- the command ------------------------------------------------------------------------------------
@contextmanager
def evaluation_index(settings: Settings, corpus: Sequence[Path], index_dir: Path | None,
                     embedder: Embedder | None = None, show_bar: bool = True) -> Iterator[tuple[Settings, CorpusInfo]]:
    """Settings whose index holds the corpus: a fresh temporary one unless index_dir is given."""
    temp = None
    if index_dir is None and corpus:
        temp = tempfile.TemporaryDirectory(prefix="ombuds-eval-")
        settings = settings.model_copy(update={"index_dir": Path(temp.name) / "index",
                                               "log_dir": Path(temp.name) / "logs"})
    try:
        report = None
        started = time.perf_counter()
        if corpus:
            report = ingest_corpus(settings, corpus, embedder, show_bar=show_bar)
        info = describe_index(settings, corpus, temporary=temp is not None, ingest=report,
                              seconds=time.perf_counter() - started if corpus else 0.0)
        yield settings, info
    finally:
        if temp is not None:
            temp.cleanup()


def _positive(limit: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            n = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
        if not 1 <= n <= limit:
            raise argparse.ArgumentTypeError(f"{n} is out of range: use 1 to {limit}")
        return n

    return parse


def add_common_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments run and compare share."""
    p.add_argument("--gold", type=Path, required=True, help="gold questions (JSONL), e.g. eval/gold/dev.jsonl")
    p.add_argument("--limit", type=_positive(100_000), help="only the first N questions")
    p.add_argument("--seed", type=int, default=SEED, help=f"bootstrap seed (default {SEED})")
    p.add_argument("--resamples", type=_positive(1_000_000), default=N_RESAMPLES,
                   help=f"bootstrap resamples (default {N_RESAMPLES})")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def build_parser(prog: str = "python -m eval run") -> argparse.ArgumentParser:
    """The `run` command line."""
    p = argparse.ArgumentParser(
        prog=prog, description="Evaluate the assistant on a gold set and write a report.",
        epilog="The LLM judge is optional: only with --judge-base-url and --judge-model does it grade answers "
               "(faithfulness, correctness; key from OMBUDS_OPENAI_API_KEY). Nothing else needs it. "
               "See eval/README.md.")
    add_common_arguments(p)
    p.add_argument("--corpus", type=Path, nargs="+", default=[], metavar="DIR",
                   help="decision files/folders to ingest first (into a fresh temporary index unless --index-dir)")
    p.add_argument("--index-dir", type=Path, help="evaluate this index (and ingest --corpus into it, if given)")
    p.add_argument("--llm", choices=["extractive", "openai", "llamacpp"], help="answer backend (default: settings)")
    p.add_argument("--openai-base-url", help="endpoint for --llm openai, e.g. http://127.0.0.1:8080/v1")
    p.add_argument("--openai-model", help="model name for --llm openai")
    p.add_argument("--model-path", type=Path, help="GGUF file for --llm llamacpp")
    p.add_argument("--k", type=_positive(100), help="passages handed to the answer stage (1-100)")
    p.add_argument("--out", type=Path, default=PROJECT_ROOT / "reports" / "latest", help="output folder")
    p.add_argument("--name", help="name shown in the report (default: the output folder's name)")
    p.add_argument("--judge-base-url", help="OpenAI-compatible endpoint for the optional LLM judge")
    p.add_argument("--judge-model", help="model name for the LLM judge (needs --judge-base-url)")
    return p


def check_paths(parser: argparse.ArgumentParser, gold: Path, corpus: Sequence[Path]) -> None:
    """Usage errors (exit 2) for a missing gold file or corpus path."""
    if not gold.is_file():
        parser.error(f"--gold {gold}: no such file")
    for path in corpus:
        if not path.exists():
            parser.error(f"--corpus {path}: no such file or directory")


def main(argv: list[str] | None = None, prog: str = "python -m eval run") -> int:
    """Entry point: 0 done, 1 failed while running, 2 usage or configuration error."""
    from core.settings import apply_offline_environment

    apply_offline_environment()
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    check_paths(parser, args.gold, args.corpus)
    if bool(args.judge_base_url) != bool(args.judge_model):
        parser.error("--judge-base-url and --judge-model go together")

    from core.errors import ConfigError, OmbudsError, cli_error
    from core.logs import setup_logging
    from core.settings import load_settings
    from eval.gold import GoldError

    setup_logging("WARNING")
    try:
        questions = load_gold(args.gold)[: args.limit]
        settings = load_settings(index_dir=args.index_dir, llm=args.llm, openai_base_url=args.openai_base_url,
                                 openai_model=args.openai_model, llamacpp_model_path=args.model_path, k=args.k)
        judge = None
        if args.judge_base_url:
            from eval.judge import Judge

            judge = Judge(args.judge_base_url, args.judge_model, settings.openai_api_key.get_secret_value(),
                          settings.llm_timeout_s)
    except (GoldError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    name = args.name or args.out.name
    try:
        with evaluation_index(settings, args.corpus, args.index_dir, show_bar=not args.quiet) as (eval_settings,
                                                                                                  corpus):
            with open_assistant(eval_settings) as assistant:
                started = time.perf_counter()
                samples, records = evaluate_assistant(assistant, questions, progress=not args.quiet, desc=name,
                                                      judge=judge)
                seconds = time.perf_counter() - started
                margin = policy_margin(assistant, questions, progress=not args.quiet)
                encoder = {"embedding_backend": assistant.index.embedder.backend, "cpu": _cpu()}
            report, scores = build_report(name, samples, records, eval_settings, corpus, args.gold,
                                          n_resamples=args.resamples, seed=args.seed, judge=judge,
                                          extra={"questions_seconds": round(seconds, 2), "margin": margin,
                                                 "encoder": encoder})
            paths = write_run_outputs(args.out, report, samples, records, scores)
    except (OmbudsError, RuntimeError) as exc:  # 2 for a setting or a missing/mismatched index, else 1
        return cli_error(exc)
    from eval.report import headline_line

    print(headline_line(report))
    print(f"margin: {margin['flipped']} of {margin['questions']} questions change answer/decline when every "
          f"similarity moves by ±{margin['delta']}" + (f" ({', '.join(margin['ids'])})" if margin["ids"] else ""))
    for key, path in paths.items():
        print(f"  {key}: {path}")
    return 0
