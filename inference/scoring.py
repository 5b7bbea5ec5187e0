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

import json
from dataclasses import dataclass
from typing import Any, Final, Protocol

import cxr.radrscore
from cxr import labeler
from cxr.output import ParsedOutput, is_correct, parse_output
from cxr.questions import parse_question
from cxr.radrscore import KeyFinding, answer_findings, findings_from_steps, judge_output
from inference.records import (
    answer_of,
    case_problems,
    question_of,
    reference_steps,
    report_of,
)

SCORE_FIELDS = ("accuracy", "factuality", "completeness", "effectiveness", "radrscore")
COMPONENTS = ("factuality", "completeness", "effectiveness", "radrscore")


class Judge(Protocol):
    name: str

    def problems(self, row: dict[str, Any]) -> list[str]:
        """Why the row cannot be judged (missing or malformed case fields); empty when it can."""
        ...

    def score(
        self, row: dict[str, Any], parsed: ParsedOutput, reference: list[KeyFinding]
    ) -> dict[str, Any]:
        """Components and the findings that explain them; raises on a row it cannot judge."""
        ...


class OfflineJudge:
    """Findings matched by `cxr.radrscore`: no model, hundreds of rows a second per core."""

    name = "offline"

    def problems(self, row: dict[str, Any]) -> list[str]:
        return case_problems(row)  # the report is optional: factuality falls back to findings

    def score(
        self, row: dict[str, Any], parsed: ParsedOutput, reference: list[KeyFinding]
    ) -> dict[str, Any]:
        score = judge_output(
            parsed.steps,
            reference,
            question=question_of(row),
            letters=parsed.letters,
            answer_text=parsed.answer_text,
            report=report_of(row),
            reference_steps=_case(row).steps,
        )
        return score.as_dict()


# Fields a case's reference reading depends on: the 3 models' predictions of one case share it.
_CASE_FIELDS: Final = (
    "reference_findings",
    "reason_steps",
    "reference_steps",
    "question",
    "prompt",
    "answer",
)
_CASE_CACHE_SIZE: Final = 4096  # cases; a file's predictions of one case come close together


@dataclass(frozen=True)
class _CaseReading:
    steps: list[str]  # the reference chain (`reference_steps`); read-only
    findings: tuple[KeyFinding, ...] | None  # None: the reference_findings are malformed
    error: str = ""


_CASES: dict[str, _CaseReading] = {}


def case_key(row: dict[str, Any]) -> str:
    """What a row's reference reading depends on, as one string: equal for equal cases only."""
    return json.dumps(
        [row.get(name) for name in _CASE_FIELDS], ensure_ascii=False, sort_keys=True, default=str
    )


def _case(row: dict[str, Any]) -> _CaseReading:
    """The row's reference chain and findings, read once per case (bounded cache)."""
    key = case_key(row)
    reading = _CASES.get(key)
    if reading is None:
        steps = reference_steps(row)
        try:
            reading = _CaseReading(steps, tuple(_reference_findings(row, steps)))
        except ValueError as exc:  # a malformed reference_findings entry
            reading = _CaseReading(steps, None, str(exc))
        if len(_CASES) >= _CASE_CACHE_SIZE:
            _CASES.clear()  # bounded: start afresh rather than track recency
        _CASES[key] = reading
    return reading


def clear_caches() -> None:
    """Forget every cached reading (cases, steps, sentences): to time the judge cold."""
    _CASES.clear()
    labeler.clear_cache()
    for value in vars(cxr.radrscore).values():
        if callable(getattr(value, "cache_clear", None)):
            value.cache_clear()


def reference_findings(row: dict[str, Any]) -> list[KeyFinding]:
    """The row's ``reference_findings`` when given (a `grpo` export), else read from its chain,
    with the findings its gold answer states. Raises ValueError for a malformed given one."""
    reading = _case(row)
    if reading.findings is None:
        raise ValueError(reading.error)
    return list(reading.findings)


def _reference_findings(row: dict[str, Any], steps: list[str]) -> list[KeyFinding]:
    given = row.get("reference_findings")
    if isinstance(given, list) and given:
        return [KeyFinding.coerce(f) for f in given]
    found = findings_from_steps(steps)
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
