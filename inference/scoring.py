"""Accuracy and RadRScore for prediction rows, with the offline judge or an LLM judge.

A row carries the model's ``pred`` and the case's ``question``, ``answer``, ``reason_steps`` (or
``reference_steps``/``reference_findings``) and ``original_report``: the paper's own evaluation
record shape. `score_row` returns the row with these added:

- ``parsed``: the answer text, its letters, the steps and whether the output was well formed;
- ``accuracy`` (1.0 or 0.0 by the rules of `cxr.output.is_correct`; null when the gold answer
  names no option) and ``correct``;
- ``factuality``, ``completeness``, ``effectiveness``, ``radrscore`` in [0, 1];
- ``matched``, ``missed``, ``contradicted``, ``invented``: the findings that explain them;
- ``judge``: which judge scored the row, and ``judge_error`` when it could not (scores are null).
"""

from __future__ import annotations

from typing import Any, Protocol

from cxr.output import ParsedOutput, is_correct, parse_output
from cxr.questions import parse_question
from cxr.radrscore import KeyFinding, answer_findings, findings_from_steps, score_reasoning
from inference.records import answer_of, question_of, reference_steps, report_of

SCORE_FIELDS = ("accuracy", "factuality", "completeness", "effectiveness", "radrscore")
COMPONENTS = ("factuality", "completeness", "effectiveness", "radrscore")


class Judge(Protocol):
    name: str

    def score(
        self, row: dict[str, Any], parsed: ParsedOutput, reference: list[KeyFinding]
    ) -> dict[str, Any]:
        """Components and the findings that explain them; raises on a row it cannot judge."""
        ...


class OfflineJudge:
    """Findings matched by `cxr.radrscore`: no model, hundreds of rows a second per core."""

    name = "offline"

    def score(
        self, row: dict[str, Any], parsed: ParsedOutput, reference: list[KeyFinding]
    ) -> dict[str, Any]:
        stated = answer_findings(question_of(row), parsed.letters or parsed.answer_text)
        score = score_reasoning(
            parsed.steps,
            reference,
            report=report_of(row) or None,
            answer=stated,
            reference_steps=reference_steps(row),
            answer_text=parsed.answer_text,
            no_findings_factuality=0.5,  # the paper's judge gives such outputs about that
        )
        return score.as_dict()


def reference_findings(row: dict[str, Any]) -> list[KeyFinding]:
    """The row's ``reference_findings`` when given (a `grpo` export), else read from its chain,
    with the findings its gold answer states."""
    given = row.get("reference_findings")
    if isinstance(given, list) and given:
        return [KeyFinding.coerce(f) for f in given]
    found = findings_from_steps(reference_steps(row))
    gold = answer_of(row)
    if gold:
        found += [f for f in answer_findings(question_of(row), gold) if f not in found]
    return found


def score_row(row: dict[str, Any], judge: Judge | None = None) -> dict[str, Any]:
    """The row with accuracy, RadRScore and the findings that explain it added."""
    judge = judge or OfflineJudge()
    options = parse_question(question_of(row)).options
    parsed = parse_output(str(row.get("pred") or ""), options)
    accuracy: float | None
    try:
        accuracy = float(is_correct(parsed, answer_of(row) or "", options))
    except ValueError:
        accuracy = None  # the gold answer names no option: reported, never guessed
    out = dict(row)
    out["parsed"] = {
        "answer_text": parsed.answer_text,
        "letters": parsed.letters,
        "steps": parsed.steps,
        "well_formed": parsed.well_formed,
    }
    out["accuracy"] = accuracy
    out["correct"] = None if accuracy is None else accuracy == 1.0
    out["judge"] = judge.name
    try:
        result = judge.score(row, parsed, reference_findings(row))
    except ValueError as exc:  # JudgeError, or a malformed reference_findings entry
        out.update({name: None for name in COMPONENTS})
        out["judge_error"] = str(exc)
        return out
    for name in COMPONENTS:
        result[name] = round(float(result[name]), 6)
    out.update(result)
    return out
