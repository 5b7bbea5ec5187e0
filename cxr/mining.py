"""Questions and step-by-step reasoning chains mined from report labels (pure Python).

The paper's recipe (ChestX-Reasoner): label what a report says about each observation, build
questions from those labels, then write a chain that examines what the question needs and
concludes. Labels come from the findings labeler (`labels_from_report`) or from a labels file the
user already has (`labels_from_row`: MIMIC-CXR/CheXpert-style 1, 0, -1 or blank per observation;
MS-CXR-T-style ``<observation>_progression`` columns for temporal pairs).

    labels = labels_from_report(report)
    built = build_cases(labels, tasks=("binary", "single"), seed=0, key="s123")
    built.cases[0].to_record()   # RadRBench-shaped, plus per-step finding and evidence

Task types (the paper's): binary ("Does this chest X-ray show X?" Yes/No), single choice (one
present and three absent options), multiple choice (four sets of findings, one of them exactly
the present ones), open multi-finding (no options) and temporal progression (improving, stable,
worsening, from a current and a prior report of one patient).

Chains follow the radiologist's route: a planning step, one step per option or observation
(what to look at, what is seen, what it means), and a concluding step naming the answer. What
is seen comes from the report's evidence sentence; an observation the report does not mention is
read as normal (the paper's rule), with the sentence that says the region is normal ("the lungs
are clear") as evidence when there is one. Every step carries its structured finding and a link
to the evidence (`report[start:end] == text`). Several wordings per step kind are chosen by a
seeded random generator, so the same input and seed always give the same cases and chains while
a model trained on many of them does not learn one sentence.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from string import ascii_uppercase
from typing import Any, Final

from cxr.labeler import ABSENT, PRESENT, UNCERTAIN, Finding, label_report
from cxr.sections import FINDINGS, IMPRESSION, section_spans
from cxr.text import sentence_spans
from cxr.vocabulary import (
    ATELECTASIS,
    CARDIOMEGALY,
    CHEXPERT,
    CONSOLIDATION,
    EDEMA,
    ENLARGED_CARDIOMEDIASTINUM,
    FRACTURE,
    LUNG_LESION,
    LUNG_OPACITY,
    NO_FINDING,
    OBSERVATIONS,
    PLEURAL_EFFUSION,
    PLEURAL_OTHER,
    PNEUMONIA,
    PNEUMOTHORAX,
    SUPPORT_DEVICES,
    canonical,
)

BINARY: Final = "binary"
SINGLE: Final = "single"
MULTI: Final = "multi"
OPEN: Final = "open"
TEMPORAL: Final = "temporal"
TASKS: Final = (BINARY, SINGLE, MULTI, OPEN, TEMPORAL)

CURRENT: Final = "current"
PRIOR: Final = "prior"

IMPROVING: Final = "improving"
STABLE: Final = "stable"
WORSENING: Final = "worsening"
PROGRESSIONS: Final = (IMPROVING, STABLE, WORSENING)

# Observations that questions ask about: CheXpert's, without "No Finding" (which only appears as
# a single-choice option, as in RadRBench).
OPTION_OBSERVATIONS: Final = tuple(o for o in CHEXPERT if o != NO_FINDING)

# The radiologist's route through a film: devices, heart and mediastinum, lungs, pleura, bones.
ROUTE: Final = (
    SUPPORT_DEVICES,
    ENLARGED_CARDIOMEDIASTINUM,
    CARDIOMEGALY,
    LUNG_OPACITY,
    CONSOLIDATION,
    PNEUMONIA,
    ATELECTASIS,
    EDEMA,
    LUNG_LESION,
    PNEUMOTHORAX,
    PLEURAL_EFFUSION,
    PLEURAL_OTHER,
    FRACTURE,
    NO_FINDING,
)
_ROUTE_INDEX: Final = {name: index for index, name in enumerate(ROUTE)}

# CheXpert's label hierarchy: a present child implies its parents, so a parent the report does
# not mention is never offered as an absent option beside a present child (a consolidation is a
# lung opacity even when the report never says "opacity").
PARENTS: Final[dict[str, tuple[str, ...]]] = {
    CARDIOMEGALY: (ENLARGED_CARDIOMEDIASTINUM,),
    CONSOLIDATION: (LUNG_OPACITY,),
    PNEUMONIA: (CONSOLIDATION, LUNG_OPACITY),
    EDEMA: (LUNG_OPACITY,),
    ATELECTASIS: (LUNG_OPACITY,),
    LUNG_LESION: (LUNG_OPACITY,),
}

MULTI_MIN: Final = 2  # a multiple-choice question needs at least two present findings ...
MULTI_MAX: Final = 5  # ... and at most five, as in RadRBench's option sets


class LabelError(ValueError):
    """A labels-file value that is not 1, 0, -1, blank (or a known progression word)."""

    def __init__(self, column: str, reason: str) -> None:
        self.column = column
        super().__init__(reason)


# --- labels --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evidence:
    """A link to the sentence a step rests on: ``report_text[start:end] == text``."""

    report: str  # "current" or "prior"
    start: int
    end: int
    text: str

    def as_dict(self) -> dict[str, Any]:
        return {"report": self.report, "start": self.start, "end": self.end, "text": self.text}


@dataclass(frozen=True)
class Label:
    observation: str
    status: str  # present | absent | uncertain
    laterality: str | None = None
    location: str | None = None
    evidence: Evidence | None = None


@dataclass
class ReportLabels:
    """What one report says about each observation; unmentioned observations read as absent."""

    report: str
    labels: dict[str, Label]
    which: str = CURRENT  # which report of a case these labels describe
    origin: str = "labeler"  # or "labels file"
    _normal_sentences: list[tuple[int, int, str]] | None = field(default=None, repr=False)

    def status(self, observation: str) -> str:
        label = self.labels.get(observation)
        return label.status if label else ABSENT

    def mentioned(self, observation: str) -> bool:
        return observation in self.labels

    def present(self) -> list[str]:
        return [o for o in OPTION_OBSERVATIONS if self.status(o) == PRESENT]

    def implied(self) -> set[str]:
        """Parents of present or uncertain findings: never offered as absent."""
        return {
            parent
            for name, label in self.labels.items()
            if label.status != ABSENT
            for parent in PARENTS.get(name, ())
        }

    def evidence_for(self, observation: str) -> Evidence | None:
        """The sentence for an observation: the label's, else (when absent) a normal region."""
        label = self.labels.get(observation)
        if label is not None and label.evidence is not None:
            return label.evidence
        if self.status(observation) == ABSENT:
            return self._normal_evidence(observation)
        return None

    def _normal_evidence(self, observation: str) -> Evidence | None:
        region = _REGIONS.get(observation)
        if region is None:
            return None
        if self._normal_sentences is None:
            taken = {
                (label.evidence.start, label.evidence.end)
                for label in self.labels.values()
                if label.evidence is not None and label.status != ABSENT
            }
            self._normal_sentences = [
                (start, end, self.report[start:end].lower())
                for start, end in _image_sentences(self.report)
                if (start, end) not in taken
            ]
        for start, end, lowered in self._normal_sentences:
            if region.search(lowered) and _NORMAL.search(lowered) and not _EXCEPT.search(lowered):
                return Evidence(self.which, start, end, self.report[start:end])
        return None


