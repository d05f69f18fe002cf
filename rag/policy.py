"""Answer or decline, and which decisions to cite: one decision per candidate decision, in one place.

Why a model and not a threshold: on real published decisions the best-sentence similarity of questions no
decision answers (median 0.53) overlapped those of answerable ones (0.68) so much that the best single
threshold declined 4 of 25 unanswerable questions (issue 11). A question is answered when at least one
retrieved decision *addresses its subject*; that is judged per decision from a few measured signals (meaning,
shared words, shared phrases, how far the decision stands out) combined by a logistic regression fitted on the
development split of the gold set (`python -m eval fit-policy`) and reported on the test split. The fitted
weights, thresholds and their provenance live in `rag/models/relevance.json`; its version travels with every
Answer and evaluation report.

Rules that need no fitting stay rules, each with its reason (see RULES): a named council or acronym the index
does not hold, a question asking for statistics, a case number not in the index.

Word weights (IDF) come from the index's chunks together with background statistics shipped beside the model
(`rag/models/background_words.json`: the stems of the fictional evaluation corpus the model was fitted on).
Without them a small index misjudges ordinary words: over the five sample decisions "handle" appears nowhere,
so "When does the ICO handle rectification?" looked half about something the index lacks (coverage 0.47,
P 0.43) and was declined, while over the 171-decision evaluation index it is answered (coverage 0.77, P 0.65).
On a large index its own counts outweigh the background's; "unseen" (words no indexed decision contains)
still counts the index alone.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import ConfigError
from core.text import content_words, query_terms, stem
from core.types import Decision, Hit
from rag.query import ACRONYMS, find_authorities

if TYPE_CHECKING:
    from rag.retrieve import Retrieval

MODEL_PATH = Path(__file__).resolve().parent / "models" / "relevance.json"
BACKGROUND_FILE = "background_words.json"

FEATURES = ("sim_best", "sim_top3", "chunk_sim", "coverage", "phrases", "unseen", "rank", "lead", "own_coverage",
            "filtered")

# Words of a follow-up that point back at the conversation rather than name a subject.
_GENERIC_FOLLOW_UP = frozenset("""
also what about how else then again more another other one same did does was were they them their it its
much long pay paid council councils anything something any happen happened else why who which where
""".split())

STATISTICS_QUESTION = re.compile(
    r"\b(on average|statistics|league tables?|success rate)\b|"
    r"\b(how many|what (?:number|percentage|proportion|share|fraction) of)\b.*"
    r"\b(issued?|received?|made|handled|upheld|per (?:year|month)|each (?:year|month)|last (?:year|month)|"
    r"in total|altogether|this year|nationally|complaints|fines|councils)\b", re.I)

@dataclass(frozen=True)
class WordStatistics:
    """How many of n_chunks chunks contain each stem: the background added to the index's own counts."""

    n_chunks: int
    df: Mapping[str, int]
    provenance: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"n_chunks": self.n_chunks, "provenance": dict(self.provenance), "df": dict(sorted(self.df.items()))}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WordStatistics:
        try:
            return cls(int(data["n_chunks"]), {str(k): int(v) for k, v in data["df"].items()},
                       dict(data.get("provenance") or {}))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"background word statistics are malformed ({type(exc).__name__}: {exc}); refit "
                              "with python -m eval fit-policy") from None


RULES = {
    "no_filter_match": "no indexed decision matches the filters",
    "no_hits": "nothing was retrieved",
    "missing_case": "the question names a case number the index does not hold",
    "statistics": "decisions describe single complaints; they hold no counts or rates",
    "uncovered": "the question names a council or an acronym no indexed decision contains",
    "no_decision_addresses": "no retrieved decision addresses what the question is about",
    # Decided after the answer is composed: a language model read the passages and said they do not answer.
    "model_found_nothing": "the language model found no answer in the passages",
}


@dataclass(frozen=True)
class Candidate:
    """One retrieved decision and the signals that say whether it answers the question."""

    doc_id: str
    rank: int
    features: dict[str, float]


@dataclass(frozen=True)
class PolicyDecision:
    """Answer or decline; the decisions to answer from (best first); the reason; every candidate's score."""

    answer: bool
    reason: str | None
    relevant: tuple[str, ...]
    scores: dict[str, float] = field(default_factory=dict)
    version: str | None = None


