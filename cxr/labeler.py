"""Findings labeler: which observations a report mentions, and whether present, absent or uncertain.

NegEx-style and regex-only, so it runs anywhere and fast (a few thousand reports a second on one
core). An observation's patterns run only on sentences holding one of the words every mention of it
contains (`Observation.keywords`), and a sentence's reading is cached by its text, since reports
and model outputs repeat sentences. For every sentence of the findings and impression sections:

1. find mentions of each vocabulary observation (`cxr.vocabulary`);
2. mask pseudo-negations ("no change in the effusion") and double negations ("cannot exclude"),
   which contain "no"/"not" but negate nothing;
3. a negation trigger in the mention's clause makes it absent ("no pneumothorax", "effusion has
   resolved", "rules out pneumothorax", "effusion: none"), else an uncertainty trigger makes it
   uncertain ("may represent", "cannot exclude", "to rule out"), else it is present. A clause
   ends at the sentence end or at "but", "however", ";" and the like; a mention of a past finding
   ("scarring from prior pneumonia") is skipped;
4. laterality and location come from the words next to the mention, within its list item;
5. per observation, keep the strongest mention (present > uncertain > absent, as CheXpert does),
   preferring the impression's sentence as evidence.
"""

import re
from dataclasses import dataclass
from typing import Final

from cxr import triggers as t
from cxr.sections import FINDINGS, IMPRESSION, section_spans
from cxr.text import sentence_spans
from cxr.vocabulary import (
    BORDERLINE_QUALIFIER,
    ENLARGED_QUALIFIER,
    NO_FINDING,
    NORMAL_QUALIFIER,
    OBSERVATIONS,
    Observation,
    ancestors,
)

PRESENT: Final = "present"
UNCERTAIN: Final = "uncertain"
ABSENT: Final = "absent"
STATUSES: Final = (PRESENT, UNCERTAIN, ABSENT)
_RANK: Final = {PRESENT: 2, UNCERTAIN: 1, ABSENT: 0}

LEFT: Final = "left"
RIGHT: Final = "right"
BILATERAL: Final = "bilateral"

# Sections whose sentences describe the image; history and indication name suspicions only.
_LABELLED_SECTIONS: Final = frozenset({FINDINGS, IMPRESSION})


@dataclass(frozen=True)
class Finding:
    observation: str  # canonical name from cxr.vocabulary
    status: str  # present | uncertain | absent
    laterality: str | None  # left | right | bilateral, when stated
    location: str | None  # e.g. "lower lobe", "base", when stated
    evidence: str  # the sentence that decided the status ("" for an implied No Finding)
    span: tuple[int, int] | None  # the evidence's character offsets in the report
    section: str | None = None  # the section the evidence came from

    def as_dict(self) -> dict[str, object]:
        return {
            "observation": self.observation,
            "status": self.status,
            "laterality": self.laterality,
            "location": self.location,
            "evidence": self.evidence,
            "span": list(self.span) if self.span else None,
        }


@dataclass(frozen=True)
class _Mention:
    observation: str
    status: str
    start: int  # offsets into the report
    end: int
    sentence: tuple[int, int]
    section: str
    laterality: str | None
    location: str | None


