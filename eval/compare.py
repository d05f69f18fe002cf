"""`python -m eval compare`: several configurations on the same gold set, one table, paired tests.

    python -m eval compare --gold eval/gold/dev.jsonl --corpus data/sample eval/corpus/dev --out reports/compare

Configurations (choose with --configs, comma- or space-separated; default all):
  naive             stock LangChain: RecursiveCharacterTextSplitter 1000/200 + langchain-chroma similarity
                    search with the same embedding model (see eval/naive.py)
  dense             the assistant with dense retrieval only
  lexical           the assistant with lexical (FTS5 BM25) retrieval only
  hybrid            the assistant as shipped (dense + lexical fused by RRF, contextual headers)
  hybrid-noheaders  hybrid over an index built with contextual_headers=False

dense, lexical and hybrid share one index; hybrid-noheaders and naive get their own, all in a temporary
folder. Each configuration's full run (results.jsonl, report.json, report.md, plots) goes to OUT/<name>/;
the comparison to OUT/compare.md, OUT/compare.json and OUT/compare.png. Every configuration is tested
against the reference (hybrid) on the questions both could score: a paired bootstrap interval of the
difference in means and a paired randomisation (sign-flip) p-value.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.gold import GoldQuestion, load_gold
from eval.metrics import Sample, mean_of, paired_test
from eval.run import (
    PROJECT_ROOT,
    CorpusInfo,
    RunRecord,
    add_common_arguments,
    build_report,
    check_paths,
    describe_index,
    evaluate_assistant,
    git_state,
    ingest_corpus,
    open_assistant,
    write_run_outputs,
)

log = logging.getLogger(__name__)

CONFIGS: dict[str, dict[str, Any]] = {
    "naive": {},
    "dense": {"retrieval_mode": "dense"},
    "lexical": {"retrieval_mode": "lexical"},
    "hybrid": {"retrieval_mode": "hybrid"},
    "hybrid-noheaders": {"retrieval_mode": "hybrid", "contextual_headers": False},
}
DESCRIPTIONS = {
    "naive": "LangChain stock parts: 1000/200 character chunks, Chroma similarity search, same embeddings",
    "dense": "assistant, dense retrieval only",
    "lexical": "assistant, lexical (BM25) retrieval only",
    "hybrid": "assistant as shipped: dense + lexical, RRF, contextual headers",
    "hybrid-noheaders": "hybrid over an index without contextual headers",
}
REFERENCE = "hybrid"
TABLE_METRICS = ("hit@1", "hit@5", "recall@10", "mrr@10", "ndcg@10", "key_fact_recall", "citation_f1",
                 "abstention_precision", "abstention_recall", "latency_total_p50")
PAIRED_METRICS = ("hit@5", "mrr@10", "ndcg@10", "recall@10", "key_fact_recall", "citation_f1")


@dataclass
class ConfigResult:
    """One configuration's samples, per-question scores and report."""

    name: str
    samples: list[Sample]
    scores: dict[str, list[float | None]]
    report: dict[str, Any]
    records: list[RunRecord] | None = None
    seconds: float = 0.0

    def per_question(self, metric: str) -> dict[str, float | None]:
        """question id -> this configuration's score on metric."""
        column = self.scores.get(metric, [None] * len(self.samples))
        return {s.id: column[i] for i, s in enumerate(self.samples)}