def clean_report(text: str) -> str:
    """Report text as stored and offset: line breaks normalised (browsers turn CRLF into LF)."""
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def _image_sentences(report: str) -> list[tuple[int, int]]:
    spans = []
    for section, start, end in section_spans(report):
        if section in (FINDINGS, IMPRESSION):
            spans += [(start + s, start + e) for s, e in sentence_spans(report[start:end])]
    return spans


def labels_from_findings(
    report: str, findings: Iterable[Finding], which: str = CURRENT
) -> ReportLabels:
    labels = {}
    for finding in findings:
        evidence = None
        if finding.span is not None:
            start, end = finding.span
            evidence = Evidence(which, start, end, report[start:end])
        labels[finding.observation] = Label(
            finding.observation, finding.status, finding.laterality, finding.location, evidence
        )
    return ReportLabels(report, labels, which)


def labels_from_report(report: str, which: str = CURRENT) -> ReportLabels:
    """The findings labeler's view of a report (`report` should already be `clean_report`ed)."""
    return labels_from_findings(report, label_report(report), which)


_VALUES: Final = {"1": PRESENT, "0": ABSENT, "-1": UNCERTAIN}


def label_value(value: str | None, column: str = "") -> str | None:
    """A labels-file cell: 1 present, 0 absent, -1 uncertain, blank not mentioned (None)."""
    text = (value or "").strip()
    if text.lower() in ("", "nan", "none", "null"):
        return None
    if re.fullmatch(r"-?\d+\.0+", text):
        text = text.split(".")[0]
    if text not in _VALUES:
        raise LabelError(column, f"{column!r} is {value!r}: use 1, 0, -1 or leave it blank")
    return _VALUES[text]


def observation_columns(columns: Iterable[str]) -> dict[str, str]:
    """Label columns of a CSV header: column name -> canonical observation."""
    found = {}
    for column in columns:
        try:
            found[column] = canonical(column)
        except KeyError:
            continue
    return found


def progression_columns(columns: Iterable[str]) -> dict[str, str]:
    """MS-CXR-T-style columns ("pleural_effusion_progression") -> canonical observation."""
    found = {}
    for column in columns:
        match = re.fullmatch(r"(?i)\s*(.+?)[ _-]progression\s*", column or "")
        if match:
            try:
                observation = canonical(match.group(1))
            except KeyError:
                continue
            if observation in OPTION_OBSERVATIONS:  # questions are about CheXpert's findings
                found[column] = observation
    return found