@dataclass(frozen=True)
class RelevanceModel:
    """Logistic regression over FEATURES: P(a decision answers the question), with its two thresholds.

    answer_threshold: the best decision's probability needed to answer at all.
    cite_ratio: another decision is cited beside the best one when its probability is at least this share of the
    best one's (relative, because probabilities shift with the index's word statistics).
    """

    version: str
    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    answer_threshold: float
    cite_ratio: float
    filtered_answer_threshold: float
    provenance: dict[str, Any] = field(default_factory=dict)
    background: WordStatistics | None = None

    def __post_init__(self) -> None:
        n = len(self.features)
        if not (len(self.mean) == len(self.scale) == len(self.coef) == n) or set(self.features) - set(FEATURES):
            raise ConfigError(f"relevance model {self.version!r}: features {self.features} do not match its weights "
                              f"or are unknown (known: {', '.join(FEATURES)}); refit with python -m eval fit-policy")

    def tuned(self, answer_threshold: float | None = None, cite_ratio: float | None = None) -> RelevanceModel:
        """The model with the weights a setting overrides (OMBUDS_ANSWER_THRESHOLD, OMBUDS_CITE_RATIO); the
        version says so, so that every Answer and report shows the policy it ran."""
        if answer_threshold is None and cite_ratio is None:
            return self
        changes: dict[str, Any] = {}
        if answer_threshold is not None:
            changes.update(answer_threshold=answer_threshold, filtered_answer_threshold=answer_threshold)
        if cite_ratio is not None:
            changes["cite_ratio"] = cite_ratio
        label = ",".join(f"{k}={v:g}" for k, v in (("threshold", answer_threshold), ("cite_ratio", cite_ratio))
                         if v is not None)
        return dataclasses.replace(self, version=f"{self.version}+{label}", **changes)

    def probability(self, features: Mapping[str, float]) -> float:
        """P(answers) for one candidate's features."""
        z = self.intercept + sum(c * (features[f] - m) / s
                                 for f, m, s, c in zip(self.features, self.mean, self.scale, self.coef))
        return 1.0 / (1.0 + math.exp(-max(min(z, 40.0), -40.0)))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form written by the fitting command."""
        return {"version": self.version, "features": list(self.features), "mean": list(self.mean),
                "scale": list(self.scale), "coef": list(self.coef), "intercept": self.intercept,
                "answer_threshold": self.answer_threshold, "cite_ratio": self.cite_ratio,
                "filtered_answer_threshold": self.filtered_answer_threshold, "provenance": self.provenance,
                **({"background": BACKGROUND_FILE} if self.background else {})}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], background: WordStatistics | None = None) -> RelevanceModel:
        """Validate and build from the JSON form (the background statistics are read by load_model)."""
        try:
            return cls(version=str(data["version"]), features=tuple(data["features"]),
                       mean=tuple(float(x) for x in data["mean"]), scale=tuple(float(x) or 1.0 for x in data["scale"]),
                       coef=tuple(float(x) for x in data["coef"]), intercept=float(data["intercept"]),
                       answer_threshold=float(data["answer_threshold"]), cite_ratio=float(data["cite_ratio"]),
                       filtered_answer_threshold=float(data.get("filtered_answer_threshold",
                                                                data["answer_threshold"])),
                       provenance=dict(data.get("provenance") or {}), background=background)
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"relevance model file is malformed ({type(exc).__name__}: {exc}); "
                              "refit it with python -m eval fit-policy") from None


@lru_cache(maxsize=4)
def load_model(path: str | None = None) -> RelevanceModel:
    """The fitted relevance model (default: rag/models/relevance.json)."""
    p = Path(path) if path else MODEL_PATH
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"relevance model {p} cannot be read ({exc.strerror}); restore it from git or refit it "
                          "with python -m eval fit-policy") from None
    except ValueError as exc:
        raise ConfigError(f"relevance model {p} is not valid JSON ({exc}); refit it with python -m eval "
                          "fit-policy") from None
    background = None
    if isinstance(data, dict) and data.get("background"):
        other = p.parent / str(data["background"])
        try:
            background = WordStatistics.from_dict(json.loads(other.read_text(encoding="utf-8")))
        except OSError as exc:
            raise ConfigError(f"relevance model {p} names background word statistics {other} that cannot be read "
                              f"({exc.strerror}); restore them from git or refit with python -m eval fit-policy"
                              ) from None
        except ValueError as exc:
            raise ConfigError(f"background word statistics {other} are not valid JSON ({exc}); refit with "
                              "python -m eval fit-policy") from None
    return RelevanceModel.from_dict(data, background)


# --- signals --------------------------------------------------------------------------------------------
def decision_stems(decision: Decision) -> list[str]:
    """The stems of a decision's council, category, summary and paragraphs, in reading order (no stopwords)."""
    out: list[str] = []
    header = " ".join(x for x in (decision.authority, decision.category, decision.subcategory) if x)
    for text in [header, decision.summary or ""] + [p.text for p in decision.paragraphs]:
        out.extend(stem(t) for t in content_words(text))
    return out


