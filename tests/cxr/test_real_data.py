"""Realism check against the shared RadRBench dev cases; skipped where that folder is absent."""

import json
from pathlib import Path

import pytest

from cxr.questions import parse_answer, parse_question
from cxr.sections import split_sections
from cxr.text import split_sentences, steps_from

CASES = (
    Path(__file__).resolve().parents[2].parent / "shared" / "data" / "radrbench-dev" / "cases.jsonl"
)

pytestmark = pytest.mark.skipif(not CASES.exists(), reason=f"{CASES} is absent")


def _records() -> list[dict[str, object]]:
    with CASES.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def test_it_parses_every_real_question_and_answer() -> None:
    for record in _records():
        parsed = parse_question(str(record["question"]))
        letters = parse_answer(record["answer"], parsed.options)  # type: ignore[arg-type]
        assert letters, record["case_key"]
        if parsed.options and str(record["task"]).endswith(("binary", "single")):
            assert len(letters) == 1, record["case_key"]


def test_it_reads_every_real_chain_and_report() -> None:
    for record in _records():
        assert steps_from(record["reason_steps"]), record["case_key"]
        report = str(record["original_report"])
        assert split_sentences(report), record["case_key"]
        assert any(split_sections(report).values()), record["case_key"]


def test_it_screens_and_caches_real_reports_without_changing_a_reading() -> None:
    """The labeler's keyword screen and sentence cache are exact on every real report."""
    from cxr import labeler, sections

    unscreened = tuple((observation, None) for observation, _ in labeler._SCREEN)
    reports = sorted({str(record["original_report"]) for record in _records()})
    for report in reports:
        lowered = report.lower()
        screen = labeler._screen(lowered)
        for sentence in split_sentences(lowered):
            assert labeler._read_sentence(sentence, screen) == labeler._read_sentence(
                sentence, unscreened
            ), sentence
        assert sections._may_have_header(report) or not sections.HEADER.search(report)
    labeler.clear_cache()
    cold = [labeler.label_report(report) for report in reports]
    assert [labeler.label_report(report) for report in reports] == cold