def labels_from_row(report: str, row: Mapping[str, Any], which: str = CURRENT) -> ReportLabels:
    """Labels from a labels-file row; the labeler supplies evidence where it agrees.

    Blank cells are "not mentioned" (read as absent). Raises `LabelError` for a bad cell.
    """
    machine = {f.observation: f for f in label_report(report)} if report else {}
    labels = {}
    for column, observation in observation_columns(row).items():
        status = label_value(row.get(column), column)
        if status is None:
            continue
        evidence, laterality, location = None, None, None
        finding = machine.get(observation)
        if finding is not None and finding.status == status and finding.span is not None:
            start, end = finding.span
            evidence = Evidence(which, start, end, report[start:end])
            laterality, location = finding.laterality, finding.location
        labels[observation] = Label(observation, status, laterality, location, evidence)
    if NO_FINDING not in labels:
        # Files without a "No Finding" column: normal exactly when nothing abnormal is labelled.
        abnormal = any(
            OBSERVATIONS[name].abnormal and label.status != ABSENT for name, label in labels.items()
        )
        labels[NO_FINDING] = Label(NO_FINDING, ABSENT if abnormal else PRESENT)
    return ReportLabels(report, labels, which, origin="labels file")


def progression_from_row(row: Mapping[str, Any]) -> dict[str, str]:
    """Observation -> improving/stable/worsening from a row's progression columns."""
    found = {}
    for column, observation in progression_columns(row).items():
        value = str(row.get(column) or "").strip().lower()
        if not value or value in ("nan", "none"):
            continue
        if value not in PROGRESSIONS:
            raise LabelError(column, f"{column!r} is {value!r}: use improving, stable or worsening")
        found[observation] = value
    return found


_IMPROVING: Final = re.compile(
    r"\b(?:improv\w*|decreas\w*|smaller|less(?:er)?|resolv\w*|resolution|diminish\w*|"
    r"reduc\w*|regress\w*|no longer|cleared|clearing)\b"
)
_STABLE: Final = re.compile(
    r"\b(?:unchanged|stable|no (?:significant |appreciable )?(?:interval )?change|similar|"
    r"persist\w*|redemonstrat\w*|again (?:seen|noted|demonstrated))\b"
)
_WORSENING: Final = re.compile(
    r"\b(?:increas\w*|wors\w*|larger|progress\w*|new|newly|more|extend\w*|develop\w*)\b"
)
_CLAUSE: Final = re.compile(r"[;,]|\b(?:but|while|whereas|however)\b")


def progression_from_reports(current: ReportLabels, prior: ReportLabels) -> dict[str, str]:
    """Progression stated in the current report ("increased effusion", "unchanged edema").

    Conservative: the clause naming the observation must carry cues of exactly one kind, and
    the observation must be present (or resolved, for improving) in one of the two reports.
    """
    found = {}
    for observation in OPTION_OBSERVATIONS:
        label = current.labels.get(observation)
        if label is None or label.evidence is None:
            continue
        was = prior.status(observation)
        if label.status == ABSENT and was != PRESENT:
            continue
        clause = _clause_about(observation, label.evidence.text.lower())
        if clause is None:
            continue
        kinds = [
            kind
            for kind, pattern in (
                (IMPROVING, _IMPROVING),
                (STABLE, _STABLE),
                (WORSENING, _WORSENING),
            )
            if pattern.search(clause)
        ]
        if len(kinds) != 1:
            continue
        kind = kinds[0]
        if label.status == ABSENT and kind != IMPROVING:
            continue  # "no new effusion" says nothing about a change
        found[observation] = kind
    return found


def _clause_about(observation: str, sentence: str) -> str | None:
    vocabulary = OBSERVATIONS[observation]
    match = None
    for pattern in (vocabulary.pattern, vocabulary.anatomy_pattern):
        if pattern is not None and match is None:
            match = pattern.search(sentence)
    if match is None:
        return None
    start = 0
    for cut in _CLAUSE.finditer(sentence):
        if cut.start() >= match.end():
            return sentence[start : cut.start()]
        if cut.end() <= match.start():
            start = cut.end()
    return sentence[start:]


# --- wording -------------------------------------------------------------------------------