def phrase_coverage(question_stems: Sequence[str], positions: Mapping[str, Sequence[int]], window: int = 4) -> float:
    """Share of the question's neighbouring word pairs that stand within `window` words of each other in the
    decision: "waiting times" and "hip operations" must appear together, not just "hospital" somewhere."""
    pairs = [(a, b) for a, b in zip(question_stems, question_stems[1:]) if a != b]
    if not pairs:
        return 1.0 if question_stems and question_stems[0] in positions else 0.0
    found = 0
    for a, b in pairs:
        pa, pb = positions.get(a), positions.get(b)
        if pa and pb and _near(pa, pb, window):
            found += 1
    return found / len(pairs)


def _near(xs: Sequence[int], ys: Sequence[int], window: int) -> bool:
    i = j = 0
    while i < len(xs) and j < len(ys):
        if abs(xs[i] - ys[j]) <= window:
            return True
        if xs[i] < ys[j]:
            i += 1
        else:
            j += 1
    return False


def own_terms(question: str, standalone: str) -> list[str]:
    """The question's own subject words: for a follow-up ("and street lights?"), the words it adds beyond the
    conversation, without the words that only point back at it."""
    terms = [t for t in query_terms(question) if t not in _GENERIC_FOLLOW_UP]
    return terms if standalone != question else query_terms(question)


def candidate_features(question: str, standalone: str, hits: Sequence[Hit], decisions: Mapping[str, Decision],
                       sentence_similarity: Mapping[str, Mapping[str, float]], df: Mapping[str, int],
                       n_chunks: int, filtered: bool, max_decisions: int = 5,
                       background: WordStatistics | None = None) -> list[Candidate]:
    """Signals for each of the first `max_decisions` retrieved decisions (in rank order).

    sentence_similarity: doc_id -> {sentence: cosine to the question} (summary and hit paragraphs).
    df: stem -> how many of the index's n_chunks chunks contain it (absent: none).
    background: word statistics added to the index's for the word weights (see the module's docstring).
    """
    order: list[str] = []
    chunk_sim: dict[str, float] = {}
    for hit in hits:
        doc = hit.chunk.doc_id
        if doc not in decisions:
            continue
        if doc not in chunk_sim:
            order.append(doc)
            chunk_sim[doc] = 0.0
        chunk_sim[doc] = max(chunk_sim[doc], hit.dense_similarity or 0.0)
    order = order[:max_decisions]
    q_terms = list(dict.fromkeys(stem(t) for t in query_terms(standalone)))
    own = list(dict.fromkeys(stem(t) for t in own_terms(question, standalone)))
    terms = list(dict.fromkeys(q_terms + own))
    if background is not None:
        idf = idf_table(terms, {t: df.get(t, 0) + background.df.get(t, 0) for t in terms},
                        n_chunks + background.n_chunks)
    else:
        idf = idf_table(terms, df, n_chunks)
    total = sum(idf.get(t, 0.0) for t in q_terms) or 1.0
    # Words no indexed decision contains ("hip", "DVLA"): the question is about something the index lacks.
    unseen = sum(idf[t] for t in q_terms if not df.get(t)) / total if q_terms else 0.0
    best_sims = {d: sorted(sentence_similarity.get(d, {}).values(), reverse=True) for d in order}
    out: list[Candidate] = []
    for rank, doc in enumerate(order):
        stems_seq = decision_stems(decisions[doc])
        positions: dict[str, list[int]] = {}
        for i, s in enumerate(stems_seq):
            positions.setdefault(s, []).append(i)
        present = set(positions)
        sims = best_sims[doc] or [0.0]
        others = [best_sims[d][0] for d in order if d != doc and best_sims[d]]
        own_total = sum(idf.get(t, 0.0) for t in own) or 1.0
        features = {
            "sim_best": sims[0],
            "sim_top3": sum(sims[:3]) / len(sims[:3]),
            "chunk_sim": chunk_sim[doc],
            "coverage": sum(idf.get(t, 0.0) for t in q_terms if t in present) / total,
            "phrases": phrase_coverage(q_terms, positions),
            "unseen": unseen,
            "rank": 1.0 / (1 + rank),
            "lead": sims[0] - max(others, default=sims[0] - 0.1),
            "own_coverage": (sum(idf.get(t, 0.0) for t in own if t in present) / own_total) if own else 1.0,
            "filtered": 1.0 if filtered else 0.0,
        }
        out.append(Candidate(doc, rank, features))
    return out


