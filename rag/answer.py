"""Answer backends, all producing text whose every claim carries a [case ¶paragraph] citation.

- extractive: no model; the sentences of the retrieved decisions that best answer the question.
- openai:     any OpenAI-compatible endpoint, through langchain-openai.
- llamacpp:   a local GGUF through llama-cpp-python (langchain-community's ChatLlamaCpp).
- fake:       canned replies that record every prompt (tests).
LangChain (chat models + LCEL) is used only in this module; the rest of the code sees text and Answers.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder

from core.errors import BackendError, ConfigError
from core.text import addressed_to_a_model, display_date, sentences_of, stems
from core.tokens import get_encoding
from core.types import Decision, Hit, Message, citation_label, decision_heading, hit_paragraphs
from rag.prompts import Prompt, load_prompt

log = logging.getLogger(__name__)

NOT_FOUND = "Not found in the decisions."
MIN_SENTENCE_SIMILARITY = 0.45  # a sentence sharing no word with the question must be at least this close
_BOILERPLATE_SECTIONS = ("role and powers", "how i considered", "how we considered", "our role")


@dataclass
class AnswerContext:
    """Everything a backend may use: the (standalone) question, the hits and their decisions, history."""

    question: str
    hits: Sequence[Hit]
    decisions: dict[str, Decision]
    history: Sequence[Message] = field(default_factory=list)
    sentence_similarity: dict[str, float] = field(default_factory=dict)
    lookup: bool = False  # the question named its decision by case number: "what was decided" is its summary
    survey: bool = False  # the question asks across decisions: each cited decision is shown with its summary
    listing: bool = False  # the hits are the decisions the question's filters select, newest first: list them
    yes_no: str | None = None  # a listing's answer to "Were any ... upheld?", counted in the catalog ("Yes: 2 of ...")


# ---------------------------------------------------------------------------------------------
# Extractive
# ---------------------------------------------------------------------------------------------

_ANAPHORIC = re.compile(r"^(this|that|these|those|it|its|they|their|he|she|his|her|such|if (?:the council|it|they) "
                        r"refuses|also|however|but|moreover|therefore|so|as a result|in (?:that|this) )\b", re.I)


_INTENTS = {
    "money": re.compile(r"\b(how much|pay|paid|payment|compensat\w*|remed\w*|refund\w*|award\w*|money|£)", re.I),
    "time": re.compile(r"\b(how long|how late|how often|when|by when|deadline|delay\w*|late|weeks?|months?|days?)\b",
                       re.I),
    "reason": re.compile(r"\b(why|reason|because|grounds)\b", re.I),
    "action": re.compile(r"\b(agree\w*|action|recommend\w*|put right|do next|remedy|improve\w*)\b", re.I),
    "outcome": re.compile(r"\b(outcome|decide\w*|upheld|fault|find|found|conclu\w*|result)\b", re.I),
}
_MONEY = re.compile(r"£\s?\d")
_DURATION = re.compile(r"\b(\d+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty)\s+"
                       r"(working\s+|calendar\s+|school\s+)?(days?|weeks?|months?|years?|terms?)\b"
                       r"|\b\d{1,2}\s+(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)\w*\s+\d{4}\b", re.I)
_REASON = re.compile(r"\b(because|due to|as a result|so that|therefore|this is fault|was at fault|not at fault)\b",
                     re.I)


# A sentence that retells the complaint ("Mrs Y complained the Council...") shares the question's words but
# answers nothing: the finding, the remedy or the reason is what was asked. Measured on the dev split
# (eval/NOTES.md "Answer sentences"): down-weighting them and preferring the summary's outcome sentence raised
# key-fact recall of answered questions from 0.54 to 0.60 (0.63 with 8 sentences, 5 from the top decision).
_RESTATES = re.compile(r"^(?:the complainant, whom (?:i|we) (?:shall|will) call|(?:mr|mrs|ms|miss|dr) [a-z]\w*(?: and "
                       r"(?:mr|mrs|ms|miss) [a-z]\w*)?,? (?:\w+ ){0,3}(?:complain|says|said|believes)|"
                       r"(?:she|he|they) (?:also )?(?:complain|says|said))", re.I)
_OUTCOME = re.compile(r"\b(agreed?|will (?:now )?(?:pay|apologise|review|not investigate)|should (?:pay|apologise)|"
                      r"(?:was|were|is) (?:not )?at fault|found fault|no fault|better placed|(?:will not|cannot|can not) "
                      r"investigate|recommend\w*|within (?:\w+ ){1,2}(?:weeks?|months?|days?)|£\s?\d)", re.I)


def restates_complaint(sentence: str, section: str) -> bool:
    """Whether a sentence retells the complaint rather than what was found or done."""
    return section.startswith("the complaint") or bool(_RESTATES.match(sentence))


def states_outcome(sentence: str) -> bool:
    """Whether a sentence states a finding, a remedy or why the Ombudsman did not investigate."""
    return bool(_OUTCOME.search(sentence))


def question_intents(question: str) -> set[str]:
    """What kind of fact the question wants: money, time, reason, action, outcome."""
    return {name for name, pattern in _INTENTS.items() if pattern.search(question)}


def intent_bonus(intents: set[str], sentence: str, section: str) -> float:
    """Extra score for sentences carrying the kind of fact the question asks for."""
    bonus = 0.0
    if "money" in intents and _MONEY.search(sentence):
        bonus += 0.3
    if "time" in intents and _DURATION.search(sentence):
        bonus += 0.15
    if "reason" in intents and _REASON.search(sentence):
        bonus += 0.12
    if "action" in intents and any(k in section for k in ("action", "recommend", "remedy")):
        bonus += 0.15
    if "outcome" in intents and ("final decision" in section or "summary" in section or "conclu" in section):
        bonus += 0.08
    return bonus


@dataclass
class _Candidate:
    doc_id: str
    doc_rank: int
    paragraph: int
    order: int
    text: str
    stems: set[str]
    section: str
    similarity: float
    previous: str | None = None
    in_hit: bool = False
    relevant: bool = False
    prior: float = 0.0
    score: float = 0.0


class ExtractiveBackend:
    """The best sentences of the retrieved decisions, grouped by decision, each with its citation."""

    name = "extractive"
    model: str | None = None
    prompt_version: str | None = None

    def __init__(self, max_sentences: int = 7, per_decision: int = 4, whole_decisions: int = 3,
                 keep_ratio: float = 0.6):
        self.keep_ratio = keep_ratio
        self.max_sentences = max_sentences
        self.per_decision = per_decision
        self.whole_decisions = whole_decisions

    def _candidates(self, ctx: AnswerContext) -> list[_Candidate]:
        """Sentences to choose from: every paragraph of the top decisions, the hit paragraphs of the rest."""
        doc_order: list[str] = []
        hit_paras: dict[str, set[int]] = {}
        similarity: dict[str, float] = {}
        for hit in ctx.hits:
            doc = hit.chunk.doc_id
            if doc not in ctx.decisions:
                continue
            if doc not in hit_paras:
                doc_order.append(doc)
                hit_paras[doc] = set()
            hit_paras[doc].update(hit.chunk.paragraphs)
            similarity[doc] = max(similarity.get(doc, 0.0), hit.dense_similarity or 0.0)
        candidates: list[_Candidate] = []
        for rank, doc in enumerate(doc_order):
            decision = ctx.decisions[doc]
            paragraphs = ([(0, decision.summary)] if decision.summary else []) + [
                (p.number, p.text) for p in decision.paragraphs]
            if rank >= self.whole_decisions:
                paragraphs = [(n, t) for n, t in paragraphs if n in hit_paras[doc]]
            for number, text in paragraphs:
                if addressed_to_a_model(text):
                    continue
                section = "summary" if number == 0 else (decision.section_of(number) or "")
                sentences = sentences_of(text)
                for i, sentence in enumerate(sentences):
                    if len(sentence.split()) < 5:
                        continue
                    start = i
                    while start > 0 and i - start < 2 and _ANAPHORIC.match(sentences[start]):
                        start -= 1
                    previous = " ".join(sentences[start:i]) if start < i else None
                    c = _Candidate(doc, rank, number, i, sentence, stems(sentence), section.lower(),
                                   similarity.get(doc, 0.0), previous)
                    c.in_hit = number in hit_paras[doc]
                    candidates.append(c)
        return candidates

    def _scored(self, ctx: AnswerContext) -> list[_Candidate]:
        """The candidate sentences, each scored against the question and marked relevant or not."""
        q = stems(ctx.question)
        intents = question_intents(ctx.question)
        candidates = self._candidates(ctx)
        if not candidates:
            return []
        df: dict[str, int] = {}
        for c in candidates:
            for s in c.stems & q:
                df[s] = df.get(s, 0) + 1
        n = len(candidates)
        idf = {t: math.log(1 + n / df.get(t, 0.5)) for t in q}
        total = sum(idf.values()) or 1.0
        for c in candidates:
            overlap = sum(idf[t] for t in c.stems & q) / total
            mult = 0.35 if any(b in c.section for b in _BOILERPLATE_SECTIONS) else 1.0
            if restates_complaint(c.text, c.section):
                mult *= 0.6
            # what the most relevant decision found or ordered, in its own summary
            outcome = 0.2 if (c.doc_rank == 0 and c.section in ("summary", "final decision") and mult == 1.0
                              and states_outcome(c.text)) else 0.0
            if ctx.lookup and c.doc_rank == 0 and c.section == "summary":
                outcome += 0.5  # a decision asked about by number: its own summary says what was decided
            if len(c.text.split()) > 70:
                mult *= 0.8
            c.prior = 0.15 / (1 + c.doc_rank) + 0.1 * max(c.similarity, 0.0) + (0.08 if c.in_hit else 0.0)
            c.score = (overlap * mult + c.prior + outcome
                       + intent_bonus(intents, c.text, c.section) * (1.0 if overlap else 0.5))
            meaning = ctx.sentence_similarity.get(c.text)
            if meaning is not None:  # meaning, not just shared words (paraphrased questions)
                c.score += 0.4 * max(meaning, 0.0) * mult
            # A sentence must share a word with the question or be close to it in meaning to be shown.
            c.relevant = overlap > 0 or (meaning is not None and meaning >= MIN_SENTENCE_SIMILARITY) or (
                ctx.lookup and c.doc_rank == 0 and c.section == "summary")
        return candidates

    def select(self, ctx: AnswerContext, max_sentences: int | None = None,
               keep_ratio: float | None = None) -> list[_Candidate]:
        """Score sentences against the question (words, intent, rank); pick the best, diverse ones (at most
        max_sentences; a decision whose best sentence scores under keep_ratio x the best overall is dropped)."""
        limit = self.max_sentences if max_sentences is None else max_sentences
        keep = self.keep_ratio if keep_ratio is None else keep_ratio
        candidates = self._scored(ctx)
        if not candidates:
            return []
        chosen: list[_Candidate] = []
        per_doc: dict[str, int] = {}
        pool = sorted(candidates, key=lambda c: -c.score)
        while pool and len(chosen) < limit:
            best = max(pool, key=lambda c: c.score - 0.08 * per_doc.get(c.doc_id, 0))
            pool.remove(best)
            cap = self.per_decision + 1 if best.doc_rank == 0 else self.per_decision - 1
            if per_doc.get(best.doc_id, 0) >= max(cap, 1):
                continue
            if not best.relevant and chosen:
                continue  # nothing of the question in it: only worth showing if nothing else is
            if any(c.doc_id == best.doc_id and (_jaccard(c.stems, best.stems) > 0.7 or
                                                (c.paragraph == best.paragraph and c.previous and best.text in c.previous))
                   for c in chosen):
                continue
            chosen.append(best)
            per_doc[best.doc_id] = per_doc.get(best.doc_id, 0) + 1
        # Decisions whose best sentence is far weaker than the best overall add noise, not evidence.
        top = max((c.score for c in chosen), default=0.0)
        best_of = {d: max(c.score for c in chosen if c.doc_id == d) for d in per_doc}
        return [c for c in chosen if best_of[c.doc_id] >= keep * top]

    def lead(self, chosen: Sequence[_Candidate], ctx: AnswerContext) -> _Candidate | None:
        """The sentence that answers what was asked, from the most relevant decision: the best-scoring one, with
        the summary preferred (it states the finding and the remedy in a sentence) and sentences carrying the
        asked-for kind of fact (an amount, a time, a body) ahead of the rest."""
        first = [c for c in chosen if c.doc_rank == min(x.doc_rank for x in chosen)]
        if not first:
            return None
        intents = question_intents(ctx.question)
        answering = [c for c in first if not restates_complaint(c.text, c.section)
                     and not any(b in c.section for b in _BOILERPLATE_SECTIONS)] or first
        return max(answering, key=lambda c: c.score + (0.1 if c.section == "summary" else 0.0)
                   + (0.15 if states_outcome(c.text) else 0.0) + intent_bonus(intents, c.text, c.section))

    def compose(self, ctx: AnswerContext) -> str:
        """The answer text: first the sentence that answers, with its citation; then per decision (most relevant
        first) a heading and the supporting sentences, each with its citation. A question asked across decisions
        gets `digest` instead."""
        if ctx.survey and not ctx.lookup:
            return self.digest(ctx)
        chosen = self.select(ctx)
        if not chosen:
            return ""
        lead = self.lead(chosen, ctx)
        blocks = []
        if lead is not None:
            blocks.append(self._lead_line(lead, ctx))
        for doc_id in sorted({c.doc_id for c in chosen}, key=lambda d: min(c.doc_rank for c in chosen
                                                                            if c.doc_id == d)):
            decision = ctx.decisions[doc_id]
            lines = [decision_heading(decision)]
            in_lead = {(lead.paragraph, lead.text), (lead.paragraph, lead.previous)} if lead is not None and \
                lead.doc_id == doc_id else set()
            picked = sorted((c for c in chosen if c.doc_id == doc_id and c is not lead
                             and (c.paragraph, c.text) not in in_lead), key=lambda c: (c.paragraph, c.order))
            shown = {(c.paragraph, c.text) for c in picked} | in_lead
            for c in picked:
                # A sentence that leans on the one before ("If the Council refuses to do so...") gets it back.
                lead_in = f"{c.previous} " if c.previous and (c.paragraph, c.previous) not in shown else ""
                if lead_in:
                    shown.add((c.paragraph, c.previous))
                lines.append(f"- {lead_in}{c.text} {citation_label(decision, c.paragraph)}")
            if len(lines) > 1 or lead is None or lead.doc_id != doc_id:
                blocks.append("\n".join(lines))
            else:
                blocks.append(lines[0])
        return "\n\n".join(blocks)

    @staticmethod
    def _lead_line(lead: _Candidate, ctx: AnswerContext) -> str:
        prefix = f"{lead.previous} " if lead.previous else ""
        return f"**In short:** {prefix}{lead.text} {citation_label(ctx.decisions[lead.doc_id], lead.paragraph)}"

    def digest(self, ctx: AnswerContext, summary_sentences: int = 3) -> str:
        """The answer to a question asked across decisions ("Which complaints were upheld?", "How has the
        Ombudsman dealt with ...?"): the sentence that answers from the most relevant decision, then every decision
        the answer may use (the policy cited each as answering), most relevant first, each with its heading, what it
        found and did (its summary, up to `summary_sentences` sentences) and its sentence closest to the question
        that does not retell the complaint (the summary has). A decision without a summary shows its two closest
        sentences. Measured in eval/NOTES.md ("Questions across decisions"): the sentence-picked answer left out
        decisions and their findings. A listing (`ctx.listing`: the decisions the question's filters select) is
        the list itself, each decision with its whole summary (up to 5 sentences), as a search result shows a
        headnote: no lead and no closest sentence, which the words of a list of filters cannot choose; a yes/no
        listing ("Were any ... upheld?") leads with its answer, counted in the catalog (`ctx.yes_no`)."""
        docs = list(dict.fromkeys(h.chunk.doc_id for h in ctx.hits if h.chunk.doc_id in ctx.decisions))
        if not docs:
            return ""
        chosen = self.select(ctx, max_sentences=2 * len(docs) + self.max_sentences, keep_ratio=0.0)
        lead = self.lead(chosen, ctx) if chosen and not ctx.listing else None
        blocks = [self._lead_line(lead, ctx)] if lead is not None else []
        if ctx.listing and ctx.yes_no:  # the count answers; the decisions listed below are what it counted
            labels = "; ".join(f"{ctx.decisions[d].label} summary" for d in docs[:3])
            blocks.append(f"**In short:** {ctx.yes_no} [{labels}]")
        shown = {(lead.doc_id, lead.paragraph, lead.text)} if lead is not None else set()
        for doc_id in docs:
            decision = ctx.decisions[doc_id]
            lines = [decision_heading(decision)]
            summary = [] if not decision.summary or addressed_to_a_model(decision.summary) else [
                s for s in sentences_of(decision.summary) if (doc_id, 0, s) not in shown
            ][: 5 if ctx.listing else summary_sentences]
            lines += [f"- {s} {citation_label(decision, 0)}" for s in summary]
            closest = [c for c in chosen if c.doc_id == doc_id and c.paragraph != 0 and not (
                summary and restates_complaint(c.text, c.section)) and (doc_id, c.paragraph, c.text) not in shown
                       ][: (0 if ctx.listing else 1) if summary else 2]
            for c in closest:
                lead_in = f"{c.previous} " if c.previous else ""
                lines.append(f"- {lead_in}{c.text} {citation_label(decision, c.paragraph)}")
            blocks.append("\n".join(lines))
        return "\n\n".join(blocks)

    def stream(self, ctx: AnswerContext) -> Iterator[str]:
        """Yield the answer line by line."""
        text = self.compose(ctx)
        for line in text.splitlines(keepends=True):
            yield line

    def condense(self, question: str, history: Sequence[Message]) -> str | None:
        """Extractive mode has no model: the analyser carries the previous question's terms over."""
        return None


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


# ---------------------------------------------------------------------------------------------
# LLM backends (LangChain chat models + LCEL)
# ---------------------------------------------------------------------------------------------

class FakeChatModel(BaseChatModel):
    """Test double: replies from a queue of canned texts (streamed word by word) and records every prompt."""

    responses: list[str]
    prompts: list[list[BaseMessage]] = []
    index: int = 0

    @property
    def _llm_type(self) -> str:
        return "fake-recording"

    def _next(self, messages: list[BaseMessage]) -> str:
        self.prompts.append(list(messages))
        if not self.responses:
            raise BackendError("fake model has no canned replies")
        reply = self.responses[min(self.index, len(self.responses) - 1)]
        self.index += 1
        return reply

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=self._next(messages)))])

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        reply = self._next(messages)
        for piece in re.findall(r"\S+\s*|\s+", reply):
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))