# What to look at, per observation (the plan and the first part of each step).
LOOK: Final[dict[str, str]] = {
    NO_FINDING: "every structure in turn (heart, mediastinum, lungs, pleura, bones and devices) for any abnormality",
    ENLARGED_CARDIOMEDIASTINUM: "the width and contour of the mediastinum and the cardiomediastinal silhouette",
    CARDIOMEGALY: "the size of the cardiac silhouette relative to the width of the chest",
    LUNG_OPACITY: "both lung fields for any area of increased opacity",
    LUNG_LESION: "the lungs for a nodule or mass",
    EDEMA: "the pulmonary vessels and the interstitium for vascular congestion or interstitial and alveolar fluid",
    CONSOLIDATION: "the lungs for dense airspace opacity with air bronchograms",
    PNEUMONIA: "the lungs for focal airspace opacity that would suggest infection",
    ATELECTASIS: "the lungs for volume loss and linear or plate-like opacity",
    PNEUMOTHORAX: "the apices and pleural margins for a visceral pleural line with no lung markings beyond it",
    PLEURAL_EFFUSION: "the costophrenic angles and the dependent pleural spaces for fluid",
    PLEURAL_OTHER: "the pleura for thickening, plaques or calcification",
    FRACTURE: "the ribs, clavicles and spine for a cortical break",
    SUPPORT_DEVICES: "the chest for tubes, lines, pacemakers and other devices",
}
# Where, in a few words (plans list these).
REGION: Final[dict[str, str]] = {
    NO_FINDING: "the whole film",
    ENLARGED_CARDIOMEDIASTINUM: "the mediastinum",
    CARDIOMEGALY: "the heart size",
    LUNG_OPACITY: "the lung fields",
    LUNG_LESION: "the lungs for nodules",
    EDEMA: "the pulmonary vessels",
    CONSOLIDATION: "the airspaces",
    PNEUMONIA: "the lungs for infection",
    ATELECTASIS: "lung volumes",
    PNEUMOTHORAX: "the pleural margins",
    PLEURAL_EFFUSION: "the costophrenic angles",
    PLEURAL_OTHER: "the pleura",
    FRACTURE: "the bones",
    SUPPORT_DEVICES: "lines and tubes",
}
# What a normal film shows there (an unmentioned observation reads as normal).
NORMAL_SEEN: Final[dict[str, str]] = {
    NO_FINDING: "no abnormality is seen in the heart, lungs, pleura or bones",
    ENLARGED_CARDIOMEDIASTINUM: "the mediastinum is not widened",
    CARDIOMEGALY: "the cardiac silhouette is not enlarged",
    LUNG_OPACITY: "the lungs are clear",
    LUNG_LESION: "no nodule or mass is seen",
    EDEMA: "the pulmonary vessels are normal and there is no interstitial or alveolar fluid",
    CONSOLIDATION: "there is no airspace consolidation",
    PNEUMONIA: "there is no focal airspace opacity to suggest infection",
    ATELECTASIS: "lung volumes are preserved without linear or plate-like opacity",
    PNEUMOTHORAX: "no visceral pleural line is seen and lung markings reach the chest wall",
    PLEURAL_EFFUSION: "the costophrenic angles are sharp",
    PLEURAL_OTHER: "the pleura is smooth, without thickening or plaques",
    FRACTURE: "the visible bones are intact",
    SUPPORT_DEVICES: "no tubes, lines or devices are seen",
}
# Sentences saying a region is normal: evidence for an observation the report does not name.
_REGIONS: Final[dict[str, re.Pattern[str]]] = {
    name: re.compile(pattern)
    for name, pattern in {
        CARDIOMEGALY: r"\b(?:heart|cardiac|cardiomediastinal)\b",
        ENLARGED_CARDIOMEDIASTINUM: r"\b(?:mediastin\w*|cardiomediastinal)\b",
        LUNG_OPACITY: r"\b(?:lungs?|lung fields|parenchyma)\b",
        LUNG_LESION: r"\b(?:lungs?|lung fields)\b",
        CONSOLIDATION: r"\b(?:lungs?|lung fields)\b",
        PNEUMONIA: r"\b(?:lungs?|lung fields)\b",
        ATELECTASIS: r"\b(?:lungs?|lung fields)\b",
        EDEMA: r"\b(?:lungs?|pulmonary vascula\w*)\b",
        PNEUMOTHORAX: r"\bpleura\w*\b",
        PLEURAL_EFFUSION: r"\b(?:pleura\w*|costophrenic)\b",
        PLEURAL_OTHER: r"\bpleura\w*\b",
        FRACTURE: r"\b(?:bones?|bony|osseous|skeletal|ribs?)\b",
    }.items()
}
_NORMAL: Final = re.compile(
    r"\b(?:clear|normal|unremarkable|intact|within normal limits|well[- ]expanded|no acute)\b"
)
# "Lungs are otherwise clear" follows an abnormality; "not normal" is no normal region.
_EXCEPT: Final = re.compile(
    r"\b(?:except|but|however|otherwise|other than|apart from|aside from|"
    r"not (?:entirely |completely |fully )?(?:clear|normal|unremarkable|intact))\b"
)

_LOOK_T: Final = (
    "Examine {look}{film}.",
    "Next, look at {look}{film}.",
    "Check {look}{film}.",
    "Now assess {look}{film}.",
)
_SEEN_EVIDENCE_T: Final = ("{quote}", "The film shows: {quote_lc}", "On this image: {quote_lc}")
_SEEN_NORMAL_T: Final = (
    "{Normal}.",
    "{Normal}; nothing abnormal is seen there.",
    "No abnormality is seen: {normal}.",
)
_SEEN_ABNORMAL_T: Final = ("There are abnormal findings on this film.", "The film is not normal.")
_SEEN_PRESENT_T: Final = ("The image shows {obs}{where}.", "Findings of {obs} are seen{where}.")
_SEEN_UNCERTAIN_T: Final = (
    "There are equivocal signs of {obs}{where}.",
    "Possible {obs}{where} is seen, but it is not definite.",
)
_MEANING_T: Final[dict[str, tuple[str, ...]]] = {
    PRESENT: ("This indicates {obs}.", "So {obs} {be} present.", "Therefore {obs} {be} present."),
    ABSENT: ("So there is no {obs}.", "This rules out {obs}.", "Therefore {obs} {be} absent."),
    UNCERTAIN: (
        "So {obs} {be} possible but not certain.",
        "This is equivocal: {obs} can be neither confirmed nor excluded.",
    ),
}
_MEANING_NO_FINDING_T: Final[dict[str, tuple[str, ...]]] = {
    PRESENT: ("So the film shows no abnormality.", "This is a normal chest X-ray."),
    ABSENT: (
        'So the film is not normal: "No Finding" does not apply.',
        "This is not a normal chest X-ray.",
    ),
    UNCERTAIN: ("It is not certain that the film is normal.",),
}
_OPTION_RIGHT_T: Final = (
    " Option {letter} is therefore correct.",
    " That makes option {letter} ({option}) the answer.",
)
_OPTION_WRONG_T: Final = (
    " Option {letter} ({option}) is incorrect.",
    " So option {letter} can be excluded.",
)