def label_report(report: str) -> list[Finding]:
    """Findings for every observation the report mentions, plus "No Finding", in vocabulary order.

    >>> [(f.observation, f.status) for f in label_report("No pneumothorax. Small left effusion.")]
    [('No Finding', 'absent'), ('Pneumothorax', 'absent'), ('Pleural Effusion', 'present')]
    """
    lowered = report.lower()
    if len(lowered) != len(report) or "\u03a3" in report:
        # A character that lower-cases to two ("İ") or by context (final sigma): lower each
        # sentence alone, as offsets and readings assume.
        lowered = ""
    # (section, start, end, lower-cased sentence) of every sentence the labeler reads.
    sentences: list[tuple[str, int, int, str]] = []
    for section, start, end in section_spans(report):
        if section not in _LABELLED_SECTIONS:
            continue
        for s_start, s_end in sentence_spans(report[start:end]):
            s_start, s_end = start + s_start, start + s_end
            sentence = lowered[s_start:s_end] if lowered else report[s_start:s_end].lower()
            sentences.append((section, s_start, s_end, sentence))
    # Screening the whole report pays only when it spares more than one sentence the words of
    # observations the report never names; a lone sentence is read against every observation
    # (the same reading: a word absent from the report is absent from each of its sentences).
    misses = sum(1 for *_, sentence in sentences if sentence not in _READINGS)
    screen = _screen(lowered) if misses > 1 and lowered else _SCREEN
    mentions: list[_Mention] = []
    for section, s_start, s_end, sentence in sentences:
        reading = _READINGS.get(sentence)
        if reading is None:
            reading = _read_sentence(sentence, screen)
            if len(_READINGS) >= _CACHE_SIZE:
                _READINGS.clear()  # bounded: start afresh rather than track recency
            _READINGS[sentence] = reading
        for name, status, m_start, m_end, laterality, location in reading:
            mentions.append(
                _Mention(
                    name,
                    status,
                    s_start + m_start,
                    s_start + m_end,
                    (s_start, s_end),
                    section,
                    laterality,
                    location,
                )
            )
    return _resolve(report, mentions)


