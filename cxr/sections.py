"""Report sectioning: findings, impression, comparison, technique, history.

Reports name their sections with labels such as "FINDINGS:" or "Impression:" anywhere in the
text (MIMIC-style reports put several on one line: "Findings: ... Impression: 1. ..."). Text
under no label counts as findings, which is what an unlabelled report body is.
"""

import re
from typing import Final

FINDINGS: Final = "findings"
IMPRESSION: Final = "impression"
COMPARISON: Final = "comparison"
TECHNIQUE: Final = "technique"
HISTORY: Final = "history"
SECTIONS: Final = (FINDINGS, IMPRESSION, COMPARISON, TECHNIQUE, HISTORY)

# Label wording -> section. Indication, reason for exam and clinical data are all history: the
# labeler ignores them alike (they name what was suspected, not what was seen).
_LABELS: Final[dict[str, str]] = {
    "findings": FINDINGS,
    "finding": FINDINGS,
    "report": FINDINGS,
    "final report": FINDINGS,
    "wet read": FINDINGS,
    "impression": IMPRESSION,
    "impressions": IMPRESSION,
    "conclusion": IMPRESSION,
    "conclusions": IMPRESSION,
    "summary": IMPRESSION,
    "opinion": IMPRESSION,
    "addendum": IMPRESSION,
    "addendum ends impression": IMPRESSION,
    "comparison": COMPARISON,
    "comparisons": COMPARISON,
    "prior": COMPARISON,
    "priors": COMPARISON,
    "technique": TECHNIQUE,
    "procedure": TECHNIQUE,
    "examination": TECHNIQUE,
    "exam": TECHNIQUE,
    "views": TECHNIQUE,
    "history": HISTORY,
    "clinical history": HISTORY,
    "indication": HISTORY,
    "indications": HISTORY,
    "clinical indication": HISTORY,
    "reason for exam": HISTORY,
    "reason for examination": HISTORY,
    "reason for study": HISTORY,
    "clinical information": HISTORY,
    "clinical data": HISTORY,
    "clinical details": HISTORY,
}

# Longest wording first so that "clinical history" wins over "history".
_LABEL_WORDS: Final = "|".join(
    re.escape(label).replace(r"\ ", r"\s+") for label in sorted(_LABELS, key=len, reverse=True)
)
# A label starts the text, a line, or follows a sentence end or a slash ("Findings: / Impression:").
HEADER: Final = re.compile(
    rf"(?i)(?:^|(?<=[\n.!?/])|(?<=[.!?/][ \t])|(?<=[.!?/][ \t]{{2}}))[ \t]*({_LABEL_WORDS})[ \t]*:"
)


# Every label ends with one of these words, right before its colon (and spaces or tabs).
_LAST_WORDS: Final = tuple({label.split()[-1] for label in _LABELS})
_LONGEST: Final = max(map(len, _LAST_WORDS))


def may_have_header(report: str) -> bool:
    """Whether some colon follows a label's last word: if none does, HEADER cannot match.

    A cheap look at each colon spares the full pattern on the many texts without a label, such
    as model outputs full of "**Heart**:" headings.
    """
    colon = report.find(":")
    while colon != -1:
        end = colon
        while end and report[end - 1] in " \t":
            end -= 1
        if report[max(0, end - _LONGEST) : end].lower().endswith(_LAST_WORDS):
            return True
        colon = report.find(":", colon + 1)
    return False


_may_have_header = may_have_header  # the name tests/cxr/test_real_data.py checks


def section_for(label: str) -> str | None:
    """The section a header label names ("Clinical  History" -> "history"), or None."""
    return _LABELS.get(" ".join(label.lower().split()))


def section_spans(report: str) -> list[tuple[str, int, int]]:
    """``(section, start, end)`` for each labelled or unlabelled stretch of `report`, in order.

    Offsets index into `report` and exclude the labels themselves; empty stretches are dropped.
    """
    spans: list[tuple[str, int, int]] = []
    section, start = FINDINGS, 0
    for match in HEADER.finditer(report) if may_have_header(report) else ():
        spans.append((section, start, match.start()))
        section = section_for(match.group(1)) or FINDINGS
        start = match.end()
    spans.append((section, start, len(report)))
    return [(name, s, e) for name, s, e in spans if report[s:e].strip(" \t\n/")]


def split_sections(report: str) -> dict[str, str]:
    """Section name -> its text (stripped); sections repeated in the report are joined.

    >>> split_sections("FINDINGS: Heart normal. IMPRESSION: No acute disease.")
    {'findings': 'Heart normal.', 'impression': 'No acute disease.'}
    """
    parts: dict[str, list[str]] = {}
    for name, start, end in section_spans(report):
        parts.setdefault(name, []).append(report[start:end].strip(" \t\n/"))
    return {name: "\n".join(texts) for name, texts in parts.items()}