_PLAN_T: Final[dict[str, tuple[str, ...]]] = {
    BINARY: (
        "The question asks whether this chest X-ray shows {obs}. To answer, examine {look}, then decide between Yes and No.",
        "To decide whether {obs} {be} present, I need to examine {look}.",
        "Plan: look for {obs} by examining {look}, then answer Yes or No.",
    ),
    SINGLE: (
        "The question asks which one of these findings is present: {options}. Examine each in turn: {regions}.",
        "Only one of {options} is present. Check each option on the film ({regions}) and keep the one that is seen.",
        "Plan: assess {regions} to decide which of {options} is present.",
    ),
    MULTI: (
        "The question asks which set of findings is present. The options involve {findings}; check each of them ({regions}), then choose the option that lists exactly the findings seen.",
        "Plan: examine {regions} for {findings}, then pick the option whose findings are all present and complete.",
    ),
    OPEN: (
        "The question asks for every finding on this film. Go through it systematically: {regions}.",
        "Plan: review {regions} in turn and list every finding that is present.",
    ),
    TEMPORAL: (
        "The question asks how {obs} has changed since the prior study. Examine {look} on the prior and on the current film, then compare them.",
        "Plan: assess {obs} on both films ({region}) and judge whether it is improving, stable or worsening.",
    ),
}
_CONCLUSION_T: Final[dict[str, tuple[str, ...]]] = {
    BINARY: (
        "Therefore, the answer is {letter}) {text}.",
        "{Obs} {be} {presence}, so the answer is {letter}) {text}.",
        "In conclusion, {obs} {be} {presence}: {letter}) {text}.",
    ),
    SINGLE: (
        "Therefore, the finding in this chest X-ray is {text}: option {letter}.",
        "Only {text} is present, so the answer is {letter}.",
        "The answer is {letter}) {text}.",
    ),
    MULTI: (
        "The findings present are {findings}, which is exactly option {letter}. The answer is {letter}.",
        "Only option {letter} lists exactly the findings present ({findings}); the answer is {letter}.",
    ),
    OPEN: (
        "In conclusion, the findings are {findings}.",
        "Therefore, this chest X-ray shows {findings}.",
        "The findings present are {findings}.",
    ),
    TEMPORAL: (
        "Therefore, {obs} {be} {change}: the answer is {letter}) {text}.",
        "Compared with the prior study, {obs} {be} {change}, so the answer is {letter}.",
    ),
}
_COMPARE_T: Final[dict[str, tuple[str, ...]]] = {
    IMPROVING: (
        "Compared with the prior film, {obs} has decreased.",
        "Between the two films, {obs} has lessened: this is an improvement.",
    ),
    STABLE: (
        "Compared with the prior film, {obs} is unchanged.",
        "Between the two films, {obs} looks the same: it is stable.",
    ),
    WORSENING: (
        "Compared with the prior film, {obs} has increased.",
        "Between the two films, {obs} has progressed: it is worsening.",
    ),
}


def _name(observation: str) -> str:
    return observation.lower()


def _be(observation: str) -> str:
    return "are" if observation == SUPPORT_DEVICES else "is"


def _quote(text: str) -> str:
    """An evidence sentence as a step clause: one line, no list number, sentence case."""
    sentence = " ".join(text.split())
    sentence = re.sub(r"^(?:\(?\d{1,2}[.)]|[-*\u2022])\s*", "", sentence)
    letters = [c for c in sentence if c.isalpha()]
    if letters and sum(c.isupper() for c in letters) > 0.8 * len(letters):
        sentence = sentence[:1].upper() + sentence[1:].lower()  # ALL-CAPS reports
    if sentence and sentence[-1] not in ".!?":
        sentence += "."
    return sentence


def _lower_first(text: str) -> str:
    if len(text) > 1 and text[1].isupper():
        return text  # an acronym ("PICC line ...")
    return text[:1].lower() + text[1:]


def _where(label: Label | None) -> str:
    if label is None:
        return ""
    parts = [p for p in (label.laterality, label.location) if p]
    return f" ({' '.join(parts)})" if parts else ""


def _plan_line(observation: str) -> str:
    return f"To assess {_name(observation)}, examine {LOOK[observation]}."


def _listing(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


# --- cases ---------------------------------------------------------------------------------


@dataclass
class MinedStep:
    text: str
    kind: str  # plan | finding | prior | current | compare | conclusion
    finding: dict[str, Any] | None = None  # {"observation", "status"} (+ "change" on compare)
    evidence: Evidence | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "kind": self.kind,
            "finding": self.finding,
            "evidence": self.evidence.as_dict() if self.evidence else None,
        }