SIMILARITY_FEATURES = ("sim_best", "sim_top3", "chunk_sim")


def shifted(candidates: Sequence[Candidate], delta: float) -> list[Candidate]:
    """The same candidates with every similarity moved by delta (the margin check of issue 11)."""
    return [Candidate(c.doc_id, c.rank, {k: v + delta if k in SIMILARITY_FEATURES else v
                                         for k, v in c.features.items()}) for c in candidates]


def cited_decisions(scores: Mapping[str, float], answer_threshold: float, cite_ratio: float,
                    survey: bool = False) -> tuple[str, ...]:
    """The decisions an answer cites, most likely first (scores: doc_id -> probability that it answers).

    Ties keep the order of `scores`. A question about one matter cites the best decision and its near-ties (probability at least `cite_ratio` x
    the best: fitted by F0.5, precision counting double). A question asked across decisions (`survey`: "Which
    complaints were upheld?", "How has the Ombudsman dealt with ...?", rag.query.asks_across_decisions) is
    answered by every decision that answers it, so it also cites each decision whose own probability reaches the
    answer threshold. Measured on the dev split with the digest answer (eval/NOTES.md "Questions across decisions"):
    key-fact recall 0.698 -> 0.723 and citation recall 0.722 -> 0.761 over its 112 answerable questions (topical
    questions 0.635 -> 0.812), citation precision 0.867 -> 0.863."""
    ranked = sorted(scores, key=lambda d: -scores[d])
    if not ranked:
        return ()
    best = scores[ranked[0]]
    return tuple(d for d in ranked if d == ranked[0] or scores[d] >= cite_ratio * best
                 or (survey and scores[d] >= answer_threshold))


def decide(candidates: Sequence[Candidate], model: RelevanceModel, filtered: bool = False,
           survey: bool = False) -> PolicyDecision:
    """Answer when the best candidate is likely enough to answer; cite the candidates that answer too
    (cited_decisions)."""
    if not candidates:
        return PolicyDecision(False, RULES["no_hits"], (), {}, model.version)
    scores = {c.doc_id: model.probability(c.features) for c in sorted(candidates, key=lambda c: c.rank)}
    needed = model.filtered_answer_threshold if filtered else model.answer_threshold
    if max(scores.values()) < needed:
        return PolicyDecision(False, RULES["no_decision_addresses"], (), scores, model.version)
    return PolicyDecision(True, None, cited_decisions(scores, needed, model.cite_ratio, survey), scores,
                          model.version)


def verdict(model: RelevanceModel, candidates: Sequence[Candidate], retrieval: Retrieval, question: str, *,
            named_cases: bool, uncovered: str | None, explicit_filters: bool, survey: bool = False) -> PolicyDecision:
    """Answer or decline, and why: the one place that decides. Rules that need no fitting come first, each with
    its reason (RULES); then the fitted model (`decide`).

    retrieval: what was found (hits, decisions looked up by case number, case numbers not in the index, whether
    the filters match anything); named_cases: the question names a case number; uncovered: the note for a council
    or acronym no indexed decision contains (None when every one is covered); survey: the question asks across
    decisions (cites every decision that answers)."""
    def declined(rule: str) -> PolicyDecision:
        return PolicyDecision(False, RULES[rule], (), {}, model.version)

    if retrieval.filters_match_nothing:
        return declined("no_filter_match")
    if retrieval.looked_up:  # the person named the decision: answer from it, whatever the wording
        return PolicyDecision(True, None, tuple(retrieval.looked_up), {}, model.version)
    if not retrieval.hits:
        return declined("no_hits")
    if named_cases and retrieval.missing_cases:
        return declined("missing_case")
    if STATISTICS_QUESTION.search(question):
        return declined("statistics")
    if uncovered:
        return declined("uncovered")
    return decide(candidates, model, filtered=explicit_filters, survey=survey)