class _Sentence:
    """One lower-cased sentence with the trigger positions computed once and shared by mentions."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.terminators = [m.span() for m in t.TERMINATOR.finditer(text)]
        self._masked: list[tuple[int, int]] | None = None  # found when a trigger first needs them

    @property
    def masked(self) -> list[tuple[int, int]]:
        """Stretches whose "no"/"not" negate nothing: pseudo and double negations."""
        if self._masked is None:
            self._masked = [
                m.span() for p in (t.PSEUDO, t.DOUBLE_NEGATION) for m in p.finditer(self.text)
            ]
        return self._masked

    def clause(self, start: int, end: int) -> tuple[int, int]:
        """The stretch around a mention that negation and uncertainty may reach."""
        if not self.terminators:
            return 0, len(self.text)
        clause_start, clause_end = 0, len(self.text)
        for t_start, t_end in self.terminators:
            if t_end <= start:
                clause_start = t_end
            elif t_start >= end:
                clause_end = t_start
                break
        return clause_start, clause_end

    def _unmasked(self, pattern: re.Pattern[str], position: int) -> bool:
        if pattern is t.DOUBLE_NEGATION:
            return True  # the masks hide the "no"/"not" inside these, not the phrases themselves
        return not any(start <= position < end for start, end in self.masked)

    def before(self, pattern: re.Pattern[str], start: int, end: int, clause_start: int) -> bool:
        """A trigger before the mention (or inside it: "heart is not enlarged") reaches it."""
        for match in pattern.finditer(self.text, clause_start, end):
            if not self._unmasked(pattern, match.start()):
                continue
            if match.end() >= start or not t.COMMA_BREAK.search(self.text, match.end(), start):
                return True
        return False

    def after(self, pattern: re.Pattern[str], end: int, clause_end: int, reach: int) -> bool:
        """A trigger after the mention reaches it when no comma stands between them."""
        for match in pattern.finditer(self.text, end, min(clause_end, end + reach)):
            if self._unmasked(pattern, match.start()) and "," not in self.text[end : match.start()]:
                return True
        return False

    def status(self, start: int, end: int) -> str:
        # "pleural effusion: none", "consolidation: not excluded": the colon ends no clause here.
        if t.ANSWER_UNCERTAINTY.match(self.text, end):
            return UNCERTAIN
        if t.ANSWER_NEGATION.match(self.text, end):
            return ABSENT
        clause_start, clause_end = self.clause(start, end)
        if self.before(t.PRE_NEGATION, start, end, clause_start) or self.after(
            t.POST_NEGATION, end, clause_end, t.POST_REACH
        ):
            return ABSENT
        uncertain = (
            self.before(t.DOUBLE_NEGATION, start, end, clause_start)
            or self.after(t.DOUBLE_NEGATION, end, clause_end, t.POST_REACH)
            or self.before(t.PRE_UNCERTAINTY, start, end, clause_start)
            or self.after(t.POST_UNCERTAINTY, end, clause_end, t.POST_UNCERTAINTY_REACH)
            or self.after(t.QUESTION_MARK, end, clause_end, t.POST_UNCERTAINTY_REACH)
            or t.OR_BEFORE.search(self.text, clause_start, start) is not None
            or t.OR_AFTER.match(self.text, end, clause_end) is not None
        )
        return UNCERTAIN if uncertain else PRESENT

    def qualify(self, start: int, end: int) -> tuple[int, int, str | None] | None:
        """Status of an anatomy mention from the words near it; None when nothing qualifies it.

        "heart size is top normal" is uncertain, "heart size is normal" absent, "the heart is
        enlarged" a mention whose status negation and uncertainty still decide ("not enlarged").
        """
        clause_start, clause_end = self.clause(start, end)
        window_start = max(clause_start, start - t.QUALIFIER_BEFORE)
        window = self.text[window_start : min(clause_end, end + t.NEAR_AFTER)]
        if BORDERLINE_QUALIFIER.search(window):
            return start, end, UNCERTAIN
        enlarged = ENLARGED_QUALIFIER.search(window)
        normal = NORMAL_QUALIFIER.search(window)
        if normal and (not enlarged or normal.start() <= enlarged.start()):
            return start, end, ABSENT
        if enlarged:
            return start, max(end, window_start + enlarged.end()), None
        return None

    def place(self, start: int, end: int) -> tuple[str | None, str | None]:
        """Laterality and location stated near a mention, within its clause and list item."""
        clause_start, clause_end = self.clause(start, end)
        window_start = max(clause_start, start - t.NEAR_BEFORE, self.text.rfind(",", 0, start) + 1)
        window_end = min(clause_end, end + t.NEAR_AFTER)
        # The next list item or a second finding joined by "with"/"and" has its own place.
        boundary = t.ITEM_END.search(self.text, end, window_end)
        window_end = boundary.start() if boundary else window_end
        sides: set[str] = set()
        for match in t.LATERALITY.finditer(self.text, window_start, window_end):
            word = match.group(1)
            sides.add(word if word in {LEFT, RIGHT} else BILATERAL)
        if BILATERAL in sides or len(sides) == 2:
            laterality: str | None = BILATERAL
        else:
            laterality = next(iter(sides), None)
        location = t.LOCATION.search(self.text, window_start, window_end)
        return laterality, location.group(0) if location else None


# (observation, words one of which every mention of it contains, or None where none are known).
_Screened = tuple[Observation, tuple[str, ...] | None]
_SCREEN: Final[tuple[_Screened, ...]] = tuple(
    (o, tuple(sorted(o.keywords)) if o.keywords is not None else None)
    for o in OBSERVATIONS.values()
)

# One mention within a sentence: (observation, status, start, end, laterality, location), with
# offsets into the sentence.
_Local = tuple[str, str, int, int, str | None, str | None]
# Sentence readings by lower-cased sentence: sentences repeat a lot, within and across reports
# ("No pneumothorax.", a model's stock phrases). A reading depends on the sentence alone.
_READINGS: dict[str, tuple[_Local, ...]] = {}
_CACHE_SIZE: Final = 65536


# An observation and the broader ones a finding of it implies ("Nodule" -> "Lung Lesion").
_IMPLIED: Final = {name: (name, *ancestors(name)) for name in OBSERVATIONS}
_ALL_WORDS: Final = tuple(sorted({word for _, words in _SCREEN for word in words or ()}))


def _screen(lowered_report: str) -> tuple[_Screened, ...]:
    """The observations whose words occur in the report, each with only the words that occur.

    One pass over the whole report spares every sentence the words of observations it never names.
    """
    present = {word for word in _ALL_WORDS if word in lowered_report}
    return tuple(
        (observation, None if words is None else tuple(present.intersection(words)))
        for observation, words in _SCREEN
        if words is None or not present.isdisjoint(words)
    )


def _read_sentence(lowered: str, screen: tuple[_Screened, ...]) -> tuple[_Local, ...]:
    """Every mention in one lower-cased sentence, among the observations `screen` leaves."""
    sentence: _Sentence | None = None  # built lazily: most sentences mention few observations
    found: list[_Local] = []
    for observation, words in screen:
        if words is not None:
            for word in words:
                if word in lowered:
                    break
            else:
                continue  # none of the words every mention of it contains
        if (observation.pattern is None or not observation.pattern.search(lowered)) and (
            observation.anatomy_pattern is None or not observation.anatomy_pattern.search(lowered)
        ):
            continue
        if sentence is None:
            sentence = _Sentence(lowered)
        for m_start, m_end, forced in _find(observation, sentence):
            if not observation.lasting and t.HISTORICAL.search(
                lowered, max(0, m_start - 40), m_start
            ):
                continue
            if observation.name == NO_FINDING:
                status = PRESENT  # "no acute process" states normality; its "no" negates nothing
            else:
                status = forced or sentence.status(m_start, m_end)
            laterality, location = sentence.place(m_start, m_end)
            for name in _IMPLIED[observation.name]:
                found.append((name, status, m_start, m_end, laterality, location))
    return tuple(found)


def clear_cache() -> None:
    """Forget cached sentence readings (to time the labeler cold)."""
    _READINGS.clear()


def _find(observation: Observation, sentence: _Sentence) -> list[tuple[int, int, str | None]]:
    """Mentions of one observation in a sentence: (start, end, status forced by a qualifier)."""
    spans: list[tuple[int, int, str | None]] = []
    if observation.pattern is not None:
        spans.extend(
            (m.start(), m.end(), None) for m in observation.pattern.finditer(sentence.text)
        )
    if observation.anatomy_pattern is not None:
        for match in observation.anatomy_pattern.finditer(sentence.text):
            if any(s <= match.start() < e for s, e, _ in spans):
                continue  # already a term mention ("enlarged heart")
            qualified = sentence.qualify(match.start(), match.end())
            if qualified is not None:
                spans.append(qualified)
    return spans


_ORDER: Final = {name: index for index, name in enumerate(OBSERVATIONS)}


def _resolve(report: str, mentions: list[_Mention]) -> list[Finding]:
    best: dict[str, _Mention] = {}
    for mention in mentions:
        current = best.get(mention.observation)
        if current is None or _preference(mention) > _preference(current):
            best[mention.observation] = mention
    findings = [_finding(report, mention) for mention in best.values()]
    findings = [f for f in findings if f.observation != NO_FINDING]
    findings.append(_no_finding(report, findings, best.get(NO_FINDING)))
    return sorted(findings, key=lambda f: _ORDER[f.observation])


def _preference(mention: _Mention) -> tuple[int, int, int]:
    # Strongest status first; then the impression (the radiologist's conclusion); then earliest.
    return (_RANK[mention.status], mention.section == IMPRESSION, -mention.start)


def _finding(report: str, mention: _Mention) -> Finding:
    s_start, s_end = mention.sentence
    return Finding(
        mention.observation,
        mention.status,
        mention.laterality,
        mention.location,
        " ".join(report[s_start:s_end].split()),
        mention.sentence,
        mention.section,
    )


def _no_finding(report: str, findings: list[Finding], stated: _Mention | None) -> Finding:
    """No Finding is present exactly when no abnormal observation is present or uncertain."""
    for finding in findings:
        if OBSERVATIONS[finding.observation].abnormal and finding.status != ABSENT:
            return Finding(
                NO_FINDING, ABSENT, None, None, finding.evidence, finding.span, finding.section
            )
    if stated is not None and stated.status == PRESENT:
        return _finding(report, stated)
    return Finding(NO_FINDING, PRESENT, None, None, "", None, None)