@dataclass
class MinedCase:
    task: str
    key: str  # stable within a report: "binary:pleural-effusion", "single", "temporal:edema"
    question: str
    options: list[dict[str, str]]  # [{"key": "A", "text": "..."}]
    answer: list[str]  # option letters, or [text] for open questions
    answer_content: str
    steps: list[MinedStep]
    plan: dict[str, str]
    report: str
    prior_report: str = ""
    observations: tuple[str, ...] = ()  # what the question is about
    labels_origin: str = "labeler"

    @property
    def reason_steps(self) -> list[str]:
        return [step.text for step in self.steps]

    def evidence_for(self, observation: str) -> Evidence | None:
        for step in self.steps:
            if step.finding and step.finding.get("observation") == observation and step.evidence:
                return step.evidence
        return None

    def to_record(self, **extra: Any) -> dict[str, Any]:
        """A RadRBench-shaped record (importable by `import_cases`) plus per-step details."""
        record: dict[str, Any] = {
            "case_key": self.key,
            "task": self.task,
            "question": self.question,
            "options": self.options,
            "answer": ", ".join(self.answer),
            "answer_content": self.answer_content,
            "reason_steps": self.reason_steps,
            "steps": [step.as_dict() for step in self.steps],
            "plan": self.plan,
        }
        if self.task == TEMPORAL:
            record["original_report1"], record["original_report2"] = self.prior_report, self.report
        else:
            record["original_report"] = self.report
        record.update(extra)
        return record


@dataclass
class Built:
    cases: list[MinedCase]
    skipped: dict[str, str]  # task -> why no case of that type came from this report


class _Writer:
    """Builds one case's steps; every wording choice comes from the case's own seeded generator."""

    def __init__(self, rng: random.Random, labels: ReportLabels) -> None:
        self.rng = rng
        self.labels = labels

    def pick(self, templates: Sequence[str], **values: Any) -> str:
        return self.rng.choice(templates).format(**values)

    def observe(
        self,
        observation: str,
        *,
        labels: ReportLabels | None = None,
        film: str = "",
        tail: str = "",
        kind: str = "finding",
    ) -> MinedStep:
        """What to look at, what is seen, what it means, for one observation."""
        labels = labels or self.labels
        status = labels.status(observation)
        label = labels.labels.get(observation)
        evidence = labels.evidence_for(observation)
        values = {"obs": _name(observation), "be": _be(observation), "where": _where(label)}
        look = self.pick(_LOOK_T, look=LOOK[observation], film=film)
        if evidence is not None:
            quote = _quote(evidence.text)
            seen = self.pick(_SEEN_EVIDENCE_T, quote=quote, quote_lc=_lower_first(quote))
        elif status == PRESENT:
            seen = self.pick(_SEEN_PRESENT_T, **values)
        elif status == UNCERTAIN:
            seen = self.pick(_SEEN_UNCERTAIN_T, **values)
        elif observation == NO_FINDING:
            seen = self.pick(_SEEN_ABNORMAL_T)
        else:
            normal = NORMAL_SEEN[observation]
            seen = self.pick(_SEEN_NORMAL_T, Normal=normal[:1].upper() + normal[1:], normal=normal)
        meanings = _MEANING_NO_FINDING_T if observation == NO_FINDING else _MEANING_T
        meaning = self.pick(meanings[status], **values)
        return MinedStep(
            f"{look} {seen} {meaning}{tail}",
            kind,
            {"observation": observation, "status": status},
            evidence,
        )


def _rng(seed: int, key: str, task: str) -> random.Random:
    # str seeds hash with SHA-512: the same on every run and platform (unlike hash()).
    return random.Random(f"{seed}\x00{key}\x00{task}")


def _route(observations: Iterable[str]) -> list[str]:
    return sorted(set(observations), key=lambda o: _ROUTE_INDEX.get(o, len(ROUTE)))


def _options(texts: Sequence[str]) -> list[dict[str, str]]:
    return [{"key": ascii_uppercase[i], "text": text} for i, text in enumerate(texts)]


def _question(stem: str, options: list[dict[str, str]]) -> str:
    return stem + " Options:\n" + "\n".join(f"{o['key']}) {o['text']}" for o in options)


def _slug(observation: str) -> str:
    return observation.lower().replace(" ", "-")


def _absent_candidates(labels: ReportLabels, pool: Sequence[str]) -> list[str]:
    implied = labels.implied()
    return [o for o in pool if labels.status(o) == ABSENT and o not in implied]