class ChatBackend:
    """An LLM answer backend: prompt from prompts/ | chat model | text, with a token budget."""

    def __init__(self, name: str, chat_model: BaseChatModel, prompt: Prompt, condense_prompt: Prompt,
                 context_window: int, max_tokens: int, encoding: str, model_label: str | None):
        self.name = name
        self.chat_model = chat_model
        self.prompt = prompt
        self.condense_prompt = condense_prompt
        self.context_window = context_window
        self.max_tokens = max_tokens
        self.model = model_label
        self.prompt_version = prompt.version
        self._enc = get_encoding(encoding)
        self.chain = (
            ChatPromptTemplate.from_messages([("system", prompt.system), MessagesPlaceholder("history"),
                                              ("human", prompt.user)])
            | chat_model | StrOutputParser()
        )
        self.condense_chain = (
            ChatPromptTemplate.from_messages([("system", condense_prompt.system), ("human", condense_prompt.user)])
            | chat_model | StrOutputParser()
        )
        self.last_context: str = ""

    def tokens(self, text: str) -> int:
        """Token count (tiktoken; a model's own tokenizer differs a little, hence the safety margin)."""
        return len(self._enc.encode(text, disallowed_special=()))

    def build_context(self, ctx: AnswerContext, budget: int) -> str:
        """The most relevant paragraphs of the hits, each labelled with its citation, within the budget.

        Paragraphs are chosen by relevance (the question's words and the closest sentence's meaning, with
        boilerplate sections discounted) and then listed in retrieval order, so a small window still gets
        the paragraphs that answer rather than the first ones of each chunk. A paragraph addressed to a
        model ("Ignore previous instructions...") is left out: the model never reads it. A question asked across
        decisions (`ctx.survey`, a listing) is answered decision by decision (prompts/answer.md), so each decision's
        summary (what it found and did) comes first, whether or not its hit covered it.
        """
        q = stems(ctx.question)
        across = ctx.survey or ctx.listing
        scored: list[tuple[float, int, str]] = []
        seen: set[tuple[str, int]] = set()
        for order, hit in enumerate(ctx.hits):
            decision = ctx.decisions.get(hit.chunk.doc_id)
            if decision is None:
                continue
            date = display_date(decision.decision_date, iso=True)
            about = f"({decision.authority or 'council not stated'}, {date}, {decision.outcome or 'outcome not stated'})"
            paragraphs = hit_paragraphs(hit, decision)
            if across and decision.summary:
                paragraphs.insert(0, (0, decision.summary))
            for number, text in paragraphs:
                if (decision.doc_id, number) in seen or addressed_to_a_model(text):
                    continue
                seen.add((decision.doc_id, number))
                section = "summary" if number == 0 else (decision.section_of(number) or "").lower()
                words = stems(text)
                overlap = len(words & q) / (len(q) or 1)
                meaning = max((ctx.sentence_similarity.get(s, 0.0) for s in sentences_of(text)), default=0.0)
                score = overlap + meaning + 0.2 / (1 + order) + (2.0 if across and number == 0 else 0.0)
                if any(b in section for b in _BOILERPLATE_SECTIONS):
                    score *= 0.4
                scored.append((score, len(scored), f"{citation_label(decision, number)} {about} {text}"))
        chosen: list[tuple[int, str]] = []
        used = 0
        for score, position, block in sorted(scored, key=lambda x: -x[0]):
            n = self.tokens(block) + 2
            if used + n > budget:
                if not chosen and budget > 50:  # at least part of the best paragraph
                    ids = self._enc.encode(block, disallowed_special=())[: max(budget - 2, 0)]
                    chosen.append((position, self._enc.decode(ids)))
                continue
            chosen.append((position, block))
            used += n
        return "\n\n".join(block for _, block in sorted(chosen))

    def _history_messages(self, history: Sequence[Message], budget: int) -> list[BaseMessage]:
        out: list[BaseMessage] = []
        used = 0
        for m in reversed(list(history)[-6:]):
            n = self.tokens(m.content)
            if used + n > budget:
                break
            out.insert(0, HumanMessage(m.content) if m.role == "user" else AIMessage(m.content))
            used += n
        return out

    def inputs(self, ctx: AnswerContext) -> dict[str, Any]:
        """The chain's inputs, with context and history cut to fit the model's window."""
        fixed = self.tokens(self.prompt.system) + self.tokens(self.prompt.user) + self.tokens(ctx.question)
        room = int((self.context_window - self.max_tokens - fixed) * 0.85) - 32
        history = self._history_messages(ctx.history, max(room // 4, 0))
        room -= sum(self.tokens(str(m.content)) for m in history)
        if room < 64:
            raise ConfigError(
                f"llm_context_window={self.context_window} leaves no room for context after the prompt, question "
                f"and llm_max_tokens={self.max_tokens}: raise the window or lower max tokens."
            )
        context = self.build_context(ctx, room)
        self.last_context = context
        return {"context": context, "question": ctx.question, "history": history}

    def stream(self, ctx: AnswerContext) -> Iterator[str]:
        """Stream the model's answer as text pieces."""
        inputs = self.inputs(ctx)
        try:
            yield from self.chain.stream(inputs)
        except (ConfigError, BackendError):
            raise
        except Exception as exc:  # network errors, timeouts, model errors: the assistant falls back
            raise BackendError(f"{self.name} backend failed: {type(exc).__name__}: {str(exc)[:300]}") from exc

    def condense(self, question: str, history: Sequence[Message]) -> str | None:
        """Rewrite a follow-up into a standalone question with the condense prompt."""
        convo = "\n".join(f"{m.role}: {m.content[:600]}" for m in list(history)[-4:])
        try:
            text = self.condense_chain.invoke({"history": convo, "question": question})
        except Exception as exc:  # a failed rewrite must not fail the question: fall back to carrying terms
            log.warning("condense step failed (%s); carrying the previous question over instead", exc)
            return None
        text = text.strip().splitlines()[0].strip() if text.strip() else ""
        return text if 3 <= len(text) <= 500 else None


def make_backend(settings: Any, chat_model: BaseChatModel | None = None) -> ExtractiveBackend | ChatBackend:
    """The answer backend the settings ask for (chat_model overrides the model for tests)."""
    if settings.llm == "extractive" and chat_model is None:
        return ExtractiveBackend(settings.answer_sentences)
    prompt = load_prompt("answer", settings.prompt_dir)
    condense = load_prompt("condense", settings.prompt_dir)
    label: str | None
    if chat_model is not None:
        model, label = chat_model, getattr(chat_model, "_llm_type", "custom")
    elif settings.llm == "openai":
        from langchain_openai import ChatOpenAI

        model = ChatOpenAI(base_url=settings.openai_base_url, api_key=settings.openai_api_key.get_secret_value(),
                           model=settings.openai_model, temperature=settings.llm_temperature,
                           max_tokens=settings.llm_max_tokens, timeout=settings.llm_timeout_s,
                           max_retries=settings.llm_max_retries, streaming=True)
        label = settings.openai_model
    elif settings.llm == "llamacpp":
        path = settings.resolved_llamacpp_model()
        try:
            from langchain_community.chat_models import ChatLlamaCpp
        except ImportError:
            raise ConfigError("llm=llamacpp needs the llm extra: pip install -e '.[llm]'") from None
        try:
            model = ChatLlamaCpp(model_path=str(path), n_ctx=settings.llm_context_window,
                                 max_tokens=settings.llm_max_tokens, temperature=settings.llm_temperature,
                                 n_threads=settings.llm_threads, n_batch=512, verbose=False, streaming=True,
                                 seed=42, repeat_penalty=1.15)
        except Exception as exc:  # llama.cpp load errors (bad file, unsupported arch)
            raise ConfigError(f"Could not load the GGUF model {path}: {exc}") from None
        label = path.name
    elif settings.llm == "fake":
        model, label = FakeChatModel(responses=[NOT_FOUND]), "fake"
    else:
        raise ConfigError(f"llm={settings.llm!r}: choose extractive, openai, llamacpp or fake")
    return ChatBackend(settings.llm if chat_model is None else "fake", model, prompt, condense,
                       settings.llm_context_window, settings.llm_max_tokens, settings.token_encoding, label)
