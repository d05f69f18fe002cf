"""`python -m bench vectors`: the encoder's vectors on this CPU, saved to compare with another CPU's.

    python -m bench vectors --out /tmp/here.npz                       # on one CPU
    qemu-x86_64 -cpu Haswell .venv/bin/python -m bench vectors --out /tmp/avx2.npz   # an AVX2-only CPU, emulated
    python -m bench vectors --compare /tmp/here.npz /tmp/avx2.npz     # exit 0 when no similarity moves by 0.01

What an answer depends on from the encoder: the question's vector, and the chunk and sentence vectors ingest
stores. This embeds every gold question (eval/gold/*.jsonl) and ingests the sample decisions' chunks and sentence
vectors exactly as ingest does (`embed_chunks_and_sentences`), with the configured backend, and saves them with the
CPU's SIMD features. `--compare` reports the largest change between two files in any question-chunk and
question-sentence similarity. The gold set's outcomes are shown not to move when every similarity moves by
±0.01 (`make eval`'s margin: 0 of 279), so a smaller change cannot change an answer or a decline.

Why emulation: no AVX2-only machine of this kind was available. qemu-user (Debian package `qemu-user`) with
`-cpu Haswell` reports AVX2 and FMA and no AVX-512 to the program, so ONNX Runtime and OpenBLAS take their AVX2
kernels (about 270x slower than native). The whole evaluation also runs under `-cpu EPYC-Rome-v2` with numpy's own
AVX2 dispatch off (`NPY_DISABLE_CPU_FEATURES=X86_V3`: the emulator faults in numpy's AVX2 argpartition); see
bench/NOTES.md §11. This command is the quick check: vectors only, no index.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent
TOLERANCE = 0.01  # the similarity shift the gold set's outcomes are shown to withstand (make eval's margin)


def cpu_features() -> dict[str, bool]:
    """The SIMD features this process sees (numpy's detection: what an emulator reports, not the host's)."""
    from numpy._core._multiarray_umath import __cpu_features__

    return {k: bool(v) for k, v in __cpu_features__.items() if k.startswith(("AVX", "FMA", "F16C"))}


def compute(out: Path, sample: Path, gold: list[Path]) -> dict[str, Any]:
    """Embed the gold questions and ingest-embed the sample decisions; save vectors and the CPU's features."""
    from core.settings import load_settings
    from eval.gold import load_gold
    from ingest.chunk import Chunker
    from ingest.embed import Embedder
    from ingest.index import iter_decision_files
    from ingest.parse import parse_file
    from ingest.sentences import embed_chunks_and_sentences

    settings = load_settings()
    embedder = Embedder(settings.embedding_model, settings.embed_batch_size, settings.embedding_backend,
                        cache_dir=settings.model_cache_dir)
    questions = [q.question for path in gold for q in load_gold(path)]
    question_vectors = np.asarray(embedder.embed(questions), dtype=np.float32)
    chunker = Chunker(settings.chunk_target_tokens, settings.chunk_max_tokens, settings.token_encoding)
    items = [(d, chunker.chunk(d)) for d in (parse_file(p) for p, problem in iter_decision_files([sample])
                                              if problem is None)]
    chunk_vectors, sentences, _ = embed_chunks_and_sentences(embedder, items, settings.contextual_headers)
    sentence_vectors = np.concatenate([np.asarray(s.vectors, dtype=np.float32) for s in sentences.values()])
    header = {"cpu_features": cpu_features(), "machine": platform.machine(), "backend": embedder.backend,
              "questions": len(questions), "chunks": len(chunk_vectors), "sentences": len(sentence_vectors)}
    np.savez(out, questions=question_vectors, chunks=np.asarray(chunk_vectors, dtype=np.float32),
             sentences=sentence_vectors, header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8))
    return header


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def compare(a_path: Path, b_path: Path) -> dict[str, Any]:
    """The largest differences between two saved files: per vector kind, and in the similarities answers use."""
    a, b = np.load(a_path), np.load(b_path)
    report: dict[str, Any] = {"a": json.loads(a["header"].tobytes()), "b": json.loads(b["header"].tobytes())}
    for kind in ("questions", "chunks", "sentences"):
        if a[kind].shape != b[kind].shape:
            raise ValueError(f"{kind}: {a[kind].shape} vs {b[kind].shape} — made from different inputs")
        report[f"{kind}_max_abs_diff"] = float(np.abs(a[kind].astype(np.float64) - b[kind]).max())
    qa, qb = _unit(a["questions"].astype(np.float64)), _unit(b["questions"].astype(np.float64))
    for kind in ("chunks", "sentences"):
        sa = qa @ _unit(a[kind].astype(np.float64)).T
        sb = qb @ _unit(b[kind].astype(np.float64)).T
        report[f"question_{kind}_similarity_max_change"] = float(np.abs(sa - sb).max())
    report["within_tolerance"] = all(report[f"question_{k}_similarity_max_change"] < TOLERANCE
                                     for k in ("chunks", "sentences"))
    return report


def build_parser(prog: str = "python -m bench vectors") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--out", type=Path, help="write this CPU's vectors to this .npz file")
    what.add_argument("--compare", type=Path, nargs=2, metavar=("A", "B"), help="compare two .npz files")
    p.add_argument("--sample", type=Path, default=ROOT / "data" / "sample", help="decisions to ingest-embed")
    p.add_argument("--gold", type=Path, nargs="+",
                   default=[ROOT / "eval" / "gold" / "dev.jsonl", ROOT / "eval" / "gold" / "test.jsonl"])
    return p


def main(argv: list[str] | None = None, prog: str = "python -m bench vectors") -> int:
    args = build_parser(prog).parse_args(argv)
    if args.out:
        print(json.dumps(compute(args.out, args.sample, args.gold), indent=1))
        return 0
    for path in args.compare:
        if not path.is_file():
            print(f"{path}: no such file — write it first with python -m bench vectors --out {path}",
                  file=sys.stderr)
            return 2
    report = compare(*args.compare)
    print(json.dumps(report, indent=1))
    return 0 if report["within_tolerance"] else 1
