"""python -m bench synth --n N --out DIR --seed S — synthetic decisions for benchmarks only.

Writes N plain-text files in the published layout (title line "Council (98 NNN NNN)", Category, Decision,
Decision date, "The Ombudsman's final decision:", Summary, sections of numbered paragraphs), with lengths,
outcomes and categories drawn to resemble data/sample and eval/corpus/dev. The text comes from templates
and word lists in this file; nothing is copied from real decisions.

Every file starts with the line "SYNTHETIC — benchmark only" (the parser treats it like the FICTIONAL
mark, so such files never enter the default index), and every case number is in the reserved range
98 NNN NNN, which the Ombudsman does not issue. Never use these files for quality figures: the text is
plausible in shape and vocabulary, not in meaning.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SYNTHETIC_MARK = "SYNTHETIC — benchmark only"  # same text as ingest.parse.SYNTHETIC_MARK
CASE_PREFIX = "98"

# Invented place names: syllables that read like English towns without naming real councils.
_HEADS = ["Ash", "Bram", "Cal", "Dun", "Elm", "Fen", "Gran", "Hol", "Ivy", "Kes", "Lang", "Mar", "Nor", "Oak",
          "Pen", "Quen", "Ros", "Sal", "Thorn", "Ul", "Ver", "Wen", "Yar", "Brack", "Cress", "Dray", "Fal",
          "Glen", "Hart", "Kir", "Lud", "Mow", "Nett", "Orm", "Pell", "Rad", "Stan", "Tid", "Wold", "Brin"]
_TAILS = ["ford", "ton", "ley", "bury", "field", "moor", "wick", "ham", "dale", "stead", "worth", "by",
          "mere", "combe", "well", "borough", "hurst", "minster", "gate", "den"]
_KINDS = ["County Council", "City Council", "Borough Council", "District Council", "Council",
          "Metropolitan Borough Council"]

# (category, subcategory, topic nouns, things the council did or failed to do)
_TOPICS: list[tuple[str, str, list[str], list[str]]] = [
    ("Education", "School transport", ["school transport", "the eligibility criteria", "the walking route",
     "the stage two appeal panel", "a travel pass", "the nearest suitable school", "mileage payments"],
     ["refused free transport", "did not consider the medical evidence", "assessed the route as safe",
      "delayed the appeal hearing", "applied its policy too rigidly"]),
    ("Education", "Special educational needs", ["the Education, Health and Care plan", "the annual review",
     "speech and language therapy", "the special educational provision", "the SEN casework team",
     "the educational psychologist's advice"],
     ["did not issue the plan within 20 weeks", "failed to secure the provision", "delayed the annual review",
      "did not respond to Mrs Y's emails", "missed the statutory timescales"]),
    ("Education", "School admissions", ["the admission appeal", "the oversubscription criteria",
     "the independent appeal panel", "the waiting list", "the distance measurement"],
     ["did not properly consider the appeal", "misapplied the criteria", "measured the distance wrongly"]),
    ("Environment and regulation", "Noise", ["noise nuisance", "the noise monitoring equipment",
     "the diary sheets", "a statutory nuisance", "the environmental health officer", "the recordings"],
     ["did not investigate the noise", "closed the case too early", "did not visit the property",
      "decided there was no statutory nuisance"]),
    ("Environment and regulation", "Refuse and recycling", ["the assisted collection", "the garden waste service",
     "missed bin collections", "the recycling crew", "the waste contract"],
     ["repeatedly missed the collection", "did not put things right", "charged for a service it did not provide"]),
    ("Benefits and tax", "Council tax", ["council tax reduction", "the liability order", "the enforcement agents",
     "the backdating request", "the single person discount", "the summons costs"],
     ["delayed deciding the claim", "issued a summons while the claim was outstanding",
      "refused to backdate the reduction", "added enforcement fees"]),
    ("Highways and transport", "Parking and other penalties", ["the penalty charge notice", "the loading bay",
     "the formal representations", "the parking adjudicator", "the civil enforcement officer"],
     ["ignored the representations", "issued the notice wrongly", "did not tell Mr X about his right of appeal"]),
    ("Highways and transport", "Highway repair and maintenance", ["the pothole", "the footway defect",
     "the highway inspection regime", "the insurance claim", "the repair programme"],
     ["did not repair the defect in time", "failed to inspect the road", "refused the claim for damage"]),
    ("Adult care services", "Assessment and care plan", ["the care needs assessment", "the care and support plan",
     "the personal budget", "the occupational therapist", "the direct payments"],
     ["delayed the assessment", "reduced the care hours without reassessing", "did not involve the family"]),
    ("Adult care services", "Residential care", ["the care home", "the falls risk assessment",
     "the notice to leave", "the safeguarding enquiry", "the care provider"],
     ["did not manage the risk of falls", "gave notice without proper reasons", "failed to record the incidents"]),
    ("Adult care services", "Charging", ["the financial assessment", "the deprivation of assets",
     "the third party top-up", "the deferred payment agreement", "the charging policy"],
     ["decided Mrs Y had deprived herself of capital", "did not explain the charges", "backdated the charges"]),
    ("Children's care services", "Child protection", ["the child protection conference", "the conference minutes",
     "the social worker's report", "the child protection plan", "the safeguarding referral"],
     ["recorded inaccurate information", "did not share the report in time", "refused to amend the minutes"]),
    ("Children's care services", "Other", ["the statutory children's complaints procedure", "the stage two investigation",
     "the independent person", "the children's services team", "the assessment"],
     ["refused to escalate the complaint", "delayed the stage two investigation", "disclosed the address"]),
    ("Children's care services", "Leaving care", ["the leaving care allowance", "the pathway plan",
     "the personal adviser", "the setting up home allowance"],
     ["did not pay the allowance", "failed to update the pathway plan"]),
    ("Housing", "Homelessness", ["the interim accommodation", "the homelessness application",
     "the suitability review", "the main housing duty", "the bed and breakfast"],
     ["placed the family in unsuitable accommodation", "delayed the review decision",
      "decided Ms Z was intentionally homeless"]),
    ("Housing", "Allocations", ["the housing register", "the medical priority", "the banding decision",
     "the allocations scheme"],
     ["did not award medical priority", "delayed the review of the banding"]),
    ("Housing", "Council houses", ["the damp and mould", "the repairs team", "the tenancy", "the disrepair claim"],
     ["did not complete the repairs", "left the damp untreated for months"]),
    ("Planning and development", "Planning applications", ["the planning application", "the officer's report",
     "the loss of light", "the neighbour consultation", "the planning committee"],
     ["did not consider the impact on the neighbour", "failed to consult properly", "granted permission"]),
    ("Planning and development", "Enforcement", ["the enforcement investigation", "the breach of planning control",
     "the enforcement notice", "the site visit"],
     ["delayed taking enforcement action", "closed the enforcement case without visiting"]),
    ("Corporate and other services", "Complaint handling", ["the corporate complaints procedure",
     "the stage two response", "the complaint acknowledgement", "the unreasonable behaviour policy"],
     ["delayed its stage two reply", "did not respond to the complaint", "restricted Mr X's contact"]),
    ("Corporate and other services", "Data protection", ["the subject access request", "the personal data",
     "the data breach", "the Information Commissioner's Office"],
     ["disclosed personal data", "did not answer the request"]),
]
# Outcome shares close to the samples and the dev corpus.
_OUTCOMES = [("Upheld", 0.45), ("Closed after initial enquiries", 0.33), ("Not upheld", 0.22)]
_PEOPLE = ["Mr X", "Mrs Y", "Ms Z", "Miss X", "Mr B", "Mrs C", "Ms D", "Mr and Mrs E"]
_OFFICERS = ["the officer", "the social worker", "the caseworker", "the team manager", "the investigator",
             "the housing officer", "the case officer"]
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"]
_ADVERBS = ["promptly", "properly", "fully", "clearly", "again", "later", "eventually", "in writing",
            "by email", "by telephone"]
_LAW = ["Local Government Act 1974, section 26(1), as amended", "Local Government Act 1974, section 34(3)",
        "Children Act 1989, section 26", "Care Act 2014, section 9", "Housing Act 1996, section 202",
        "Environmental Protection Act 1990, section 79", "Education Act 1996, section 508B",
        "Children and Families Act 2014, section 42", "Local Government Finance Act 1992"]

_GENERIC = [
    "{P} complained to the Council about {t} in {m} {y}.",
    "The Council said it {a} because of the information it had at the time.",
    "{P} says the Council {a} and that this caused avoidable distress and uncertainty.",
    "In {m} {y} {o} wrote to {P} about {t} and explained the next steps.",
    "The Council accepted it {a} and apologised to {P} {adv}.",
    "{O} told {P} that {t} would be reviewed within {n} weeks.",
    "{P} chased the Council {n} times because nobody replied about {t}.",
    "The records show {o} considered {t} but did not write down the reasons.",
    "The Council's policy says it should decide {t} within {n} working days.",
    "{P} provided further evidence about {t}, including letters and photographs.",
    "We asked the Council for its records about {t} and for its comments on the complaint.",
    "The Council did not keep {P} informed about {t}, which added to the frustration.",
    "{O} visited the property in {m} {y} and made notes about {t}.",
    "The delay meant {P} went without {t} for about {n} months.",
    "The Council has since changed its procedures for {t}.",
]
_ROLE = [
    "We investigate complaints about 'maladministration' and 'service failure', which we call 'fault'. We must "
    "also consider whether any fault has caused an injustice to the person complaining. ({law})",
    "We cannot question whether a council's decision is right or wrong simply because the complainant disagrees "
    "with it. We must consider whether there was fault in the way the decision was reached. ({law})",
    "If we are satisfied with an organisation's actions or proposed actions, we can complete our investigation "
    "and issue a decision statement. ({law})",
    "We may decide not to start or continue an investigation if we believe it is unlikely we would find fault, "
    "or the injustice is not significant enough to justify our involvement.",
]
_CONSIDERED = [
    "I considered the information provided by {P} and the Council.",
    "I considered the Ombudsman's Assessment Code.",
    "{P} and the Council had an opportunity to comment on my draft decision. I considered any comments received "
    "before making a final decision.",
    "I spoke to {P} about the complaint and read the Council's response to my enquiries.",
]
_FOUND_FAULT = [
    "The Council was at fault because it {a}. This caused {P} avoidable distress and time and trouble.",
    "There was fault in how the Council handled {t}. It should have acted sooner.",
    "I find the Council {a}, which was fault. On balance this meant {P} lost the chance of a better outcome.",
]
_FOUND_NO_FAULT = [
    "The Council considered {t} properly and reached a decision it was entitled to make.",
    "I do not find fault in how the Council dealt with {t}. It followed its policy and explained its reasons.",
    "I understand {P} disagrees with the decision, but I cannot question a decision made without fault.",
]
_CLOSED = [
    "We will not investigate this complaint because {P} could have appealed to the tribunal about {t}.",
    "It is reasonable to expect {P} to use the right of appeal, so we will not investigate {t}.",
    "The Information Commissioner's Office is better placed to consider the complaint about {t}.",
    "There is not enough evidence of fault in how the Council dealt with {t} to justify an investigation.",
    "We will not investigate because any injustice to {P} from {t} is not significant enough.",
]
_ACTION = [
    "Within one month of my final decision the Council will apologise to {P} for the fault identified.",
    "The Council will pay {P} £{money} to acknowledge the distress and uncertainty caused by the delay.",
    "The Council will pay {P} £{money2} for the time and trouble of pursuing the complaint.",
    "Within three months the Council will remind its staff of the timescales for {t}.",
    "The Council will review its procedures for {t} and tell us what it has changed.",
]


@dataclass(frozen=True)
class SynthSpec:
    """What one synthetic decision is about; the text is written from it."""

    index: int
    case_number: str
    authority: str
    category: str
    subcategory: str
    outcome: str
    date: dt.date


def case_number(index: int, seed: int) -> str:
    """A unique case number in the reserved range 98 NNN NNN (a permutation of index for this seed)."""
    if not 0 <= index < 1_000_000:
        raise ValueError(f"index {index} outside 0..999999: the reserved range holds a million case numbers")
    n = (index * 7919 + seed * 104729) % 1_000_000  # 7919 is prime and coprime with 10**6: no repeats
    return f"{CASE_PREFIX} {n // 1000:03d} {n % 1000:03d}"


def _council(rng: random.Random) -> str:
    return f"{rng.choice(_HEADS)}{rng.choice(_TAILS)} {rng.choice(_KINDS)}"


def _outcome(rng: random.Random) -> str:
    x = rng.random()
    for name, share in _OUTCOMES:
        if x < share:
            return name
        x -= share
    return _OUTCOMES[-1][0]


def _fill(rng: random.Random, template: str, person: str, topic: tuple) -> str:
    _, _, nouns, acts = topic
    year = rng.randint(2018, 2024)
    text = template.format(
        P=person, t=rng.choice(nouns), a=rng.choice(acts), o=rng.choice(_OFFICERS),
        O=rng.choice(_OFFICERS).capitalize(), m=rng.choice(_MONTHS), y=year, adv=rng.choice(_ADVERBS),
        n=rng.randint(2, 12), law=rng.choice(_LAW), money=rng.choice([100, 150, 200, 250, 300, 500]),
        money2=rng.choice([50, 100, 150]),
    )
    return text[0].upper() + text[1:]


def _paragraph(rng: random.Random, pool: list[str], person: str, topic: tuple, sentences: tuple[int, int]) -> str:
    return " ".join(_fill(rng, rng.choice(pool), person, topic) for _ in range(rng.randint(*sentences)))


def _sections(rng: random.Random, spec: SynthSpec, person: str, topic: tuple) -> list[tuple[str, list[str]]]:
    """Section name -> paragraphs, shaped by the outcome like the published decisions."""
    p = lambda pool, lo=1, hi=3: _paragraph(rng, pool, person, topic, (lo, hi))  # noqa: E731
    complaint = [f"The complainant, whom I shall call {person}, complains the Council "
                 f"{rng.choice(topic[3])} in relation to {rng.choice(topic[2])}."]
    if rng.random() < 0.5:
        complaint.append(p(_GENERIC, 1, 2))
    role = [_fill(rng, t, person, topic) for t in rng.sample(_ROLE, rng.randint(1, 3))]
    considered = [_fill(rng, t, person, topic) for t in rng.sample(_CONSIDERED, rng.randint(1, 3))]
    if spec.outcome == "Closed after initial enquiries":
        assessment = [p(_GENERIC, 2, 4) for _ in range(rng.randint(2, 6))] + [p(_CLOSED, 1, 2)]
        return [("The complaint", complaint), ("The Ombudsman's role and powers", role),
                ("How I considered this complaint", considered), ("My assessment", assessment),
                ("Final decision", [p(_CLOSED, 1, 1)])]
    # A long tail of long investigations, like the samples (most 8-30 paragraphs, a few near 50).
    n_found = min(int(rng.lognormvariate(1.8, 0.55)) + 2, 40)
    found = [p(_GENERIC, 1, 4) for _ in range(n_found)]
    upheld = spec.outcome == "Upheld"
    analysis = [p(_FOUND_FAULT if upheld else _FOUND_NO_FAULT, 1, 3) for _ in range(rng.randint(2, 5))]
    sections = [("The complaint", complaint), ("The Ombudsman's role and powers", role),
                ("How I considered this complaint", considered)]
    if rng.random() < 0.4:
        sections.append(("Law and guidance", [_fill(rng, "The law says councils must deal with {t} properly. ({law})",
                                                   person, topic) for _ in range(rng.randint(1, 3))]))
    sections += [("What I found", found), ("Analysis", analysis)]
    if upheld:
        sections.append(("Agreed action", [_fill(rng, t, person, topic)
                                           for t in rng.sample(_ACTION, rng.randint(2, 4))]))
        final = "I have completed my investigation. There was fault by the Council which caused injustice. " \
                "The action the Council has agreed to take is enough to remedy that injustice."
    else:
        final = "I have completed my investigation. I do not find fault by the Council."
    sections.append(("Final decision", [final]))
    return sections


def _summary(rng: random.Random, spec: SynthSpec, person: str, topic: tuple) -> str:
    what = f"{person} complained the Council {rng.choice(topic[3])} in relation to {rng.choice(topic[2])}."
    if spec.outcome == "Upheld":
        return f"{what} The Council was at fault. It has agreed to apologise and pay {person} a financial remedy."
    if spec.outcome == "Not upheld":
        return f"{what} We found no fault in how the Council dealt with the matter."
    return f"We will not investigate {person}'s complaint about {rng.choice(topic[2])}. " \
           "There is another body better placed to consider it."


def spec_for(index: int, seed: int) -> SynthSpec:
    """The metadata of decision number index for this seed (independent of how many are written)."""
    rng = random.Random(f"{seed}:{index}:spec")
    cat, sub, _, _ = rng.choice(_TOPICS)
    date = dt.date(2018, 1, 1) + dt.timedelta(days=rng.randint(0, 7 * 365))
    return SynthSpec(index, case_number(index, seed), _council(rng), cat, sub, _outcome(rng), date)


def render(index: int, seed: int) -> str:
    """The full text of synthetic decision number index, in the published plain-text layout."""
    spec = spec_for(index, seed)
    rng = random.Random(f"{seed}:{index}:text")
    topic = next(t for t in _TOPICS if (t[0], t[1]) == (spec.category, spec.subcategory))
    person = rng.choice(_PEOPLE)
    numbered = rng.random() < 0.25  # the web export's "  1." lists and blank lines, as in some samples
    gap = "\n" if numbered else ""
    lines = [SYNTHETIC_MARK, f"{spec.authority} ({spec.case_number})", gap,
             f"Category : {spec.category} > {spec.subcategory}", gap, f"Decision : {spec.outcome}", gap,
             f"Decision date : {spec.date.day} {spec.date.strftime('%b %Y')}", gap,
             "The Ombudsman's final decision:", gap, f"Summary: {_summary(rng, spec, person, topic)}", gap]
    for name, paragraphs in _sections(rng, spec, person, topic):
        lines.append(name)
        lines.append(gap)
        for i, para in enumerate(paragraphs, start=1):
            lines.append(f"  {i}. {para}" if numbered else f"- {para}")
        if numbered:
            lines += ["", "Back to top", ""]
    lines.append("Investigator's decision on behalf of the Ombudsman")
    return "\n".join(line for line in lines if line != "" or numbered).rstrip() + "\n"


def iter_files(n: int, seed: int) -> Iterator[tuple[str, str]]:
    """(file name, text) for decisions 0..n-1."""
    for i in range(n):
        yield f"synth_{seed}_{i:06d}.txt", render(i, seed)


def write_corpus(n: int, out: Path, seed: int = 0) -> list[Path]:
    """Write n synthetic decisions into out (created if needed); returns the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in iter_files(n, seed):
        path = out / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def main(argv: list[str] | None = None, prog: str = "python -m bench synth") -> int:
    """Entry point."""
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, required=True, help="how many decisions to write")
    p.add_argument("--out", type=Path, required=True, help="folder to write them into")
    p.add_argument("--seed", type=int, default=0, help="same seed, same files (default 0)")
    args = p.parse_args(argv)
    if not 0 < args.n <= 1_000_000:
        p.error(f"--n {args.n}: give 1 to 1000000")
    paths = write_corpus(args.n, args.out, args.seed)
    print(f"wrote {len(paths)} SYNTHETIC decisions (benchmark only) to {args.out}")
    return 0

