"""Per-question differences of eval runs against the fp32 run, plus the headline metrics.
python3 /tmp/quant/diff.py run-int8 run-ffn ...   (folders under /tmp/quant)"""
import json
import sys
from pathlib import Path

Q = Path("/tmp/quant")


def load(run):
    return {r["id"]: r for r in map(json.loads, open(Q / run / "results.jsonl"))}


def head(run):
    m = json.loads((Q / run / "report.json").read_text())["metrics"]["overall"]
    return {k: (m[k]["value"] if m.get(k) else None) for k in
            ("hit@5", "mrr@10", "abstention_precision", "abstention_recall", "false_abstention_rate")}


def evid(run):
    f = Q / run / "evidence.json"
    if not f.exists():
        return None
    return {x["question"]: x["score"] for x in json.loads(f.read_text())}


base = load("run-fp32")
base_ev = evid("run-fp32")
print("run-fp32", head("run-fp32"))
for run in sys.argv[1:]:
    cur = load(run)
    ev = evid(run)
    print(f"\n{run} {head(run)}")
    if ev and base_ev:
        d = [abs(ev[k] - base_ev[k]) for k in base_ev if k in ev]
        print(f"  evidence score |delta| vs fp32: mean {sum(d) / len(d):.4f} max {max(d):.4f} (n={len(d)})")
    for qid, b in base.items():
        c = cur[qid]
        bits = []
        for k in ("hit@5", "mrr@10"):
            if b["scores"][k] != c["scores"][k]:
                bits.append(f"{k} {b['scores'][k]}->{c['scores'][k]}")
        if b["abstained"] != c["abstained"]:
            sc = ""
            if ev and base_ev and b["question"] in ev:
                sc = f", evidence {base_ev[b['question']]:.4f}->{ev[b['question']]:.4f}"
            bits.append(f"abstained {b['abstained']}->{c['abstained']} "
                        f"({'unanswerable' if not b['gold_cases'] else 'answerable'}{sc})")
        if bits:
            print(f"  {qid}: " + "; ".join(bits))