def build_cases(
    labels: ReportLabels,
    *,
    tasks: Iterable[str] = TASKS,
    seed: int = 0,
    key: str = "",
    prior: ReportLabels | None = None,
    progression: Mapping[str, str] | None = None,
    binary_per_report: int = 1,
) -> Built:
    """Every case of the requested task types that this report's labels support.

    `key` names the report (a study id): it seeds the choices, so two reports with the same
    seed still get different shuffles. Temporal cases need `prior` (the prior report's labels);
    `progression` gives their answers (from a labels file; an empty mapping means none), else
    (None) they are read from the current report's wording (`progression_from_reports`).
    """
    wanted = list(dict.fromkeys(tasks))
    unknown = [t for t in wanted if t not in TASKS]
    if unknown:
        raise ValueError(f"unknown task type {unknown[0]!r}: choose from {', '.join(TASKS)}")
    cases: list[MinedCase] = []
    skipped: dict[str, str] = {}
    for task in wanted:
        if task == BINARY:
            made, why = (
                _binary(labels, seed, key, binary_per_report),
                "no observation labelled present or absent",
            )
        elif task == SINGLE:
            made, why = _single(labels, seed, key)
        elif task == MULTI:
            made, why = _multi(labels, seed, key)
        elif task == OPEN:
            made, why = _open(labels, seed, key)
        else:
            made, why = _temporal(labels, prior, progression, seed, key)
        if made:
            cases.extend(made)
        else:
            skipped[task] = why
    for case in cases:
        case.labels_origin = labels.origin
    return Built(cases, skipped)


def _binary(labels: ReportLabels, seed: int, key: str, count: int) -> list[MinedCase]:
    rng = _rng(seed, key, BINARY)
    present = [o for o in OPTION_OBSERVATIONS if labels.status(o) == PRESENT]
    absent = _absent_candidates(labels, OPTION_OBSERVATIONS)
    # Prefer negatives the report states ("no pneumothorax"): their chains rest on a sentence.
    stated = [o for o in absent if labels.mentioned(o)]
    absent = stated or absent
    targets: list[str] = []
    while len(targets) < count and (present or absent):
        pool = present if present and (not absent or rng.random() < 0.5) else absent
        choice = rng.choice(pool)
        pool.remove(choice)
        targets.append(choice)
    cases = []
    for target in targets:
        writer = _Writer(_rng(seed, key, f"{BINARY}:{target}"), labels)
        yes = labels.status(target) == PRESENT
        options = _options(["Yes", "No"])
        letter, text = ("A", "Yes") if yes else ("B", "No")
        values = {"obs": _name(target), "Obs": target[:1] + _name(target)[1:], "be": _be(target)}
        plan_text = writer.pick(_PLAN_T[BINARY], look=LOOK[target], **values)
        steps = [
            MinedStep(plan_text, "plan"),
            writer.observe(target),
            MinedStep(
                writer.pick(
                    _CONCLUSION_T[BINARY],
                    letter=letter,
                    text=text,
                    presence="present" if yes else "not present",
                    **values,
                ),
                "conclusion",
                {"observation": target, "status": labels.status(target)},
            ),
        ]
        cases.append(
            MinedCase(
                BINARY,
                f"{BINARY}:{_slug(target)}",
                _question(f"Does this chest X-ray show {_name(target)}?", options),
                options,
                [letter],
                text,
                steps,
                {target: plan_text},
                labels.report,
                observations=(target,),
            )
        )
    return cases


def _single(labels: ReportLabels, seed: int, key: str) -> tuple[list[MinedCase], str]:
    rng = _rng(seed, key, SINGLE)
    pool = (*OPTION_OBSERVATIONS, NO_FINDING)
    present = [o for o in pool if labels.status(o) == PRESENT]
    if not present:
        return [], "no finding labelled present"
    absent = _absent_candidates(labels, pool)
    if len(absent) < 3:
        return [], "fewer than three absent observations to offer beside the present one"
    answer = rng.choice(present)
    names = [answer, *rng.sample(absent, 3)]
    rng.shuffle(names)
    options = _options(names)
    letter = ascii_uppercase[names.index(answer)]
    writer = _Writer(rng, labels)
    plan_text = writer.pick(
        _PLAN_T[SINGLE],
        options=_listing([_name(n) for n in names]),
        regions=_listing([REGION[n] for n in _route(names)]),
    )
    steps = [MinedStep(plan_text, "plan")]
    for index, name in enumerate(names):  # each option in turn, as the question lists them
        right = name == answer
        tail = writer.pick(
            _OPTION_RIGHT_T if right else _OPTION_WRONG_T,
            letter=ascii_uppercase[index],
            option=name,
        )
        steps.append(writer.observe(name, tail=tail))
    steps.append(
        MinedStep(
            writer.pick(_CONCLUSION_T[SINGLE], letter=letter, text=answer),
            "conclusion",
            {"observation": answer, "status": PRESENT},
        )
    )
    plan = {name: _plan_line(name) for name in names}
    return [
        MinedCase(
            SINGLE,
            SINGLE,
            _question("Which finding is in this chest X-ray?", options),
            options,
            [letter],
            answer,
            steps,
            plan,
            labels.report,
            observations=tuple(names),
        )
    ], ""