_NAMED_COUNCIL = re.compile(
    r"\b((?:[A-Z][a-z'’]+(?:[ -](?:upon|on|in|and|the|of|[A-Z][a-z'’]+))*)\s+(?:City|County|Borough|District|"
    r"Metropolitan Borough|Metropolitan District|Town|Parish|Unitary)?\s*Council)\b"
    r"|\b(London Borough of [A-Z][a-z'’]+(?: [A-Z][a-z'’]+)*|Royal Borough of [A-Z][a-z'’]+(?: [A-Z][a-z'’]+)*)")


def named_councils(text: str) -> list[str]:
    """Council names written in full in a question ("Leeds City Council", "London Borough of Ealing")."""
    found = []
    for m in _NAMED_COUNCIL.finditer(text):
        name = (m.group(1) or m.group(2) or "").strip()
        if name and name.split()[0] not in {"The", "A", "Which", "What", "Did", "Does", "Has", "Is", "Any", "Each"}:
            found.append(name)
    return found


def uncovered_note(question: str, councils: Sequence[str], vocabulary: Container[str],
                   document_frequency: Callable[[list[str]], Mapping[str, int]]) -> str | None:
    """The rule "uncovered": a question naming a council, or an acronym, that no indexed decision contains is about
    something the decisions do not cover. Returns the note shown to the person (None when all are covered).

    councils: the index's councils; vocabulary: the embedding model's general vocabulary (lower case);
    document_frequency: stems -> how many chunks hold each."""
    unknown = [name for name in named_councils(question) if not find_authorities(name, councils)]
    if unknown:
        return "No decisions about " + " or ".join(unknown) + " are in the index."
    if absent := absent_acronyms(question, vocabulary, document_frequency):
        return "No indexed decision mentions " + " or ".join(absent) + "."
    return None


def absent_acronyms(question: str, vocabulary: Container[str],
                    document_frequency: Callable[[list[str]], Mapping[str, int]]) -> list[str]:
    """Acronyms the question names ("IOPC", "DVLA") that no indexed decision contains, spelled out or not: the
    question is about a body or scheme the decisions do not cover. Known acronyms count as present when their
    expansion is in the index. A word in capitals that is a whole word of the embedding model's general
    vocabulary ("DROP", "TABLE", and common acronyms such as "NHS" or "UK") is left to the evidence check, and
    a question typed in capitals is not read for acronyms."""
    if not vocabulary:
        return []  # without a vocabulary, ordinary words in capitals could not be told from acronyms
    words = re.findall(r"[A-Za-z][A-Za-z0-9]*", question)
    found = [w for w in dict.fromkeys(re.findall(r"\b[A-Z][A-Z0-9]{1,5}\b", question))
             if not w.isdigit() and w.lower() not in vocabulary]
    if not found or len(found) > len(words) / 2:
        return []
    absent = []
    for acronym in found:
        spelled = [stem(t) for t in query_terms(ACRONYMS.get(acronym, ""))]
        as_written = stem(acronym.lower())
        df = document_frequency([as_written, *spelled])
        if not df.get(as_written) and not (spelled and all(df.get(t) for t in spelled)):
            absent.append(acronym)
    return absent


def idf_table(terms: Sequence[str], document_frequency: Mapping[str, int], n_chunks: int) -> dict[str, float]:
    """BM25-style IDF for stems over the index's chunks (unseen stems get the largest value)."""
    n = max(n_chunks, 1)
    return {t: math.log(1 + (n - document_frequency.get(t, 0) + 0.5) / (document_frequency.get(t, 0) + 0.5))
            for t in terms}
