"""RadRScore without a model: findings matched between a model's reasoning, the reference, the report.

The ChestX-Reasoner paper scores reasoning with an LLM judge in three parts, and so does this
module, offline, with `cxr.labeler` turning text into findings (observation + status):

- **completeness**: the share of the reference findings that the model's reasoning recalls
  (same observation, compatible status);
- **factuality**: the share of the model's findings that the report supports or does not
  contradict. As in the paper's judge, the report's silence about an abnormality implies it is
  normal: a finding the report never mentions is factual when absent, and *invented* (not
  factual) when the model calls it present or possible;
- **effectiveness**: the share of the model's reasoning steps that the reference supports. A step
  that asserts findings is effective when the reference supports one of them and contradicts
  none; a step asserting findings the reference never discusses is ineffective. A step that
  asserts nothing ("Next, examine the costophrenic angles for blunting") is effective when it
  examines an observation the reference discusses and ineffective when it examines only others
  (the reference does not support it); filler that names no observation at all ("The image is
  labelled AP") is left out of the count, neither helping nor hurting (counting it as
  ineffective agreed less with the paper's judge on its released outputs). A step whose findings the
  reference never discusses is judged by the report instead (effective when the report supports
  it), as the paper's judge credits true statements beyond the chain;
- **radrscore**: the mean of the three.

The paper's judge reads findings at a finer grain than the labeler's observations ("ET tube 4 cm
above the carina", "opacity in the right upper lobe"). Three things bring the offline judge
closer: a positive finding placed on the other side or zone than its evidence ("left effusion"
for a right one, upper for lower) is contradicted, not supported; a step that is only a heading
("Pleural Effusion", as markdown lists split them off) names a topic and asserts nothing; and,
given the reference chain's text (``reference_steps=``), completeness blends in the share of the
chain's content words the model uses and factuality the share of its asserting steps' words that
the report or chain use (nothing for a step whose findings are wrong), with weights chosen on
half of the RadRBench-CXR dev cases and checked on the other half (bench/score_agreement.py).
`RadRScore.parts` says what each component is made of: ``{"shares": {...}, "weights": {...}}``,
the component being the weighted sum of the shares ("findings", "words"), so a reader can
recompute every number from the output (without reference text the findings weigh 1.0).

Measured on the tuning half and not kept: IDF-weighted word shares (IDF from the reports or
chains scored), recall of adjacent content-word pairs ("upper lobe", "tube carina"; it raised
completeness but lowered RadRScore on the held-out half), grouping steps into larger units for
effectiveness, judging factuality against the reference chain instead of the report, leaving
hedged ("possible X") findings out of factuality, and half credit for findings the report
never mentions.

Edge cases: no reference findings gives completeness 1.0 (nothing to miss); a model that states no
findings gets factuality 0.0 (nothing verifiable; ``no_findings_factuality=`` changes it for an
output that says something) unless the reference and the report have none either (1.0); no counted steps gives effectiveness 0.0. A
reference "No Finding" only sums up the others (exports always add it): it is used to judge
factuality, never counted as a finding to recall. The model's final answer states findings too
(`answer_findings`), passed as ``answer=``.

Statuses are compatible when equal, or when one is present and the other uncertain ("possible
effusion" recalls "effusion"); absent against present or uncertain contradicts.

Sentences that describe what to look for rather than what is seen ("To determine whether there is
a pneumothorax, look for a pleural line", "Cardiomegaly is typically assessed by the CTR") assert
no finding: they only name observations (their *topics*). Everything is pure Python, cached per
text (reports and references repeat across models and samples); the labeler's per-sentence cost
is nearly all of the time: about 300 predictions a second on one core, cold.

>>> ref = findings_from_text("Small left pleural effusion. No pneumothorax.")
>>> score = score_reasoning(["There is a left effusion.", "There is a pneumothorax."], ref)
>>> score.completeness, score.factuality, [f.observation for f in score.contradicted]
(0.5, 0.5, ['Pneumothorax'])
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final

from cxr.labeler import ABSENT, PRESENT, UNCERTAIN, label_report
from cxr.output import named_observations
from cxr.questions import parse_answer, parse_question
from cxr.text import split_sentences
from cxr.vocabulary import NO_FINDING, OBSERVATIONS, canonical

STATUSES: Final = (PRESENT, ABSENT, UNCERTAIN)
_SIDES: Final = ("left", "right", "bilateral")
# Other spellings of a status met in judge outputs and hand-written fixtures.
_STATUS_ALIASES: Final = {
    "positive": PRESENT,
    "yes": PRESENT,
    "true": PRESENT,
    "1": PRESENT,
    "negative": ABSENT,
    "no": ABSENT,
    "not present": ABSENT,
    "false": ABSENT,
    "0": ABSENT,
    "possible": UNCERTAIN,
    "-1": UNCERTAIN,
}
_CACHE_SIZE: Final = 1 << 16  # texts labelled once per process: reports repeat across models


@dataclass(frozen=True)
class KeyFinding:
    observation: str  # canonical name from cxr.vocabulary
    status: str  # present | absent | uncertain
    # left | right | bilateral when the text says; not part of a finding's identity.
    laterality: str | None = field(default=None, compare=False, repr=False)
    zone: str | None = field(default=None, compare=False, repr=False)  # upper | lower, if said

    def as_dict(self) -> dict[str, str]:
        return {"observation": self.observation, "status": self.status}

    @classmethod
    def coerce(cls, value: KeyFinding | Mapping[str, object]) -> KeyFinding:
        """A KeyFinding from itself or a ``{"observation", "status"}`` mapping (extra keys ignored).

        Raises ValueError for a status that is not present/absent/uncertain (or a usual alias);
        an observation outside the vocabulary is kept as given (it then matches nothing).
        """
        if isinstance(value, KeyFinding):
            return value
        observation = str(value.get("observation", "")).strip()
        status = str(value.get("status", "")).strip().lower()
        status = _STATUS_ALIASES.get(status, status)
        if status not in STATUSES:
            raise ValueError(
                f"finding {dict(value)!r}: status must be one of {', '.join(STATUSES)}"
            )
        try:
            observation = canonical(observation)
        except KeyError:
            pass
        side = value.get("laterality")
        return cls(observation, status, str(side) if side in _SIDES else None)


@dataclass(frozen=True)
class RadRScore:
    factuality: float
    completeness: float
    effectiveness: float
    radrscore: float
    matched: list[KeyFinding]  # reference findings the reasoning recalls
    missed: list[KeyFinding]  # reference findings it does not
    contradicted: list[KeyFinding]  # the model's findings that the report (or reference) denies
    invented: list[KeyFinding]  # the model's abnormal findings that nothing mentions
    model_findings: list[KeyFinding] = field(default_factory=list)
    # One per model step: effective, ineffective, or None for a step left out (filler).
    effective_steps: list[bool | None] = field(default_factory=list)
    # What each component is made of: {"findings": share, "wording": share or None, "weight":
    # w}, the component being (1 - w) * findings + w * wording (just findings without wording).
    parts: dict[str, dict[str, float | None]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "factuality": self.factuality,
            "completeness": self.completeness,
            "effectiveness": self.effectiveness,
            "radrscore": self.radrscore,
            "matched": [f.as_dict() for f in self.matched],
            "missed": [f.as_dict() for f in self.missed],
            "contradicted": [f.as_dict() for f in self.contradicted],
            "invented": [f.as_dict() for f in self.invented],
            "model_findings": [f.as_dict() for f in self.model_findings],
            "effective_steps": list(self.effective_steps),
            "parts": {name: dict(part) for name, part in self.parts.items()},
        }


# --- text to findings ------------------------------------------------------------------------
#
# A step is read clause by clause. A clause that says what to look for, what a sign generally
# means or what would follow if ("Pneumothorax would appear as a pleural line", "To assess for
# cardiomegaly, measure the CTR") asserts nothing: it only names its observations (topics). Other
# clauses are labelled after rewording the denials that reasoning chains use and reports rarely
# do ("which rules out cardiomegaly" -> "which no cardiomegaly"); "it is not diagnosed" denies the
# one observation the sentence is about.

_CLAUSE_BREAK: Final = re.compile(
    r"(?i);|:\s|,?\s+\b(?:but|however|hence|thus|therefore|whereas|while|although|though|so)\b,?"
)
# Clauses that open on a condition or a plan: never an observation of this film.
_CONDITIONAL_START: Final = re.compile(
    r"^\W*(?:if|when|once|whether|unless|to (?:determine|assess|evaluate|identify|check|diagnose|"
    r"rule out|confirm|look|detect|answer|find|see)|in (?:the )?cases? of|for example|"
    r"in order to)\b"
)
# Generic statements: definitions, what signs usually mean, what to look for.
_GENERIC: Final = re.compile(
    r"\b(?:whether|would|typically|usually|generally|commonly|classically|normally|often|"
    r"frequently|refers? to|defined as|(?:is|are) (?:a|an) (?:condition|term|sign|common|"
    r"abnormal (?:collection|accumulation))|occurs? when|characteri[sz]ed by|"
    r"(?:presents?|appears?|manifests?|shows? up|is seen|are seen|is visible|are visible) as|"
    r"can (?:appear|present|be (?:seen|identified|caused|assessed|detected|recognized)|cause|"
    r"indicate|suggest|lead|result|manifest|show)|may (?:appear|present|manifest)|"
    r"(?:look|looking|check|checking|search|searching|assess|assessing|evaluate|evaluating|"
    r"screen|screening|examine|examining|inspect|inspecting) for|e\.g\.|signs? (?:of \w+ )?"
    r"(?:include|would)|is (?:assessed|evaluated|measured|diagnosed|identified|determined) by|"
    r"we need to|need to be|should be|requires?|involves?|helps?)\b"
)
# A clause that says what the reader will do next: "Next, we evaluate the support devices."
_PROCEDURE_START: Final = re.compile(
    r"^\W*(?:(?:first|firstly|second|next|then|finally|now|additionally|also|lastly|initially|"
    r"subsequently|afterwards?)\b,?\s*)*(?:(?:we|i|let's|let us)\s+)?(?:(?:need|have|want|will|"
    r"should|must|can|shall)\s+(?:to\s+)?)?(?:assess|evaluate|examine|inspect|check|look|"
    r"analy[sz]e|review|identify|consider|determine|begin|start|measure|compare|verify|ensure|"
    r"focus|scan|search|move|turn|proceed)\w*\b"
)
# Wording that reports what this film shows: it outweighs procedural wording, not generic one
# unless anchored to the image ("in this X-ray").
_ASSERTS: Final = re.compile(
    r"\b(?:there (?:is|are|was|were)|shows?|showed|showing|reveal\w*|demonstrat\w*|display\w*|"
    r"(?:is|are|was|were) (?:seen|noted|visible|present|evident|observed|identified|absent|"
    r"unremarkable|normal|clear|enlarged|intact)|appears?|appearing|no|absence of|lack of|"
    r"without|confirm\w*|consistent with|finding\w* (?:of|is|are))\b"
)
_ANCHORED: Final = re.compile(
    r"\b(?:in this (?:image|x-ray|case|film|study|radiograph|patient)|(?:the|this) (?:x-ray|image|"
    r"film|radiograph|study) (?:shows|reveals|demonstrates|displays)|here|(?:is|are|was|were) "
    r"(?:seen|noted|observed|identified) (?:in|on)|(?:no|not) \w+ (?:is|are) (?:seen|noted|"
    r"observed))\b"
)
_WORDS: Final = re.compile(r"[a-z]{3,}")


def _asserts(clause: str) -> bool:
    """Whether a clause reports what is seen, rather than what to look for or what X means."""
    lowered = clause.lower()
    if _CONDITIONAL_START.search(lowered):
        return False
    if _GENERIC.search(lowered):
        return bool(_ANCHORED.search(lowered))
    if _PROCEDURE_START.search(lowered):
        return bool(_ASSERTS.search(lowered))
    return True


# Denials in the reasoning's own words, rewritten into the labeler's (order matters: "is ruled
# out" is a denial after its subject, "rules out X" one before its object).
_REASONING_NEGATIONS: Final = (
    (re.compile(r"(?i)\b(is|are|was|were|does|do|did|has|have|can|could)n't\b"), r"\1 not"),
    (
        re.compile(
            r"(?i)\b(?:is|are|was|were|be|been|remains?)(?: (?:therefore|thus|also|hence|then))? "
            r"(?:not (?:(?:strongly|clearly|explicitly|definitively|definitely|significantly|"
            r"convincingly|specifically|directly) )?(?:indicated|diagnosed|supported|suggested|"
            r"confirmed|likely|present|there|seen|visible|evident|observed|identified|noted|"
            r"apparent|detected|demonstrated|appreciated|shown|included|a (?:feature|finding|"
            r"concern))|unlikely|excluded|ruled out|eliminated|absent|not the case)\b"
        ),
        " is not seen ",
    ),
    (
        re.compile(
            r"(?i)\b(?:rul(?:es|ing|ed) out|exclud(?:es|ing|ed)|eliminat\w+|argu\w+ against|"
            r"negat(?:es|ing)|(?:there is |with )?no (?:support|basis|indication|need) for|"
            r"not (?:indicative|suggestive|consistent|compatible|characteristic)(?: of| with)?|"
            r"inconsistent with|(?:does|do|did) not (?:suggest|indicate|support|show|reveal|"
            r"demonstrate|confirm|meet|point to|exhibit|display|have|include)|"
            r"lack(?:s|ing)?(?: of)?|absence of|free (?:from|of)|devoid of)"
            r"(?: (?:the|any|a|an|signs? of|evidence of|features? of|presence of|possibility of|"
            r"diagnosis of|findings? of|indications? of|significant|obvious|apparent))*\b"
        ),
        " no ",
    ),
)
# Whether a denial wording occurs at all: most clauses are left alone without running the above.
_DENIAL_HINT: Final = re.compile(
    r"(?i)rul|exclud|elimin|against|negat|support|basis|indicat|not|n't|lack|absen|free|devoid|"
    r"inconsistent|unlikely"
)
# "it is not diagnosed", "hence this is excluded": a denial with no observation of its own.
_PRONOUN_DENIAL: Final = re.compile(
    r"(?i)\b(?:it|this|they|these|such (?:changes|findings|features|signs))\b.*\b(?:is|are) not seen\b"
    r"|\bno such\b"
)


# For ASCII text, substrings one of which every match of `_DENIAL_HINT` (and of each rewording
# in `_REASONING_NEGATIONS`) contains: cheap tests that skip the case-insensitive patterns.
_DENIAL_HINT_WORDS: Final = (
    "rul",
    "exclud",
    "elimin",
    "against",
    "negat",
    "support",
    "basis",
    "indicat",
    "not",
    "n't",
    "lack",
    "absen",
    "free",
    "devoid",
    "inconsistent",
    "unlikely",
)
_REWORDING_WORDS: Final = (
    ("n't",),
    ("not", "unlikely", "excluded", "ruled out", "eliminated", "absent"),
    (
        "rul",
        "exclud",
        "eliminat",
        "argu",
        "negat",
        "no",
        "inconsistent",
        "lack",
        "absence",
        "free",
        "devoid",
    ),
)


def _reword(clause: str) -> str:
    if not clause.isascii():
        if not _DENIAL_HINT.search(clause):
            return clause
        for pattern, replacement in _REASONING_NEGATIONS:
            clause = pattern.sub(replacement, clause)
        return clause
    lowered = clause.lower()
    if not any(word in lowered for word in _DENIAL_HINT_WORDS):
        return clause
    for (pattern, replacement), words in zip(_REASONING_NEGATIONS, _REWORDING_WORDS):
        if any(word in lowered for word in words):
            reworded = pattern.sub(replacement, clause)
            if reworded != clause:
                clause, lowered = reworded, reworded.lower()
    return clause


_UPPER: Final = re.compile(r"upper|apex|apices|apical|suprahilar")
_LOWER: Final = re.compile(
    r"lower|base|basilar|basal|retrocardiac|infrahilar|costophrenic|subpulmonic"
)


def _zone(location: str | None) -> str | None:
    """The lung zone a labeler location names: upper, lower, or None (mid, hilar, unstated)."""
    if not location:
        return None
    if _UPPER.search(location):
        return "upper"
    return "lower" if _LOWER.search(location) else None


@lru_cache(maxsize=_CACHE_SIZE)
def _labelled(text: str) -> tuple[KeyFinding, ...]:
    """Findings the labeler reads in `text`, without the "No Finding" it only implies.

    Findings of a more specific observation (an endotracheal tube, a rib fracture, a nodule) are
    kept as their parent's (support devices, fracture, lung lesion), which the labeler reports
    beside them: key findings stay at the level the reference chains and questions use.
    """
    found = []
    for finding in label_report(text):
        if finding.observation == NO_FINDING and (
            finding.span is None or finding.status != PRESENT
        ):
            continue  # implied by the absence (or presence) of everything else, never stated
        if OBSERVATIONS[finding.observation].parent is not None:
            continue
        found.append(
            KeyFinding(
                finding.observation, finding.status, finding.laterality, _zone(finding.location)
            )
        )
    return tuple(found)


@dataclass(frozen=True)
class _StepReading:
    findings: tuple[KeyFinding, ...]  # what the step asserts
    topics: frozenset[str]  # every observation it names, asserted or not


# "Cardiomegaly: the heart appears enlarged": a heading that names the topic, not a finding.
_HEADING: Final = re.compile(r"^\s*(?:option\s+[a-z][.):]?\s*)?([^:.\n]{1,48}):\s+(?=\S)", re.I)
# A trailing clause that says what a sign generally means: "..., which would indicate effusion".
_GENERIC_CLAUSE: Final = re.compile(
    r"(?i),?\s*\b(?:which|that|as|since|because|and)\b[^,.;]*?\b(?:would|could|can|typically|"
    r"usually|generally|often|commonly|classically)\b[^.;]*"
)


_SENTENCE_END: Final = re.compile(r"[.!?;]\s+\S|\n")  # more than one sentence, perhaps
# A step that is only a heading ("Pleural Effusion", "Lung Lesion and Pneumonia:"), as markdown
# lists split them off their paragraph: a topic, never a finding. A few words, no verb, no status.
_BARE_HEADING: Final = re.compile(r"[\w\s,()&/'-]+:?")
_STATUS_WORD: Final = re.compile(
    r"(?i)\b(?:no|not|without|none|negative|positive|present|absent|seen|noted|visible|evident|"
    r"identified|normal|abnormal|clear|unremarkable|intact|stable|unchanged|is|are|was|were|"
    r"shows?|reveals?|likely|unlikely|possible|probable|suspected|suggest\w*|consistent|yes)\b"
)


@lru_cache(maxsize=_CACHE_SIZE)
def _read_step(step: str) -> _StepReading:
    findings: list[KeyFinding] = []
    topics: set[str] = set()
    if (
        len(step) < 80
        and len(step.split()) <= 8
        and _BARE_HEADING.fullmatch(step.strip())
        and not _STATUS_WORD.search(step)
    ):
        return _StepReading((), frozenset(f.observation for f in _labelled(step)))
    for sentence in split_sentences(step) if _SENTENCE_END.search(step) else [step]:
        heading = _HEADING.match(sentence)
        if heading:
            topics.update(f.observation for f in _labelled(heading.group(1)))
            sentence = sentence[heading.end() :]
        named = _labelled(_reword(sentence))  # one labeler call for the common case
        about = {f.observation for f in named} or (topics if heading else set())
        topics.update(about)
        clauses = [c for c in _CLAUSE_BREAK.split(sentence) if _WORDS.search(c.lower())]
        asserting = [_asserts(clause) for clause in clauses]
        if named and all(asserting) and not _GENERIC_CLAUSE.search(sentence):
            asserted: tuple[KeyFinding, ...] = named
        else:
            asserted = ()
            for clause, asserts in zip(clauses, asserting):
                if not asserts:
                    continue
                reworded = _reword(clause)
                found = _labelled(_GENERIC_CLAUSE.sub("", reworded)) if named else ()
                if not found and len(about) == 1 and _PRONOUN_DENIAL.search(reworded):
                    found = (KeyFinding(next(iter(about)), ABSENT),)  # "it is not diagnosed"
                asserted += found
        findings.extend(f for f in asserted if f not in findings)
    return _StepReading(tuple(findings), frozenset(topics))


def findings_from_text(text: str) -> list[KeyFinding]:
    """The findings a report (or any free text) states, one per observation.

    >>> findings_from_text("FINDINGS: No pneumothorax. Small left effusion.")
    [KeyFinding(observation='Pneumothorax', status='absent'), KeyFinding(observation='Pleural Effusion', status='present')]
    """
    return list(_labelled(text or ""))


def findings_from_steps(steps: Iterable[str]) -> list[KeyFinding]:
    """The findings a reasoning chain asserts, in order, each (observation, status) once.

    Sentences that only say what to look for assert nothing. A chain that states both
    "no opacity" and "opacity" keeps both: each is judged on its own.
    """
    found: dict[KeyFinding, None] = {}
    for step in steps:
        for finding in _read_step(step).findings:
            found.setdefault(finding, None)
    return list(found)


# "Does this chest X-ray show X?" / "Which finding is in this chest X-ray?"
_SHOW_QUESTION: Final = re.compile(r"(?i)\bshow(?:s|ing)?\s+(?:any\s+)?(.+?)\s*\?")


# Questions and option texts repeat across a file's predictions: parse and label them once.
_question = lru_cache(maxsize=_CACHE_SIZE)(parse_question)
_named = lru_cache(maxsize=_CACHE_SIZE)(named_observations)


def answer_findings(question: str, answer: str | list[str]) -> list[KeyFinding]:
    """The findings an answer to a case question states.

    "Does this chest X-ray show X? A) Yes B) No": X present or absent. A choice of options: the
    chosen options' observations present and, when each option names one observation, the
    others absent. An open answer ("edema, effusion"): each listed observation present. Letters
    that name no option give nothing (the answer is wrong, not unreadable).

    >>> answer_findings("Does this chest X-ray show edema? Options:\\nA) Yes\\nB) No", "B")
    [KeyFinding(observation='Edema', status='absent')]
    """
    parsed = _question(question)
    if not parsed.options:
        text = answer if isinstance(answer, str) else ", ".join(answer)
        return [KeyFinding(o, PRESENT) for o in sorted(_named(text))]
    try:
        letters = set(parse_answer(answer, parsed.options)) if answer else set()
    except ValueError:
        return []
    texts = {option.key: option.text.strip() for option in parsed.options}
    if {text.lower() for text in texts.values()} == {"yes", "no"}:
        asked = _SHOW_QUESTION.search(parsed.stem)
        if not asked or len(letters) != 1:
            return []
        status = PRESENT if texts[letters.pop()].lower() == "yes" else ABSENT
        return [KeyFinding(o, status) for o in sorted(_named(asked.group(1)))]
    chosen = {o for key in letters for o in _named(texts[key])}
    found = [KeyFinding(o, PRESENT) for o in sorted(chosen)]
    named = {key: _named(text) for key, text in texts.items()}
    if letters and all(len(observations) == 1 for observations in named.values()):
        others = {o for key, obs in named.items() if key not in letters for o in obs} - chosen
        found += [KeyFinding(o, ABSENT) for o in sorted(others)]
    return found


# --- matching --------------------------------------------------------------------------------


def _positive(status: str) -> bool:
    return status != ABSENT


def compatible(a: str, b: str) -> bool:
    """Statuses that agree: equal, or present against uncertain."""
    return _positive(a) == _positive(b)


def _same_place(finding: KeyFinding, side: str | None, zone: str | None) -> bool:
    """Whether a finding's side and zone agree with another's: equal, unstated, or bilateral."""
    return {finding.laterality, side} != {"left", "right"} and {finding.zone, zone} != {
        "upper",
        "lower",
    }


class _Evidence:
    """What a text says about each observation: the set of statuses it gives it."""

    def __init__(self, findings: Iterable[KeyFinding]) -> None:
        findings = list(findings)
        self.statuses: dict[str, set[str]] = {}
        self.sides: dict[str, set[tuple[str | None, str | None]]] = {}  # where positives are
        for finding in findings:
            self.statuses.setdefault(finding.observation, set()).add(finding.status)
            if _positive(finding.status):
                self.sides.setdefault(finding.observation, set()).add(
                    (finding.laterality, finding.zone)
                )
        # "No Finding" is false as soon as anything abnormal is present or possible.
        self.abnormal = any(
            _positive(f.status)
            and f.observation in OBSERVATIONS
            and OBSERVATIONS[f.observation].abnormal
            for f in findings
        )

    def __bool__(self) -> bool:
        return bool(self.statuses)

    def mentions(self, observation: str) -> bool:
        return observation in self.statuses

    def verdict(self, finding: KeyFinding) -> str:
        """supported | contradicted | silent."""
        if finding.observation == NO_FINDING and self.abnormal:
            return "supported" if finding.status == ABSENT else "contradicted"
        given = self.statuses.get(finding.observation)
        if not given:
            return "silent"
        if any(compatible(finding.status, status) for status in given):
            if _positive(finding.status) and not any(
                _same_place(finding, side, zone) for side, zone in self.sides[finding.observation]
            ):
                return "contradicted"  # the other side: "left effusion" for a right one
            return "supported"
        return "contradicted"


def _ratio(numerator: float, denominator: int, *, empty: float) -> float:
    return numerator / denominator if denominator else empty


# --- wording -----------------------------------------------------------------------------------
#
# The paper's judge reads findings at the grain of the text ("endotracheal tube 4 cm above the
# carina", "low lung volumes", "opacity in the right lower lobe"), finer than the labeler's
# observations. Content words (stopwords, reasoning verbs and generic image words left out,
# plurals folded) carry that grain: their recall and precision complement the findings'.
_STOPWORDS: Final = frozenset(
    """a an the and or of in on at to for with without by from as is are was were be been being
    this that these those it its there here which who whom what when where why how than then thus
    therefore hence so such also any all some no not x ray xray chest image images film films
    radiograph radiographs study shows show showing shown seen noted noting appears appear
    appearing evidence sign signs finding findings present presence absent absence observed
    observe observing indicate indicates indicating indicative suggest suggests suggesting
    suggestive consistent we let us our can could may might would should will must have has had
    do does did into within both more most less based step first next finally conclusion
    conclude answer option options determine assess evaluate examine look check identify
    typically often usually possible likely given visible clear clearly further additionally
    provided reveals reveal""".split()
)
_TOKEN: Final = re.compile(r"[a-z]+")


@lru_cache(maxsize=_CACHE_SIZE)
def _content_words(text: str) -> frozenset[str]:
    words = (w[:-1] if len(w) > 4 and w.endswith("s") else w for w in _TOKEN.findall(text.lower()))
    return frozenset(w for w in words if len(w) > 2 and w not in _STOPWORDS)


def _words_of(texts: Iterable[str]) -> frozenset[str]:
    return frozenset().union(*(_content_words(t) for t in texts if t))


def _share(wanted: frozenset, given: frozenset) -> float | None:
    """The share of `wanted` that `given` has; None when nothing is wanted."""
    return len(wanted & given) / len(wanted) if wanted else None


# What each component is made of, weights chosen on half of the RadRBench-CXR dev cases
# (bench/score_agreement.py) and checked on the other half. Completeness: the share of reference
# findings recalled and of the chain's content words used (words' weight from 0.3 / 0.5 / 0.7).
COMPLETENESS_WEIGHTS: Final = {"findings": 0.3, "words": 0.7}
# Factuality: the share of the model's findings the report supports, of its asserting steps'
# words that the report or the chain use (chosen from 0.3 / 0.5 / 0.7).
FACTUALITY_WEIGHTS: Final = {"findings": 0.5, "words": 0.5}


def _combine(
    shares: dict[str, float | None], weights: dict[str, float]
) -> tuple[float, dict[str, dict[str, float]]]:
    """A component as the weighted sum of its shares, with the parts that explain it.

    A share that cannot be measured (None: no reference text for the wording) gives its weight
    to the findings. The component is ``sum(weights[k] * shares[k])`` over the returned parts.
    """
    weights = dict(weights)
    for name, share in shares.items():
        if share is None and name != "findings":
            weights["findings"] += weights.pop(name)
    kept = {name: share for name, share in shares.items() if name in weights}
    value = sum(weights[name] * share for name, share in kept.items())  # type: ignore[operator]
    return value, {"shares": kept, "weights": weights}  # type: ignore[dict-item]


# What the offline judge gives a model that asserts no finding while the reference or the report
# does: the paper's judge, reading such outputs' topics, gives them about half.
JUDGE_NO_FINDINGS_FACTUALITY: Final = 0.5


def judge_output(
    steps: list[str],
    reference_findings: Sequence[KeyFinding | Mapping[str, object]],
    *,
    question: str,
    letters: Sequence[str] = (),
    answer_text: str = "",
    report: str | None = None,
    reference_steps: Sequence[str] = (),
) -> RadRScore:
    """The offline judge's RadRScore of one parsed model output: one setting for every caller.

    `python -m inference score` and the workbench's prediction import both call this, so a
    prediction scores the same whichever way it came in. The final answer's findings come from
    its `letters` (else its `answer_text`) read against `question`; the reference chain's text
    (`reference_steps`) weighs the wording; a model asserting nothing gets
    `JUDGE_NO_FINDINGS_FACTUALITY`. Rewards (`training.rewards`) call `score_reasoning` directly,
    where silence must earn nothing.
    """
    stated = answer_findings(question, list(letters) or answer_text)
    return score_reasoning(
        steps,
        reference_findings,
        report=report or None,
        answer=stated,
        reference_steps=reference_steps,
        answer_text=answer_text,
        no_findings_factuality=JUDGE_NO_FINDINGS_FACTUALITY,
    )


def score_reasoning(
    pred_steps: list[str],
    reference_findings: Sequence[KeyFinding | Mapping[str, object]],
    *,
    report: str | None = None,
    answer: Sequence[KeyFinding | Mapping[str, object]] = (),
    reference_steps: Sequence[str] = (),
    answer_text: str = "",
    no_findings_factuality: float = 0.0,
) -> RadRScore:
    """Score a model's reasoning steps against the reference findings and the report.

    `reference_findings` are the verified chain's findings (`findings_from_steps`, plus
    `answer_findings` of the gold answer) or the ``reference_findings`` column of a `grpo` export
    (dicts). `answer` adds the findings the model's final answer states (`answer_findings` of
    its parsed answer): its conclusion is a key finding even when no step words it. Without a
    report, factuality is judged against the reference findings. See the module docstring.

    With `reference_steps` (the reference chain's text), completeness and factuality also weigh
    the wording, at the grain of the paper's judge: completeness blends in the share of the
    chain's content words that the model's steps and `answer_text` use; factuality the share of
    the words of the model's asserting steps that the report or the chain use.
    `no_findings_factuality` is the factuality of a model that asserts nothing while the
    reference or the report does: 0.0 by default (a reward must not pay for silence); the offline
    judge passes 0.5, as the paper's judge, reading such outputs' topics, gives them about that.
    """
    reference = list(dict.fromkeys(KeyFinding.coerce(f) for f in reference_findings))
    steps = [step for step in pred_steps if step and step.strip()]
    readings = [_read_step(step) for step in steps]
    model = findings_from_steps(steps)
    model += [f for f in (KeyFinding.coerce(a) for a in answer) if f not in model]
    reference_words = _words_of(reference_steps)

    # Completeness: reference findings that the model's findings recall. "No Finding" in the
    # reference only sums up the others (exports always add it): it is not one to recall.
    spoken = _Evidence(model)
    to_recall = [f for f in reference if f.observation != NO_FINDING]
    matched = [f for f in to_recall if spoken.verdict(f) == "supported"]
    missed = [f for f in to_recall if f not in matched]
    recalled = _ratio(len(matched), len(to_recall), empty=1.0)
    completeness, completeness_part = _combine(
        {"findings": recalled, "words": _share(reference_words, _words_of([*steps, answer_text]))},
        COMPLETENESS_WEIGHTS,
    )

    # Factuality: the model's findings against the report (else the reference).
    facts = _Evidence(findings_from_text(report)) if report else _Evidence(reference)
    contradicted: list[KeyFinding] = []
    invented: list[KeyFinding] = []
    for finding in model:
        verdict = facts.verdict(finding)
        if verdict == "contradicted":
            contradicted.append(finding)
        elif verdict == "silent" and _positive(finding.status):
            invented.append(finding)
    factual = len(model) - len(contradicted) - len(invented)
    empty = (no_findings_factuality if steps else 0.0) if (reference or facts) else 1.0
    supported_share = _ratio(factual, len(model), empty=empty)
    # The wording of the steps that assert findings: the share of their words that the report or
    # the chain use, nothing for a step whose findings the report denies or never mentions.
    wrong = set(contradicted) | set(invented)
    shares = [
        0.0 if wrong.intersection(reading.findings) else len(words & known) / len(words)
        for known in [reference_words | _content_words(report or "")]
        for step, reading in zip(steps, readings)
        if reading.findings and (words := _content_words(step))
    ]
    wording = sum(shares) / len(shares) if reference_words and shares else None
    factuality, factuality_part = _combine(
        {"findings": supported_share, "words": wording}, FACTUALITY_WEIGHTS
    )

    # Effectiveness: steps that the reference supports. A step that asserts nothing counts when
    # it examines an observation the reference discusses (else not); filler, which names no
    # observation, is left out of the count.
    supports = _Evidence(reference)
    discussed = set(supports.statuses)
    flags: list[bool | None] = []
    for reading in readings:
        if reading.findings:
            verdicts = {supports.verdict(f) for f in reading.findings}
            if verdicts == {"silent"}:  # nothing the reference discusses: ask the report
                verdicts = {facts.verdict(f) for f in reading.findings}
            flags.append("supported" in verdicts and "contradicted" not in verdicts)
        else:
            flags.append(bool(reading.topics & discussed) if reading.topics else None)
    counted = [flag for flag in flags if flag is not None]
    effectiveness, effectiveness_part = _combine(
        {"findings": _ratio(sum(counted), len(counted), empty=0.0)}, {"findings": 1.0}
    )

    return RadRScore(
        factuality=factuality,
        completeness=completeness,
        effectiveness=effectiveness,
        radrscore=(factuality + completeness + effectiveness) / 3,
        matched=matched,
        missed=missed,
        contradicted=contradicted,
        invented=invented,
        model_findings=model,
        effective_steps=flags,
        parts={
            "factuality": factuality_part,
            "completeness": completeness_part,
            "effectiveness": effectiveness_part,
        },
    )