def parse_configs(values: Sequence[str] | None) -> list[str]:
    """Names from "a,b c" forms, in the order given, duplicates dropped; ValueError for an unknown name."""
    if not values:
        return list(CONFIGS)
    names = [n.strip() for v in values for n in v.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        raise ValueError(f"unknown configuration(s) {', '.join(unknown)}: choose from {', '.join(CONFIGS)}")
    if not names:
        raise ValueError(f"no configuration named: choose from {', '.join(CONFIGS)}")
    return list(dict.fromkeys(names))


def run_configs(questions: Sequence[GoldQuestion], corpus: Sequence[Path], configs: Sequence[str], settings: Any,
                out: Path | None = None, gold_path: Path | None = None, progress: bool = True,
                n_resamples: int = 2000, seed: int = 0, workdir: Path | None = None,
                embedder: Any = None) -> dict[str, ConfigResult]:
    """Build the indexes the configurations need (shared where possible) and run each on the questions.

    With `out`, each configuration's full run is written to out/<name>/. Indexes live in `workdir`
    (a temporary folder, deleted afterwards, unless given).
    """
    from ingest.embed import Embedder

    results: dict[str, ConfigResult] = {}
    temp = None
    if workdir is None:
        temp = tempfile.TemporaryDirectory(prefix="ombuds-compare-")
        workdir = Path(temp.name)
    if embedder is None and any(c != "naive" for c in configs):
        embedder = Embedder(settings.embedding_model, settings.embed_batch_size, settings.embedding_backend)
    indexes: dict[bool, CorpusInfo] = {}
    try:
        for name in configs:
            started = time.perf_counter()
            if name == "naive":
                result = _run_naive(questions, corpus, settings, workdir, gold_path, progress, n_resamples, seed)
            else:
                overrides = CONFIGS[name]
                headers = overrides.get("contextual_headers", True)
                cfg = settings.model_copy(update={**overrides, "contextual_headers": headers,
                                                  "index_dir": workdir / ("index" if headers else "index-noheaders"),
                                                  "log_dir": workdir / "logs"})
                if headers not in indexes:  # dense, lexical and hybrid share the index with headers
                    t = time.perf_counter()
                    ingest = ingest_corpus(cfg, corpus, embedder, show_bar=progress)
                    indexes[headers] = describe_index(cfg, corpus, temporary=True, ingest=ingest,
                                                      seconds=round(time.perf_counter() - t, 2))
                with open_assistant(cfg, embedder) as assistant:
                    samples, records = evaluate_assistant(assistant, questions, progress=progress, desc=name)
                report, scores = build_report(name, samples, records, cfg, indexes[headers], gold_path,
                                              n_resamples=n_resamples, seed=seed,
                                              extra={"description": DESCRIPTIONS[name]})
                result = ConfigResult(name, samples, scores, report, records)
            result.seconds = time.perf_counter() - started
            result.report["seconds"] = round(result.seconds, 2)
            if out is not None:
                write_run_outputs(out / name, result.report, result.samples, result.records, result.scores)
            results[name] = result
    finally:
        if temp is not None:
            temp.cleanup()
    return results


def _run_naive(questions: Sequence[GoldQuestion], corpus: Sequence[Path], settings: Any, workdir: Path,
               gold_path: Path | None, progress: bool, n_resamples: int, seed: int) -> ConfigResult:
    from eval.naive import CHUNK_OVERLAP, CHUNK_SIZE, NaiveBaseline

    t = time.perf_counter()
    baseline = NaiveBaseline.build(corpus, workdir / "naive-chroma", settings.embedding_model, k=settings.k,
                                   depth=settings.candidates)
    build_seconds = time.perf_counter() - t
    samples = baseline.evaluate(questions, progress=progress)
    info = CorpusInfo(paths=[str(p) for p in corpus], index_dir=str(workdir / "naive-chroma"), temporary=True,
                      fingerprint=baseline.fingerprint, decisions=baseline.n_decisions, chunks=baseline.n_chunks,
                      ingest_seconds=round(build_seconds, 2))
    naive_settings = {"splitter": "RecursiveCharacterTextSplitter", "chunk_size": CHUNK_SIZE,
                      "chunk_overlap": CHUNK_OVERLAP, "vector_store": "langchain_chroma.Chroma (default distance)",
                      "embeddings": f"HuggingFaceEmbeddings({settings.embedding_model})",
                      "similarity_search_k": baseline.depth, "answer_chunks": baseline.k,
                      "filters": "ignored", "history": "ignored"}
    report, scores = build_report("naive", samples, [], settings, info, gold_path, n_resamples=n_resamples,
                                  seed=seed, extra={"description": DESCRIPTIONS["naive"], "backend": "none (chunks)",
                                                    "settings": naive_settings, "prompt_version": None,
                                                    "prompt_files": {}})
    return ConfigResult("naive", samples, scores, report, None)


# --- the table --------------------------------------------------------------------------------------
def build_table(results: Mapping[str, ConfigResult], reference: str | None = None, n_resamples: int = 5000,
                seed: int = 0, gold_path: Path | None = None, corpus: Sequence[Path] = ()) -> dict[str, Any]:
    """compare.json: every configuration's metrics (overall, by type) and paired tests against the reference."""
    names = list(results)
    reference = reference if reference in results else (REFERENCE if REFERENCE in results else names[0])
    ref = results[reference]
    configs: dict[str, Any] = {}
    for name, r in results.items():
        configs[name] = {
            "description": r.report.get("description", DESCRIPTIONS.get(name, "")),
            "metrics": r.report["metrics"],
            "corpus": r.report.get("corpus"),
            "settings": r.report.get("settings"),
            "answer_chars_mean": mean_of([len(s.answer) if s.answer is not None else None for s in r.samples]),
            "seconds": round(r.seconds, 2),
        }
    paired: dict[str, Any] = {}
    for name, r in results.items():
        if name == reference:
            continue
        paired[name] = {m: paired_test(r.per_question(m), ref.per_question(m), n_resamples=n_resamples, seed=seed)
                        for m in PAIRED_METRICS}
    first = next(iter(results.values()))
    return {
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "git": git_state(),
        "gold": {"path": str(gold_path) if gold_path else None, "questions": len(first.samples)},
        "corpus": [str(p) for p in corpus],
        "reference": reference,
        "table_metrics": list(TABLE_METRICS),
        "paired_metrics": list(PAIRED_METRICS),
        "paired_method": "difference of means (config - reference) over questions both scored; 95% paired "
                         "percentile bootstrap interval; two-sided paired randomisation (sign-flip) p-value",
        "configs": configs,
        "paired": paired,
    }


def _p(value: float | None) -> str:
    """"p=0.012", "p<0.001", "p=—"."""
    if value is None:
        return "p=—"
    return "p<0.001" if value < 0.001 else f"p={value:.3f}"


def render_markdown(table: Mapping[str, Any]) -> str:
    """compare.md: the configurations side by side, then the paired differences against the reference."""
    from eval.report import fmt_estimate, fmt_value, markdown_table

    ref = table["reference"]
    metrics = table["table_metrics"]
    first = next(iter(table["configs"].values()))
    prints = sorted({(c.get("corpus") or {}).get("fingerprint") or "?" for c in table["configs"].values()})
    commit = ((table.get("git") or {}).get("commit") or "unknown")[:12]
    out = ["# Configurations compared", "",
           f"- Gold set `{table['gold']['path']}` ({table['gold']['questions']} questions), corpus "
           f"{', '.join(f'`{p}`' for p in table['corpus'])}; commit `{commit}`, {table['created_at']}",
           f"- Corpus fingerprint {', '.join(f'`{p[:16]}`' for p in prints)}"
           + ("; every configuration answered the same questions over the same decisions" if len(prints) == 1
              else " — the configurations did NOT see the same decisions: compare with care"),
           "- Value (95% bootstrap interval). Retrieval and citation metrics over answerable questions; abstention "
           "precision over the questions a configuration declined, recall over the unanswerable ones; latency in ms",
           "- The naive baseline's 'answer' is its top chunks of raw text (mean length in the last column), so its "
           "key-fact recall is an upper bound on what an LLM could extract from them, not an answer a person reads",
           "", "## Overall", ""]
    header = ["configuration"] + list(metrics) + ["answer chars"]
    rows = []
    for name, c in table["configs"].items():
        overall = c["metrics"]["overall"]
        chars = c.get("answer_chars_mean")
        rows.append([f"**{name}**" if name == ref else name] + [fmt_estimate(m, overall.get(m)) for m in metrics]
                    + ["—" if chars is None else f"{chars:.0f}"])
    out.append(markdown_table(header, rows))
    out += ["", f"## Difference from {ref} (paired over the same questions)", "",
            "config − reference, mean difference (95% paired bootstrap interval), p = two-sided paired "
            "randomisation test. A difference whose interval excludes 0 (p < 0.05) is unlikely to be chance "
            "on this gold set.", ""]
    pm = table["paired_metrics"]
    rows = []
    for name, tests in table["paired"].items():
        row = [name]
        for m in pm:
            t = tests[m]
            if t["diff"] is None:
                row.append("—")
                continue
            sig = " *" if t["p_value"] is not None and t["p_value"] < 0.05 else ""
            ci = "" if t["ci_low"] is None else f" ({t['ci_low']:+.3f}, {t['ci_high']:+.3f})"
            row.append(f"{t['diff']:+.3f}{ci} {_p(t['p_value'])}{sig} n={t['n']}")
        rows.append(row)
    out.append(markdown_table(["configuration"] + list(pm), rows))
    types = list(first["metrics"]["by_type"])
    for metric in ("mrr@10", "key_fact_recall"):
        out += ["", f"## {metric} by question type", ""]
        rows = [[name] + [fmt_estimate(metric, c["metrics"]["by_type"].get(t, {}).get(metric), with_ci=False)
                          for t in types] for name, c in table["configs"].items()]
        header = ["configuration"] + [f"{t} ({first['metrics']['by_type'][t].get('n_questions')})" for t in types]
        out.append(markdown_table(header, rows))
    out += ["", "## Build and run time", ""]
    rows, built = [], {}
    for name, c in table["configs"].items():
        corpus = c.get("corpus") or {}
        key = (corpus.get("index_dir"), corpus.get("ingest_seconds"))
        build = f"shared with {built[key]}" if key in built else corpus.get("ingest_seconds")
        built.setdefault(key, name)
        rows.append([name, corpus.get("decisions"), corpus.get("chunks"), build, c.get("seconds"),
                     fmt_value("latency_total_p50", (c["metrics"]["overall"].get("latency_total_p50") or {})
                               .get("value"))])
    out.append(markdown_table(["configuration", "decisions", "chunks", "index build s", "total s",
                               "latency p50 ms"], rows))
    out += ["", "Per-configuration reports: `<name>/report.md`. Index builds shared: dense, lexical and hybrid "
            "use one index; hybrid-noheaders and naive build their own (same embedding model).", ""]
    return "\n".join(out)


def write_table(out: Path, table: Mapping[str, Any]) -> dict[str, Path]:
    """compare.json, compare.md and compare.png in out."""
    from eval.report import plot_compare

    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "compare.json", "markdown": out / "compare.md", "plot": out / "compare.png"}
    paths["json"].write_text(json.dumps(table, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    paths["markdown"].write_text(render_markdown(table) + "\n![configurations](compare.png)\n", encoding="utf-8")
    plot_compare(table, paths["plot"])
    return paths


# --- the command ------------------------------------------------------------------------------------
def build_parser(prog: str = "python -m eval compare") -> argparse.ArgumentParser:
    """The `compare` command line."""
    p = argparse.ArgumentParser(prog=prog, description="Run several configurations on the same gold set and "
                                                       "write one comparison table (Markdown + JSON).")
    add_common_arguments(p)
    p.add_argument("--corpus", type=Path, nargs="+", required=True, metavar="DIR",
                   help="decision files/folders; indexed into temporary folders")
    p.add_argument("--configs", nargs="+", metavar="NAMES",
                   help=f"configurations, comma- or space-separated (default: {','.join(CONFIGS)})")
    p.add_argument("--reference", default=REFERENCE, help=f"configuration the others are tested against "
                                                          f"(default {REFERENCE})")
    p.add_argument("--llm", choices=["extractive", "openai", "llamacpp"], help="answer backend (default: settings)")
    p.add_argument("--k", type=int, help="passages handed to the answer stage (1-100)")
    p.add_argument("--out", type=Path, default=PROJECT_ROOT / "reports" / "compare", help="output folder")
    return p


def main(argv: list[str] | None = None, prog: str = "python -m eval compare") -> int:
    """Entry point: 0 done, 1 failed while running, 2 usage or configuration error."""
    from core.settings import apply_offline_environment

    apply_offline_environment()
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    check_paths(parser, args.gold, args.corpus)
    try:
        configs = parse_configs(args.configs)
    except ValueError as exc:
        parser.error(f"--configs: {exc}")
    if args.reference not in CONFIGS:
        parser.error(f"--reference {args.reference!r}: choose from {', '.join(CONFIGS)}")
    if args.k is not None and not 1 <= args.k <= 100:
        parser.error(f"--k {args.k}: use 1 to 100")

    from core.errors import ConfigError, OmbudsError, cli_error
    from core.logs import setup_logging
    from core.settings import load_settings
    from eval.gold import GoldError

    setup_logging("WARNING")
    try:
        questions = load_gold(args.gold)[: args.limit]
        settings = load_settings(llm=args.llm, k=args.k)
    except (GoldError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        results = run_configs(questions, args.corpus, configs, settings, out=args.out, gold_path=args.gold,
                              progress=not args.quiet, n_resamples=args.resamples, seed=args.seed)
        table = build_table(results, args.reference, seed=args.seed, gold_path=args.gold, corpus=args.corpus)
        paths = write_table(args.out, table)
    except (OmbudsError, RuntimeError) as exc:  # 2 for a setting or a missing/mismatched index, else 1
        return cli_error(exc)
    print(paths["markdown"].read_text(encoding="utf-8"))
    for key, path in paths.items():
        print(f"  {key}: {path}")
    return 0
