"""Markdown tables and PNG plots for evaluation reports (matplotlib loads only when a plot is drawn)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from eval.metrics import Sample, latency_stages

HEADLINE = ("hit@5", "mrr@10", "ndcg@10", "key_fact_recall", "citation_f1", "abstention_precision",
            "abstention_recall", "latency_total_p50")
BY_TYPE_PLOT = ("hit@5", "mrr@10", "ndcg@10", "key_fact_recall", "citation_f1", "abstention_recall")
GROUP_TITLES = {
    "retrieval": "Retrieval, by decision (answerable questions)",
    "citations": "Citations (answerable questions)",
    "answers": "Answers",
    "abstention": "Abstention",
    "latency": "Latency (ms)",
    "judge": "LLM judge",
}


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def fmt_value(name: str, value: float | None) -> str:
    """0.833 for scores, 123 for milliseconds, an em dash for nothing."""
    if value is None:
        return "—"
    return f"{value:.0f}" if name.startswith("latency_") else f"{value:.3f}"


def fmt_estimate(name: str, est: Mapping[str, Any] | None, with_ci: bool = True) -> str:
    """"0.833 (0.71–0.93)"."""
    if not est or est.get("value") is None:
        return "—"
    text = fmt_value(name, est["value"])
    if with_ci and est.get("ci_low") is not None:
        text += f" ({fmt_value(name, est['ci_low'])}–{fmt_value(name, est['ci_high'])})"
    return text


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def headline_line(report: Mapping[str, Any]) -> str:
    """One line for the terminal: the headline metrics with their intervals."""
    overall = report["metrics"]["overall"]
    parts = [f"{name} {fmt_estimate(name, overall.get(name))}" for name in HEADLINE if name in overall]
    return f"{report['name']}: " + "; ".join(parts)


def _provenance(report: Mapping[str, Any]) -> list[str]:
    git = report.get("git") or {}
    commit = (git.get("commit") or "unknown")[:12] + (" (with uncommitted changes)" if git.get("dirty") else "")
    gold = report.get("gold") or {}
    corpus = report.get("corpus") or {}
    s = report.get("settings") or {}
    types = ", ".join(f"{t} {n}" for t, n in (gold.get("by_type") or {}).items())
    lines = [
        f"- Created {report.get('created_at')} at commit `{commit}`",
        f"- Gold set: `{gold.get('path')}` ({gold.get('questions')} questions: {types}; "
        f"sha256 `{(gold.get('sha256') or '')[:16]}`)",
    ]
    if corpus:
        where = "a fresh temporary index" if corpus.get("temporary") else f"`{corpus.get('index_dir')}`"
        lines.append(f"- Corpus: {', '.join(f'`{p}`' for p in corpus.get('paths') or []) or 'existing index'} in "
                     f"{where}: {corpus.get('decisions')} decisions, {corpus.get('chunks')} chunks; fingerprint "
                     f"`{(corpus.get('fingerprint') or '')[:16]}`")
    files = ", ".join(f"{k} `{v}`" for k, v in (report.get("prompt_files") or {}).items()) or "none"
    lines.append(f"- Answer backend `{report.get('backend')}`, prompt version `{report.get('prompt_version')}` "
                 f"(prompt files: {files})")
    if s.get("retrieval_mode"):
        lines.append(f"- Retrieval `{s.get('retrieval_mode')}`, contextual headers {s.get('contextual_headers')}, "
                     f"k={s.get('k')}, candidates={s.get('candidates')}, answer/decline model "
                     f"`{report.get('policy_version')}`, embedding `{s.get('embedding_model')}` "
                     f"({s.get('embedding_backend') or 'torch'} backend)")
    elif s:  # a configuration that is not the assistant (the naive baseline)
        lines.append("- Configuration: " + ", ".join(f"{k} `{v}`" for k, v in s.items()))
    b = report.get("bootstrap") or {}
    lines.append(f"- Intervals: {b.get('method')} bootstrap, {int(100 * (b.get('confidence') or 0.95))}%, "
                 f"{b.get('resamples')} resamples, seed {b.get('seed')}; n = questions the metric applies to")
    if report.get("judge"):
        j = report["judge"]
        lines.append(f"- LLM judge: `{j.get('model')}` at {j.get('base_url')} (prompt `{j.get('prompt_version')}`)")
    return lines


def render_run_markdown(report: Mapping[str, Any], plots: Mapping[str, str] | None = None) -> str:
    """report.md: provenance, headline, every metric, metrics by type, worst ten questions, plots."""
    overall = report["metrics"]["overall"]
    by_type = report["metrics"]["by_type"]
    defs = report.get("metric_definitions") or {}
    out = [f"# Evaluation report: {report['name']}", "", *_provenance(report), "", "## Headline", ""]
    out.append(markdown_table(["metric", "value", "95% interval", "n"],
                      [[m, fmt_value(m, overall[m]["value"]),
                        "—" if overall[m]["ci_low"] is None else
                        f"{fmt_value(m, overall[m]['ci_low'])} – {fmt_value(m, overall[m]['ci_high'])}",
                        overall[m]["n"]] for m in HEADLINE if m in overall]))
    out += ["", "## All metrics", ""]
    groups: dict[str, list[str]] = {}
    for name, d in defs.items():
        groups.setdefault(d["group"], []).append(name)
    for group, names in groups.items():
        out += [f"### {GROUP_TITLES.get(group, group)}", ""]
        out.append(markdown_table(["metric", "value (95% interval)", "n", "what it measures"],
                          [[n, fmt_estimate(n, overall.get(n)), overall.get(n, {}).get("n", 0),
                            defs[n].get("description", "")] for n in names]))
        out.append("")
    types = list(by_type)
    out += ["## By question type", "", "Value (95% interval); — where the metric does not apply.", ""]
    header = ["metric", "overall"] + [f"{t} ({by_type[t].get('n_questions', '?')})" for t in types]
    out.append(markdown_table(header, [[n, fmt_estimate(n, overall.get(n))] + [fmt_estimate(n, by_type[t].get(n))
                                                                        for t in types] for n in defs]))
    if report.get("decline_reasons"):
        false = report.get("false_decline_reasons") or {}
        out += ["", "## Why questions were declined", "",
                "The reason the answer-or-decline policy (rag/policy.py) gave; answerable = false declines.", ""]
        out.append(markdown_table(["reason", "declined", "of them answerable"],
                                  [[reason, n, false.get(reason, 0)] for reason, n in
                                   sorted(report["decline_reasons"].items(), key=lambda kv: -kv[1])]))
    out += ["", "## Worst ten questions", "",
            "Question score: answerable → mean of MRR@10, key-fact recall and citation F1; unanswerable → 1 if "
            "the assistant declined, else 0.", ""]
    header = ["#", "id", "type", "score", "question", "gold", "retrieved (top 5)", "cited", "abstained"]
    out.append(markdown_table(header,
                      [[i, w["id"], w["type"], f"{w['question_score']:.2f}", w["question"],
                        ", ".join(w["gold"]) or "(none)", ", ".join(w["retrieved"][:5]) or "(none)",
                        ", ".join(w["cited"]) or "(none)", "yes" if w["abstained"] else "no"]
                       for i, w in enumerate(report.get("worst") or [], 1)]))
    if plots:
        out += ["", "## Plots", ""]
        out += [f"![{key}]({path})" for key, path in plots.items()]
    return "\n".join(out) + "\n"


def _figure(width: float, height: float) -> Any:
    """A matplotlib Figure that belongs to no pyplot backend (safe in scripts, servers and notebooks)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def plot_metrics_by_type(report: Mapping[str, Any], path: Path, metrics: Sequence[str] = BY_TYPE_PLOT) -> Path:
    """Grouped bars: the main metrics for each question type and overall, with 95% intervals."""
    import numpy as np

    blocks = {"overall": report["metrics"]["overall"], **report["metrics"]["by_type"]}
    groups = list(blocks)
    metrics = [m for m in metrics if m in blocks["overall"]]
    x = np.arange(len(groups))
    width = 0.8 / max(len(metrics), 1)
    fig = _figure(max(8.0, 1.4 * len(groups)), 4.8)
    ax = fig.subplots()
    for j, m in enumerate(metrics):
        vals, lo, hi = [], [], []
        for g in groups:
            e = blocks[g].get(m) or {}
            v = e.get("value")
            vals.append(np.nan if v is None else v)
            lo.append(0 if v is None or e.get("ci_low") is None else v - e["ci_low"])
            hi.append(0 if v is None or e.get("ci_high") is None else e["ci_high"] - v)
        ax.bar(x + (j - (len(metrics) - 1) / 2) * width, vals, width, yerr=[lo, hi], capsize=2, label=m)
    ax.set_xticks(x, groups, rotation=20)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score (95% bootstrap interval)")
    ax.set_title(f"{report['name']}: metrics by question type")
    ax.legend(ncol=len(metrics), fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.18), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def plot_latency(samples: Sequence[Sample], path: Path, title: str = "") -> Path:
    """Histograms of each stage's time (retrieval, generation, ...) and the total, p50/p95 of the total marked."""
    import numpy as np

    fig = _figure(8, 4.5)
    ax = fig.subplots()
    series = {stage: [s.timings_ms[f"{stage}_ms"] for s in samples if f"{stage}_ms" in s.timings_ms]
              for stage in latency_stages(samples)}
    every = [v for vs in series.values() for v in vs if v > 0]
    if every:
        bins = np.geomspace(max(min(every), 0.1), max(every) * 1.05, 30)
        for stage, values in series.items():
            if values:
                ax.hist(np.clip(values, bins[0], None), bins=bins, histtype="step", linewidth=1.6,
                        label=f"{stage} (n={len(values)})")
        total = series["total"]
        if total:
            for q, style in ((50, "--"), (95, ":")):
                v = float(np.percentile(total, q))
                ax.axvline(v, color="black", linestyle=style, linewidth=1, label=f"total p{q} = {v:.0f} ms")
        ax.set_xscale("log")
    ax.set_xlabel("milliseconds per question (log scale)")
    ax.set_ylabel("questions")
    ax.set_title(f"{title}: latency".strip(": "))
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def plot_compare(table: Mapping[str, Any], path: Path, metrics: Sequence[str] = ("hit@5", "mrr@10", "ndcg@10",
                                                                                  "key_fact_recall")) -> Path:
    """Grouped bars: headline metrics per configuration, with 95% intervals."""
    import numpy as np

    configs = list(table["configs"])
    x = np.arange(len(metrics))
    width = 0.8 / max(len(configs), 1)
    fig = _figure(9, 4.8)
    ax = fig.subplots()
    for j, c in enumerate(configs):
        overall = table["configs"][c]["metrics"]["overall"]
        vals, lo, hi = [], [], []
        for m in metrics:
            e = overall.get(m) or {}
            v = e.get("value")
            vals.append(np.nan if v is None else v)
            lo.append(0 if v is None or e.get("ci_low") is None else v - e["ci_low"])
            hi.append(0 if v is None or e.get("ci_high") is None else e["ci_high"] - v)
        ax.bar(x + (j - (len(configs) - 1) / 2) * width, vals, width, yerr=[lo, hi], capsize=2, label=c)
    ax.set_xticks(x, metrics)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score (95% bootstrap interval)")
    ax.set_title("Configurations on the same gold set")
    ax.legend(fontsize=8, ncol=len(configs), loc="upper center", bbox_to_anchor=(0.5, -0.1), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path
