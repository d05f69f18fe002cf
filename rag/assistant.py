"""Assistant: the one entry point the chat UI, the CLI, the evaluation and notebooks all call."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.errors import BackendError, ConfigError
from core.settings import Settings, apply_offline_environment, load_settings
from core.text import display_date, query_terms, stem
from core.types import Answer, Citation, Decision, Filters, Hit, Message, Query
from ingest.index import Index, open_index
from rag.answer import NOT_FOUND, AnswerContext, ChatBackend, ExtractiveBackend, make_backend
from rag.cite import CitationVerifier, StreamingVerifier, mark_uncited_sentences, supported_sentences
from rag.evidence import SentenceEvidence, named_councils, sentence_evidence
from rag.policy import RULES, STATISTICS_QUESTION, Candidate, PolicyDecision, candidate_features, decide, load_model
from rag.query import ACRONYMS, QueryAnalyser, coerce_history, expand_acronyms, find_authorities
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
                                      settings.infer_authority_filter)
        if reranker is None and settings.reranker_path:
            reranker = load_cross_encoder(settings.reranker_path)
        self.retriever = HybridRetriever(cat, index.store, index.embedder, RetrievalConfig.from_settings(settings),
                                         reranker)
        self.relevance = load_model(str(settings.relevance_model) if settings.relevance_model else None)

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
                             exam.evidence.similarity, lookup=bool(exam.retrieval.looked_up))

    # information -------------------------------------------------------------------------------
    def choices(self, column: str) -> list[str]:
        """Distinct councils / categories / outcomes in the index (cached until refresh())."""
        with self._choices_lock:
            if column not in self._choices:
                self._choices[column] = self.index.catalog.distinct(column)
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
        verdict = self._verdict(query, retrieval, candidates, uncovered, explicit)
        return Examination(query, retrieval, decisions, evidence, candidates, verdict, notes, timings)

    def _verdict(self, query: Query, retrieval: Retrieval, candidates: Sequence[Candidate], uncovered: str | None,
                 explicit_filters: bool) -> PolicyDecision:
        """The answer-or-decline policy: fixed rules first (each with its reason), then the fitted model."""
        version = self.relevance.version
        if retrieval.looked_up:  # the person named the decision: answer from it, whatever the wording
            return PolicyDecision(True, None, tuple(retrieval.looked_up), {}, version)
        if not retrieval.hits:
            return PolicyDecision(False, RULES["no_hits"], (), {}, version)
        if query.case_numbers and retrieval.missing_cases:
            return PolicyDecision(False, RULES["missing_case"], (), {}, version)
        if STATISTICS_QUESTION.search(query.text):
            return PolicyDecision(False, RULES["statistics"], (), {}, version)
        if uncovered:
            return PolicyDecision(False, RULES["uncovered"], (), {}, version)
        return decide(candidates, self.relevance, filtered=explicit_filters)

    def stream(self, question: str, filters: Filters | Mapping[str, Any] | None = None,
               history: Sequence[Any] | None = None, k: int | None = None) -> Iterator[str | Answer]:
        """Yield verified answer text as it is produced, then the final Answer."""
        started = time.perf_counter()
        exam = self.examine(question, filters, history, k)
        query, retrieval, decisions = exam.query, exam.retrieval, exam.decisions
        timings, notes, verdict = exam.timings_ms, exam.notes, exam.verdict
        messages = coerce_history(history)
        relevance = {d: round(p, 4) for d, p in verdict.scores.items()}

        def finish(text: str, abstained: bool, citations: Sequence[Citation], backend: str, model: str | None,
                   prompt_version: str | None, fabricated: int = 0, corrected: int = 0, uncited: int = 0,
                   fabricated_before: int = 0, reason: str | None = None) -> Answer:
            timings["total_ms"] = (time.perf_counter() - started) * 1000
            return Answer(text=text, abstained=abstained, citations=tuple(citations), sources=tuple(retrieval.hits),
                          filters_applied=query.filters, fabricated_citations_removed=fabricated, backend=backend,
                          model=model, prompt_version=prompt_version, timings_ms=dict(timings), question=question,
                          standalone_question=query.standalone, notes=tuple(notes), uncited_sentences=uncited,
                          paragraphs_corrected=corrected, fabricated_before_verification=fabricated_before,
                          inferred_filters=query.inferred_filters,
                          decline_reason=(reason or verdict.reason) if abstained else None, relevance=relevance,
                          policy_version=verdict.version)

        prefix = "".join(f"_{n}_\n\n" for n in notes)
        if retrieval.filters_match_nothing:
            text = (f"No indexed decisions match the filters ({query.filters.describe()}), so nothing was searched. "
                    "Change or remove a filter to search more widely.")
            yield prefix + text
            yield finish(prefix + text, True, [], self.backend.name, self.backend.model, self.backend.prompt_version,
                         reason="no indexed decision matches the filters")
            return

        if not verdict.answer:
            text = prefix + self._abstain_text(retrieval, decisions, reason=verdict.reason)
            yield text
            yield finish(text, True, [], self.backend.name, self.backend.model, self.backend.prompt_version)
            return

        ctx = self._answer_context(exam, messages)
        # Citations are checked against the decisions the answer may use: a retrieved decision the policy judged
        # not to answer is no source for a claim (the model never saw it; the extractive answer never quotes it).
        verifier = CitationVerifier({d: decisions[d] for d in verdict.relevant if d in decisions})
        backend = self.backend
        if prefix:
            yield prefix
        t = time.perf_counter()
        streamer = StreamingVerifier(verifier)
        pieces: list[str] = []  # verified text, in order
        shown = 0  # how many of them have been yielded
        # A model's text is held back until a sentence with a citation that checked out arrives: a reply that
        # cites nothing real (say, one that obeys an instruction planted in a decision) is never shown, not even
        # while streaming; the extractive fallback below replaces it.
        hold = isinstance(backend, ChatBackend)
        failure: str | None = None

        def release(new: list[str]) -> str:
            """Record newly verified pieces; the text that may be shown now ("" while held or nothing new)."""
            nonlocal shown, hold
            pieces.extend(new)
            if not new or hold and not supported_sentences("".join(pieces)):
                return ""
            hold = False
            ready, shown = "".join(pieces[shown:]), len(pieces)
            return ready

        try:
            for token in backend.stream(ctx):
                if ready := release(list(streamer.feed(token))):
                    yield ready
            if ready := release(list(streamer.finish())):
                yield ready
        except BackendError as exc:
            log.warning("answer backend failed, falling back to extractive: %s", exc)
            failure = f"The {backend.name} model failed ({_short(str(exc), 120)}); showing the relevant passages instead."
        timings["generation_ms"] = (time.perf_counter() - t) * 1000
        fabricated = sum(v.fabricated_removed for v in streamer.released)
        corrected = sum(v.paragraphs_corrected for v in streamer.released)
        raw_text = "".join(pieces).strip()
        supported = supported_sentences(raw_text)

        if failure is None and isinstance(backend, ChatBackend) and NOT_FOUND.lower().rstrip(".") in \
                streamer.raw.lower():
            text = prefix + self._abstain_text(retrieval, decisions, said_by_model=True)
            yield "\n\n" + text[len(prefix):] if shown else text
            yield finish(text, True, [], backend.name, backend.model, backend.prompt_version, fabricated, corrected,
                         fabricated_before=fabricated, reason="the language model found no answer in the passages")
            return
        if failure is not None or (supported == 0 and isinstance(backend, ChatBackend)):
            if failure:
                note = failure
            elif not any(v.valid_citations for v in streamer.released):
                note = ("The model's answer had no citation that could be checked against the decisions, so the "
                        "relevant passages are shown instead.")
            else:
                note = ("None of the model's sentences was backed by a citation that could be checked against the "
                        "decisions, so the relevant passages are shown instead.")
            extract = self.extractive.compose(ctx)
            v = verifier.verify(extract)
            text = prefix + f"_{note}_\n\n" + v.text
            yield "\n\n" + f"_{note}_\n\n" + v.text
            notes.append(note)
            yield finish(text, False, _dedupe(v.citations), "extractive", None, None, fabricated, corrected,
                         v.uncited_sentences, fabricated_before=fabricated)
            return

        final = verifier.verify(raw_text, mark_uncited=False)
        marked, uncited = mark_uncited_sentences(final.text)
        yield finish(prefix + marked, False, _dedupe(final.citations), backend.name, backend.model,
                     backend.prompt_version, fabricated + final.fabricated_removed, corrected, uncited,
                     fabricated_before=fabricated)

    # helpers -----------------------------------------------------------------------------------
    def _uncovered(self, query: Query) -> str | None:
        """The note for a question about a council or an acronym that no indexed decision covers (it abstains)."""
        if unknown := self._unknown_councils(query):
            return "No decisions about " + " or ".join(unknown) + " are in the index."
        if absent := self._absent_acronyms(query):
            return "No indexed decision mentions " + " or ".join(absent) + "."
        return None

    def _unknown_councils(self, query: Query) -> list[str]:
        """Councils the question names in full that the index holds no decision about."""
        known = self.choices("authority")
        return [name for name in named_councils(query.text) if not find_authorities(name, known)]

    def _absent_acronyms(self, query: Query) -> list[str]:
        """Acronyms the question names ("IOPC", "DVLA") that no indexed decision contains, spelled out or not: the
        question is about a body or scheme the decisions do not cover. Known acronyms count as present when their
        expansion is in the index. A word in capitals that is a whole word of the embedding model's general
        vocabulary ("DROP", "TABLE", and common acronyms such as "NHS" or "UK") is left to the evidence check, and
        a question typed in capitals is not read for acronyms."""
        common = self.index.embedder.vocabulary()
        if not common:
            return []  # without a vocabulary, ordinary words in capitals could not be told from acronyms
        words = re.findall(r"[A-Za-z][A-Za-z0-9]*", query.text)
        found = [w for w in dict.fromkeys(re.findall(r"\b[A-Z][A-Z0-9]{1,5}\b", query.text))
                 if not w.isdigit() and w.lower() not in common]
        if not found or len(found) > len(words) / 2:
            return []
        absent = []
        for acronym in found:
            spelled = [stem(t) for t in query_terms(ACRONYMS.get(acronym, ""))]
            as_written = stem(acronym.lower())
            df = self.index.catalog.document_frequency([as_written, *spelled])
            if not df.get(as_written) and not (spelled and all(df.get(t) for t in spelled)):
                absent.append(acronym)
        return absent

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
