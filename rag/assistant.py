"""Assistant: the one entry point the chat UI, the CLI, the evaluation and notebooks all call."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.errors import BackendError, ConfigError
from core.settings import Settings, apply_offline_environment, load_settings
from core.text import display_date, query_terms, stem
from core.types import Answer, Citation, Decision, Filters, Hit, Message, Query
from ingest.index import Index, open_index
from rag.answer import NOT_FOUND, AnswerContext, ChatBackend, ExtractiveBackend, make_backend
from rag.cite import CitationVerifier, StreamingVerifier, mark_uncited_sentences, supported_sentences
from rag.evidence import SentenceEvidence, sentence_evidence
from rag.policy import RULES, Candidate, PolicyDecision, candidate_features, load_model, uncovered_note
from rag.policy import verdict as policy_verdict
from rag.query import QueryAnalyser, coerce_history, expand_acronyms
from rag.retrieve import HybridRetriever, Retrieval, RetrievalConfig

log = logging.getLogger(__name__)

ABSTAIN_TEXT = "The indexed decisions don't answer this question."

def _short(text: str | None, limit: int = 220) -> str:
    if not text:
        return ""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


@dataclass
class Examination:
    """Everything the assistant learned about a question before answering: the analysed query, what retrieval
    found, the sentence evidence, each candidate decision's signals, and the policy's verdict."""

    query: Query
    retrieval: Retrieval
    decisions: dict[str, Decision]
    evidence: SentenceEvidence
    candidates: list[Candidate]
    verdict: PolicyDecision
    notes: list[str] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def answer_hits(self) -> list[Hit]:
        """The hits of the decisions the answer may use, the most relevant decision first."""
        order = {doc: i for i, doc in enumerate(self.verdict.relevant)}
        hits = [h for h in self.retrieval.hits if h.chunk.doc_id in order]
        return sorted(hits, key=lambda h: (order[h.chunk.doc_id], h.rank))


class Assistant:
    """Answers questions from the indexed decisions, with verified citations.

    Example:
        >>> from rag import Assistant
        >>> a = Assistant.from_settings()                       # doctest: +SKIP
        >>> ans = a.ask("When does the ICO handle rectification?")  # doctest: +SKIP
        >>> ans.cited_labels                                    # doctest: +SKIP
        ['23 009 429', '002_7d099216e168a9a0']
    """

    def __init__(self, settings: Settings, index: Index, backend: ExtractiveBackend | ChatBackend | None = None,
                 reranker: Any = None):
        self.settings = settings
        self.index = index
        self.backend = backend or make_backend(settings)
        self.extractive = ExtractiveBackend(settings.answer_sentences)
        cat = index.catalog
        self._choices_lock = threading.Lock()
        self._choices: dict[str, list[str]] = {}
        self.analyser = QueryAnalyser(lambda: self.choices("authority"), lambda: self.choices("category"),
                                      lambda: self.choices("outcome"), settings.max_question_chars,
                                      settings.infer_authority_filter, lambda: self.choices("category_path"))
        if reranker is None and settings.reranker_path:
            reranker = load_cross_encoder(settings.reranker_path)
        self.retriever = HybridRetriever(cat, index.store, index.embedder, RetrievalConfig.from_settings(settings),
                                         reranker)
        self.relevance = load_model(str(settings.relevance_model) if settings.relevance_model else None).tuned(
            answer_threshold=settings.answer_threshold, cite_ratio=settings.cite_ratio)

    @classmethod
    def from_settings(cls, settings: Settings | None = None, *, backend: Any = None, reranker: Any = None,
                      **overrides: Any) -> Assistant:
        """Open the configured index and answer backend. Keyword overrides win over the environment.

        Example:
            >>> a = Assistant.from_settings(index_dir="data/index", llm="extractive")  # doctest: +SKIP
        """
        apply_offline_environment()
        settings = settings or load_settings(**overrides)
        index = open_index(settings, write=False, create=False)
        try:
            return cls(settings, index, backend=backend, reranker=reranker)
        except BaseException:
            index.close()
            raise

    def close(self) -> None:
        """Release the index."""
        self.index.close()

    def __enter__(self) -> Assistant:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def warm_up(self) -> float:
        """Load what the first question would otherwise wait for — the embedding model, Chroma's vector index,
        the lexical index's pages, the catalog's statistics, the tokenizer vocabulary — by examining one question.
        Returns the seconds it took. The app calls it before it opens its port (issue 12: "the first question is
        as fast as the tenth")."""
        started = time.perf_counter()
        self.index.embedder.vocabulary()
        exam = self.examine("Did the council apologise and pay for the delay in its complaint response?")
        if exam.verdict.answer:  # the extractive composer too (its first run loads the token counter)
            "".join(self.extractive.stream(self._answer_context(exam, [])))
        # A question naming a case number searches with a filter on the decision: Chroma's first filtered query
        # loads its metadata index (~0.35 s at 100 000 chunks, bench/NOTES.md §9). Filters by council take the
        # same path.
        if case := self.index.catalog.a_case_number():
            self.examine(f"What did the Ombudsman decide in case {case}?")
        return time.perf_counter() - started

    @staticmethod
    def _answer_context(exam: Examination, messages: Sequence[Message]) -> AnswerContext:
        """What the answer backends are given for an examined question."""
        return AnswerContext(exam.query.standalone, exam.answer_hits, exam.decisions, messages,
                             exam.evidence.similarity,
                             lookup=bool(exam.retrieval.looked_up) and not exam.retrieval.listed,
                             survey=exam.query.survey, listing=exam.retrieval.listed,
                             yes_no=yes_no_answer(exam.query, exam.retrieval))

    # information -------------------------------------------------------------------------------
    def choices(self, column: str) -> list[str]:
        """Distinct councils / categories / outcomes in the index, or "category_path": every category and
        "Category > Subcategory" (cached until refresh())."""
        with self._choices_lock:
            if column not in self._choices:
                catalog = self.index.catalog
                self._choices[column] = (catalog.category_paths() if column == "category_path" else
                                         catalog.distinct(column))
            return self._choices[column]

    def refresh(self) -> None:
        """Forget cached filter choices (after an ingest)."""
        with self._choices_lock:
            self._choices.clear()

    def status(self) -> dict[str, Any]:
        """Index status for the UI and CLI."""
        from ingest.cpu import cpu_info

        stats = self.index.catalog.stats()
        return {"decisions": stats.decisions, "chunks": stats.chunks, "last_ingest": stats.last_ingest,
                "embedding_model": self.settings.embedding_model, "embedding_backend": self.index.embedder.backend,
                "index_embedding_backend": self.index.catalog.get_meta("embedding_backend"),
                "index_cpu": self.index.catalog.get_meta("ingest_cpu"),
                "sentence_vectors": self.index.catalog.get_meta("sentence_vectors"),
                "decisions_with_sentence_vectors": self.index.catalog.count_sentence_vectors(),
                "cpu": cpu_info().describe(), "relevance_model": self.relevance.version, "backend": self.backend.name,
                "model": self.backend.model, "index": self.index.location}

    # asking ------------------------------------------------------------------------------------
    def ask(self, question: str, filters: Filters | Mapping[str, Any] | None = None,
            history: Sequence[Any] | None = None, k: int | None = None) -> Answer:
        """Answer a question. Filters: Filters or a dict (authority, category, outcome, since, until).

        Example:
            >>> ans = a.ask("Did the council pay anything?", filters={"authority": "Staffordshire County Council"})  # doctest: +SKIP
            >>> ans.abstained, [c.label for c in ans.citations][:2]  # doctest: +SKIP
        """
        answer: Answer | None = None
        for item in self.stream(question, filters, history, k):
            if isinstance(item, Answer):
                answer = item
        assert answer is not None
        return answer

    def examine(self, question: str, filters: Filters | Mapping[str, Any] | None = None,
                history: Sequence[Any] | None = None, k: int | None = None) -> Examination:
        """Analyse, retrieve, weigh the evidence and decide whether (and from which decisions) to answer.

        Evaluation and notebooks call this to see the policy's inputs without composing an answer.
        """
        timings: dict[str, float] = {}
        if not isinstance(filters, Filters):
            filters = Filters.from_dict(dict(filters) if filters else None)
        messages = coerce_history(history)
        rewrite = self.backend.condense if isinstance(self.backend, ChatBackend) and messages else None
        t = time.perf_counter()
        query = self.analyser.analyse(question, filters, messages, rewrite=rewrite)
        timings["analyse_ms"] = (time.perf_counter() - t) * 1000
        retrieval = self.retriever.retrieve(query, k)
        timings.update(retrieval.timings_ms)
        notes: list[str] = []
        if query.inferred_filters:
            notes.append(f"Filtered to {query.filters.describe()} (taken from your question).")
        if retrieval.missing_cases:
            notes.append("Not in the index: case " + ", ".join(retrieval.missing_cases) + ".")
        if retrieval.listed:
            notes.append(listing_note(query, retrieval))
        decisions = self.index.catalog.decisions([h.chunk.doc_id for h in retrieval.hits])
        uncovered = None if retrieval.looked_up or retrieval.filters_match_nothing else self._uncovered(query)
        if uncovered:
            notes.append(uncovered)
        t = time.perf_counter()
        evidence = sentence_evidence(self.index.embedder, expand_acronyms(query.standalone), retrieval.hits,
                                     decisions, self.index.catalog.sentence_vectors)
        timings["evidence_ms"] = (time.perf_counter() - t) * 1000
        explicit = any(f not in query.inferred_filters for f in query.filters.to_dict())
        terms = list(dict.fromkeys(stem(w) for w in query_terms(query.standalone + " " + query.text)))
        candidates = candidate_features(query.text, query.standalone, retrieval.hits, decisions, evidence.by_doc,
                                        self.index.catalog.document_frequency(terms),
                                        self.index.catalog.count_chunks(), explicit,
                                        background=self.relevance.background)
        verdict = policy_verdict(self.relevance, candidates, retrieval, query.text,
                                 named_cases=bool(query.case_numbers), uncovered=uncovered, explicit_filters=explicit,
                                 survey=query.survey)
        return Examination(query, retrieval, decisions, evidence, candidates, verdict, notes, timings)

    def stream(self, question: str, filters: Filters | Mapping[str, Any] | None = None,
               history: Sequence[Any] | None = None, k: int | None = None) -> Iterator[str | Answer]:
        """Yield verified answer text as it is produced, then the final Answer."""
        turn = _Turn(question, time.perf_counter(), self.examine(question, filters, history, k))
        if not turn.exam.verdict.answer:
            text = turn.prefix + self._declined_text(turn.exam)
            yield text
            yield turn.finish(text, True, [], self.backend)
            return
        yield from self._compose(turn, self._answer_context(turn.exam, coerce_history(history)))

    def _declined_text(self, exam: Examination) -> str:
        if exam.retrieval.filters_match_nothing:
            return (f"No indexed decisions match the filters ({exam.query.filters.describe()}), so nothing was "
                    "searched. Change or remove a filter to search more widely.")
        return self._abstain_text(exam.retrieval, exam.decisions, reason=exam.verdict.reason)

    def _compose(self, turn: _Turn, ctx: AnswerContext) -> Iterator[str | Answer]:
        """Stream the backend's verified text, then finish: its answer, its "not found", or the extractive one."""
        exam, backend = turn.exam, self.backend
        # Citations are checked against the decisions the answer may use: a retrieved decision the policy judged
        # not to answer is no source for a claim (the model never saw it; the extractive answer never quotes it).
        verifier = CitationVerifier({d: exam.decisions[d] for d in exam.verdict.relevant if d in exam.decisions})
        if turn.prefix:
            yield turn.prefix
        t = time.perf_counter()
        run = _VerifiedRun(StreamingVerifier(verifier), hold=isinstance(backend, ChatBackend))
        try:
            for token in backend.stream(ctx):
                if ready := run.release(run.streamer.feed(token)):
                    yield ready
            if ready := run.release(run.streamer.finish()):
                yield ready
        except BackendError as exc:
            log.warning("answer backend failed, falling back to extractive: %s", exc)
            run.failure = (f"The {backend.name} model failed ({_short(str(exc), 120)}); showing the relevant passages "
                           "instead.")
        exam.timings_ms["generation_ms"] = (time.perf_counter() - t) * 1000
        yield from self._conclude(turn, ctx, verifier, run)

    def _conclude(self, turn: _Turn, ctx: AnswerContext, verifier: CitationVerifier,
                  run: _VerifiedRun) -> Iterator[str | Answer]:
        backend, prefix = self.backend, turn.prefix
        fabricated = sum(v.fabricated_removed for v in run.streamer.released)
        corrected = sum(v.paragraphs_corrected for v in run.streamer.released)
        raw_text = "".join(run.pieces).strip()
        chat = isinstance(backend, ChatBackend)
        if run.failure is None and chat and NOT_FOUND.lower().rstrip(".") in run.streamer.raw.lower():
            text = prefix + self._abstain_text(turn.exam.retrieval, turn.exam.decisions, said_by_model=True)
            yield "\n\n" + text[len(prefix):] if run.shown else text
            yield turn.finish(text, True, [], backend, fabricated, corrected, fabricated_before=fabricated,
                              reason=RULES["model_found_nothing"])
            return
        if run.failure is not None or (chat and supported_sentences(raw_text) == 0):
            note = run.failure or _unsupported_note(run.streamer.released)
            v = verifier.verify(self.extractive.compose(ctx))
            yield "\n\n" + f"_{note}_\n\n" + v.text
            turn.exam.notes.append(note)
            yield turn.finish(prefix + f"_{note}_\n\n" + v.text, False, _dedupe(v.citations), self.extractive,
                              fabricated, corrected, v.uncited_sentences, fabricated_before=fabricated)
            return
        final = verifier.verify(raw_text, mark_uncited=False)
        marked, uncited = mark_uncited_sentences(final.text)
        yield turn.finish(prefix + marked, False, _dedupe(final.citations), backend,
                          fabricated + final.fabricated_removed, corrected, uncited, fabricated_before=fabricated)

    # helpers -----------------------------------------------------------------------------------
    def _uncovered(self, query: Query) -> str | None:
        """The note for a question about a council or an acronym that no indexed decision covers (it declines)."""
        return uncovered_note(query.text, self.choices("authority"), self.index.embedder.vocabulary(),
                              self.index.catalog.document_frequency)

    def _abstain_text(self, retrieval: Retrieval, decisions: Mapping[str, Decision],
                      said_by_model: bool = False, reason: str | None = None) -> str:
        lead = ABSTAIN_TEXT + (" (The model found no answer in the retrieved passages.)" if said_by_model else "")
        if reason:
            lead += f" Why: {reason}."
        nearest = []
        for doc_id in retrieval.ranked_docs[:3]:
            d = decisions.get(doc_id) or self.index.catalog.decisions([doc_id]).get(doc_id)
            if d is None:
                continue
            date = display_date(d.decision_date)
            nearest.append(f"- {d.label} — {d.authority or 'council not stated'}, {date}, "
                           f"{d.outcome or 'outcome not stated'}: {_short(d.summary)}")
        if not nearest:
            return lead
        return lead + "\n\nNearest decisions (may be related):\n" + "\n".join(nearest)


@dataclass
class _Turn:
    """One question being answered: what was examined, and how to record the final Answer."""

    question: str
    started: float
    exam: Examination

    @property
    def prefix(self) -> str:
        """The examination's notes, shown in italics above the answer."""
        return "".join(f"_{n}_\n\n" for n in self.exam.notes)

    def finish(self, text: str, abstained: bool, citations: Sequence[Citation], backend: Any, fabricated: int = 0,
               corrected: int = 0, uncited: int = 0, fabricated_before: int = 0, reason: str | None = None) -> Answer:
        exam, timings = self.exam, self.exam.timings_ms
        query, verdict = exam.query, exam.verdict
        timings["total_ms"] = (time.perf_counter() - self.started) * 1000
        return Answer(text=text, abstained=abstained, citations=tuple(citations), sources=tuple(exam.retrieval.hits),
                      filters_applied=query.filters, fabricated_citations_removed=fabricated, backend=backend.name,
                      model=backend.model, prompt_version=backend.prompt_version, timings_ms=dict(timings),
                      question=self.question, standalone_question=query.standalone, notes=tuple(exam.notes),
                      uncited_sentences=uncited, paragraphs_corrected=corrected,
                      fabricated_before_verification=fabricated_before, inferred_filters=query.inferred_filters,
                      decline_reason=(reason or verdict.reason) if abstained else None,
                      relevance={d: round(p, 4) for d, p in verdict.scores.items()}, policy_version=verdict.version)


@dataclass
class _VerifiedRun:
    """A backend's text as the citation check releases it.

    A model's text is held back until a sentence with a citation that checked out arrives: a reply that cites
    nothing real (say, one that obeys an instruction planted in a decision) is never shown, not even while
    streaming; the extractive fallback replaces it."""

    streamer: StreamingVerifier
    hold: bool
    pieces: list[str] = field(default_factory=list)  # verified text, in order
    shown: int = 0  # how many pieces have been yielded
    failure: str | None = None

    def release(self, new: Iterable[str]) -> str:
        """Record newly verified pieces; the text that may be shown now ("" while held or nothing new)."""
        new = list(new)
        self.pieces.extend(new)
        if not new or self.hold and not supported_sentences("".join(self.pieces)):
            return ""
        self.hold = False
        ready, self.shown = "".join(self.pieces[self.shown:]), len(self.pieces)
        return ready


def _unsupported_note(released: Sequence[Any]) -> str:
    if not any(v.valid_citations for v in released):
        return ("The model's answer had no citation that could be checked against the decisions, so the relevant "
                "passages are shown instead.")
    return ("None of the model's sentences was backed by a citation that could be checked against the decisions, "
            "so the relevant passages are shown instead.")


def _dedupe(citations: Sequence[Citation]) -> list[Citation]:
    seen: set[tuple[str, int | None]] = set()
    out = []
    for c in citations:
        key = (c.doc_id, c.paragraph)
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out


def load_cross_encoder(path: Any) -> Any:
    """A sentence-transformers CrossEncoder from a local folder, as a (question, passages) -> scores function."""
    from pathlib import Path

    folder = Path(path)
    if not folder.exists():
        raise ConfigError(f"reranker_path={str(folder)!r} does not exist: point it at a local CrossEncoder folder.")
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(str(folder), device="cpu")

    def score(question: str, passages: Sequence[str]) -> list[float]:
        return [float(x) for x in model.predict([(question, p) for p in passages])]

    return score


def listing_note(query: Query, retrieval: Retrieval) -> str:
    """What a listing shows: the newest k of the decisions its filters select (of those that had the outcome a
    yes/no question asks about, when any had), and how many there are."""
    shown, total = len(retrieval.looked_up), retrieval.filter_matches or 0
    which = "decisions these filters select"
    if query.outcome_asked and retrieval.outcome_matches:
        total = retrieval.outcome_matches
        which += f" that {_had(total, query.outcome_asked)}"
    if total > shown:
        return f"The {shown} newest of the {total} {which}; the decisions browser lists them all."
    return f"Every {which.replace('decisions', 'decision', 1)} ({total}), newest first."


def yes_no_answer(query: Query, retrieval: Retrieval) -> str | None:
    """The answer to a yes/no listing ("Were any ... upheld?"), counted in the catalog; None for other questions."""
    if not (retrieval.listed and query.outcome_asked):
        return None
    n, total = retrieval.outcome_matches or 0, retrieval.filter_matches or 0
    if not n:
        return f"No: none of the {total} decisions these filters select {_had(1, query.outcome_asked)}."
    return f"Yes: {n} of the {total} decisions these filters select {_had(n, query.outcome_asked)}."


def _had(n: int, outcome: str) -> str:
    """"was upheld" / "were not upheld": what n decisions had."""
    return f"{'was' if n == 1 else 'were'} {outcome.lower()}"