def _multi(labels: ReportLabels, seed: int, key: str) -> tuple[list[MinedCase], str]:
    rng = _rng(seed, key, MULTI)
    present = labels.present()
    if not MULTI_MIN <= len(present) <= MULTI_MAX:
        return (
            [],
            f"{len(present)} findings present (a set question needs {MULTI_MIN} to {MULTI_MAX})",
        )
    absent = _absent_candidates(labels, OPTION_OBSERVATIONS)
    if not absent:
        return [], "no absent observation to build wrong options from"
    size = len(present)
    truth = frozenset(present)
    sets: list[frozenset[str]] = [truth]
    for _ in range(200):  # enough tries to find three distinct wrong sets when they exist
        if len(sets) == 4:
            break
        swapped = rng.randint(1, min(size, len(absent)))
        candidate = frozenset(rng.sample(present, size - swapped) + rng.sample(absent, swapped))
        if candidate not in sets:
            sets.append(candidate)
    if len(sets) < 4:
        return [], "too few absent observations for three distinct wrong options"
    order = list(range(4))
    rng.shuffle(order)
    option_lists = []
    for index in order:
        members = _route(sets[index])
        rng.shuffle(members)
        option_lists.append(members)
    options = _options([", ".join(_name(m) for m in members) for members in option_lists])
    letter = ascii_uppercase[order.index(0)]
    involved = _route(o for members in option_lists for o in members)
    writer = _Writer(rng, labels)
    plan_text = writer.pick(
        _PLAN_T[MULTI],
        findings=_listing([_name(o) for o in involved]),
        regions=_listing(list(dict.fromkeys(REGION[o] for o in involved))),
    )
    steps = [MinedStep(plan_text, "plan")]
    steps += [writer.observe(o) for o in involved]
    findings = _listing([_name(o) for o in _route(present)])
    steps.append(
        MinedStep(writer.pick(_CONCLUSION_T[MULTI], letter=letter, findings=findings), "conclusion")
    )
    answer_text = options[order.index(0)]["text"]
    plan = {_name(o): _plan_line(o) for o in involved}
    return [
        MinedCase(
            MULTI,
            MULTI,
            _question("Which findings are in this chest X-ray?", options),
            options,
            [letter],
            answer_text,
            steps,
            plan,
            labels.report,
            observations=tuple(involved),
        )
    ], ""


def _open(labels: ReportLabels, seed: int, key: str) -> tuple[list[MinedCase], str]:
    present = labels.present()
    if not present:
        return [], "no finding labelled present"
    rng = _rng(seed, key, OPEN)
    # Present and uncertain findings, and the negatives the report states: what a reader notes.
    examined = _route(o for o in OPTION_OBSERVATIONS if labels.mentioned(o))
    writer = _Writer(rng, labels)
    plan_text = writer.pick(
        _PLAN_T[OPEN], regions=_listing(list(dict.fromkeys(REGION[o] for o in examined)))
    )
    steps = [MinedStep(plan_text, "plan")]
    steps += [writer.observe(o) for o in examined]
    answer = ", ".join(_name(o) for o in _route(present))  # RadRBench's open-answer form
    findings = _listing([_name(o) for o in _route(present)])
    steps.append(MinedStep(writer.pick(_CONCLUSION_T[OPEN], findings=findings), "conclusion"))
    plan = {_name(o): _plan_line(o) for o in examined}
    return [
        MinedCase(
            OPEN,
            OPEN,
            "Which findings are in this chest X-ray?",
            [],
            [answer],
            answer,
            steps,
            plan,
            labels.report,
            observations=tuple(examined),
        )
    ], ""


def _temporal(
    labels: ReportLabels,
    prior: ReportLabels | None,
    progression: Mapping[str, str] | None,
    seed: int,
    key: str,
) -> tuple[list[MinedCase], str]:
    if prior is None:
        return [], "no prior study of the same patient"
    changes = (
        dict(progression) if progression is not None else progression_from_reports(labels, prior)
    )
    if not changes:
        return [], "no progression label, and the report states no change for a finding"
    cases = []
    for observation in _route(changes):
        change = changes[observation]
        rng = _rng(seed, key, f"{TEMPORAL}:{observation}")
        names = ["Improving", "Stable", "Worsening"]
        rng.shuffle(names)
        options = _options(names)
        letter = ascii_uppercase[names.index(change.capitalize())]
        writer = _Writer(rng, labels)
        values = {"obs": _name(observation), "be": _be(observation)}
        plan_text = writer.pick(
            _PLAN_T[TEMPORAL], look=LOOK[observation], region=REGION[observation], **values
        )
        status = labels.status(observation)
        steps = [
            MinedStep(plan_text, "plan"),
            writer.observe(observation, labels=prior, film=" on the prior film", kind=PRIOR),
            writer.observe(observation, film=" on the current film", kind=CURRENT),
            MinedStep(
                writer.pick(_COMPARE_T[change], **values),
                "compare",
                {"observation": observation, "status": status, "change": change},
                labels.evidence_for(observation),
            ),
            MinedStep(
                writer.pick(
                    _CONCLUSION_T[TEMPORAL],
                    letter=letter,
                    text=change.capitalize(),
                    change=change,
                    **values,
                ),
                "conclusion",
                {"observation": observation, "status": status, "change": change},
            ),
        ]
        cases.append(
            MinedCase(
                TEMPORAL,
                f"{TEMPORAL}:{_slug(observation)}",
                _question(
                    f"How has the {_name(observation)} changed compared with the prior chest X-ray?",
                    options,
                ),
                options,
                [letter],
                change.capitalize(),
                steps,
                {observation: plan_text},
                labels.report,
                prior.report,
                observations=(observation,),
            )
        )
    return cases, ""
