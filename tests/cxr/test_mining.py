"""Question and chain building from labels: pure Python, no Django (runs with ``-p no:django``)."""

import json
from collections import Counter

import pytest

from cxr.labeler import ABSENT, PRESENT, UNCERTAIN
from cxr.mining import (
    BINARY,
    IMPROVING,
    MULTI,
    OPEN,
    PRIOR,
    SINGLE,
    STABLE,
    TASKS,
    TEMPORAL,
    WORSENING,
    LabelError,
    build_cases,
    clean_report,
    label_value,
    labels_from_report,
    labels_from_row,
    progression_from_reports,
    progression_from_row,
)
from cxr.questions import parse_answer, parse_question
from tests.conftest import SHARED_DATA

REPORT = (
    "FINDINGS: A right internal jugular central line ends in the lower SVC. The heart is enlarged. "
    "There is a small left pleural effusion. No pneumothorax. The lungs are otherwise clear.\n"
    "The osseous structures are intact.\n"
    "IMPRESSION: Cardiomegaly and small left pleural effusion. No focal consolidation."
)
NORMAL = "FINDINGS: The lungs are clear. Heart size is normal. No effusion or pneumothorax. Bones are intact."


def build(report: str = REPORT, **options):
    return build_cases(labels_from_report(clean_report(report)), key="study-1", **options)


def by_task(cases):
    return {case.task: case for case in cases}


def assert_evidence_valid(case) -> None:
    for step in case.steps:
        if step.evidence is not None:
            text = case.prior_report if step.evidence.report == PRIOR else case.report
            assert text[step.evidence.start : step.evidence.end] == step.evidence.text
            assert step.evidence.text.strip()


def test_it_builds_every_task_type_the_labels_support() -> None:
    built = build(tasks=(BINARY, SINGLE, MULTI, OPEN, TEMPORAL))
    assert set(by_task(built.cases)) == {BINARY, SINGLE, MULTI, OPEN}
    assert "prior" in built.skipped[TEMPORAL]  # no prior report, so no temporal case


def test_it_gives_the_same_cases_for_the_same_input_and_seed() -> None:
    first = [c.to_record() for c in build(seed=7).cases]
    again = [c.to_record() for c in build(seed=7).cases]
    assert json.dumps(first) == json.dumps(again)


def test_it_shuffles_options_differently_for_other_seeds() -> None:
    questions = {by_task(build(seed=seed).cases)[SINGLE].question for seed in range(12)}
    assert len(questions) > 1


def test_a_binary_question_is_yes_or_no_and_matches_the_label() -> None:
    for seed in range(20):
        case = by_task(build(seed=seed).cases)[BINARY]
        parsed = parse_question(case.question)
        assert [o.text for o in parsed.options] == ["Yes", "No"]
        assert case.question.startswith("Does this chest X-ray show ")
        target = case.observations[0]
        status = labels_from_report(clean_report(REPORT)).status(target)
        assert status != UNCERTAIN  # an equivocal label makes no yes/no question
        assert case.answer == (["A"] if status == PRESENT else ["B"])
        assert case.answer_content == ("Yes" if status == PRESENT else "No")


def test_a_single_choice_question_has_one_present_and_three_absent_options() -> None:
    labels = labels_from_report(clean_report(REPORT))
    for seed in range(20):
        case = by_task(build(seed=seed).cases)[SINGLE]
        assert len(case.options) == 4
        statuses = [labels.status(o["text"]) for o in case.options]
        assert statuses.count(PRESENT) == 1 and statuses.count(ABSENT) == 3
        answer = [o["key"] for o in case.options if labels.status(o["text"]) == PRESENT]
        assert case.answer == answer
        # The question round-trips through the importer's parser.
        assert parse_answer(case.answer[0], parse_question(case.question).options) == answer


def test_it_never_offers_a_parent_of_a_present_finding_as_absent() -> None:
    # Consolidation is a lung opacity even though the report never says "opacity".
    report = (
        "FINDINGS: Right lower lobe consolidation. No effusion. No pneumothorax. Heart size normal."
    )
    for seed in range(30):
        for case in build(report, seed=seed).cases:
            texts = " ".join(o["text"].lower() for o in case.options)
            assert "lung opacity" not in texts


def test_a_multiple_choice_question_has_exactly_one_option_with_the_present_set() -> None:
    labels = labels_from_report(clean_report(REPORT))
    present = {o.lower() for o in labels.present()}
    for seed in range(20):
        case = by_task(build(seed=seed).cases)[MULTI]
        sets = [frozenset(o["text"].split(", ")) for o in case.options]
        assert len(set(sets)) == 4 and all(len(s) == len(present) for s in sets)
        assert [o["key"] for o, s in zip(case.options, sets) if s == present] == case.answer


def test_an_open_question_has_no_options_and_lists_the_present_findings() -> None:
    case = by_task(build().cases)[OPEN]
    assert case.options == [] and case.question == "Which findings are in this chest X-ray?"
    assert case.answer == ["support devices, cardiomegaly, pleural effusion"]


def test_a_normal_report_gives_no_finding_as_the_single_choice_answer() -> None:
    built = build(NORMAL)
    case = by_task(built.cases)[SINGLE]
    assert case.answer_content == "No Finding"
    assert MULTI in built.skipped and OPEN in built.skipped


def test_a_chain_plans_examines_each_option_and_concludes() -> None:
    case = by_task(build().cases)[SINGLE]
    kinds = [step.kind for step in case.steps]
    assert kinds == ["plan", "finding", "finding", "finding", "finding", "conclusion"]
    # One step per option, in the order the question lists them.
    examined = [step.finding["observation"] for step in case.steps[1:-1]]
    assert examined == [o["text"] for o in case.options]
    assert f"{case.answer[0]}" in case.steps[-1].text and case.answer_content in case.steps[-1].text


def test_steps_carry_findings_and_valid_evidence_links() -> None:
    for seed in range(10):
        for case in build(seed=seed).cases:
            assert_evidence_valid(case)
    case = by_task(build().cases)[OPEN]
    effusion = next(
        s for s in case.steps if s.finding and s.finding["observation"] == "Pleural Effusion"
    )
    assert effusion.finding == {"observation": "Pleural Effusion", "status": PRESENT}
    assert (
        effusion.evidence.report == "current"
        and "pleural effusion" in effusion.evidence.text.lower()
    )


def test_an_unmentioned_observation_is_normal_with_the_normal_region_as_evidence() -> None:
    labels = labels_from_report(clean_report(REPORT))
    assert not labels.mentioned("Fracture")
    evidence = labels.evidence_for("Fracture")
    assert evidence.text == "The osseous structures are intact."
    # "The lungs are otherwise clear" follows an abnormality: no evidence of normal lungs.
    assert labels.evidence_for("Lung Lesion") is None


def test_wording_varies_across_seeds() -> None:
    texts = Counter()
    for seed in range(30):
        for case in build(seed=seed).cases:
            for step in case.steps:
                texts[(step.kind, step.text.split()[0])] += 1
    plan_openings = {opening for kind, opening in texts if kind == "plan"}
    conclusion_openings = {opening for kind, opening in texts if kind == "conclusion"}
    assert len(plan_openings) >= 3 and len(conclusion_openings) >= 3


def test_labels_from_a_row_read_1_0_minus_1_and_blank() -> None:
    row = {
        "study_id": "1",
        "Cardiomegaly": "1.0",
        "Pleural Effusion": "-1",
        "Pneumothorax": "0",
        "Edema": "",
    }
    labels = labels_from_row(clean_report(REPORT), row)
    assert labels.status("Cardiomegaly") == PRESENT
    assert labels.status("Pleural Effusion") == UNCERTAIN
    assert labels.status("Pneumothorax") == ABSENT and labels.mentioned("Pneumothorax")
    assert labels.status("Edema") == ABSENT and not labels.mentioned("Edema")
    # Evidence only where the labeler's sentence agrees with the file's label.
    assert (
        labels.labels["Cardiomegaly"].evidence.text
        == "Cardiomegaly and small left pleural effusion."
    )
    assert labels.labels["Pleural Effusion"].evidence is None
    assert labels.status("No Finding") == ABSENT  # derived: something abnormal is labelled


def test_it_refuses_a_bad_label_value() -> None:
    assert label_value("1.0") == PRESENT and label_value(" ") is None
    with pytest.raises(LabelError, match="use 1, 0, -1"):
        labels_from_row("", {"Edema": "yes"})
    with pytest.raises(LabelError, match="improving, stable or worsening"):
        progression_from_row({"edema_progression": "better"})


def test_a_temporal_case_compares_prior_and_current() -> None:
    prior = labels_from_report("FINDINGS: Small right pleural effusion. No pneumothorax.", "prior")
    current = labels_from_report(
        "FINDINGS: The right pleural effusion has increased. No pneumothorax."
    )
    assert progression_from_reports(current, prior) == {"Pleural Effusion": WORSENING}
    built = build_cases(current, tasks=(TEMPORAL,), prior=prior, key="s2")
    (case,) = built.cases
    assert [o["text"] for o in sorted(case.options, key=lambda o: o["text"])] == [
        "Improving",
        "Stable",
        "Worsening",
    ]
    assert case.answer_content == "Worsening"
    assert [s.kind for s in case.steps] == ["plan", "prior", "current", "compare", "conclusion"]
    assert case.steps[1].evidence.report == "prior" and case.steps[2].evidence.report == "current"
    assert case.steps[3].finding["change"] == WORSENING
    assert_evidence_valid(case)
    record = case.to_record()
    assert (
        record["original_report1"] == prior.report and record["original_report2"] == current.report
    )


def test_progression_labels_from_a_file_win_over_the_wording() -> None:
    prior = labels_from_report("FINDINGS: Mild pulmonary edema.", "prior")
    current = labels_from_report("FINDINGS: Mild pulmonary edema.")
    assert build_cases(current, tasks=(TEMPORAL,), prior=prior).cases == []  # nothing stated
    progression = progression_from_row({"study_id": "9", "edema_progression": "Stable"})
    (case,) = build_cases(current, tasks=(TEMPORAL,), prior=prior, progression=progression).cases
    assert case.answer_content == STABLE.capitalize()


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        ("The left effusion is smaller.", IMPROVING),
        ("Unchanged left pleural effusion.", STABLE),
        ("Left pleural effusion has resolved.", IMPROVING),
        ("No new pleural effusion.", None),  # an absent finding with no change stated
        ("Larger left effusion, but unchanged heart size.", WORSENING),  # per clause
    ],
)
def test_it_reads_progression_conservatively(sentence: str, expected: str | None) -> None:
    prior = labels_from_report("FINDINGS: Left pleural effusion.", "prior")
    current = labels_from_report(f"FINDINGS: {sentence}")
    assert progression_from_reports(current, prior).get("Pleural Effusion") == expected


def test_records_are_radrbench_shaped() -> None:
    record = by_task(build().cases)[MULTI].to_record(item_id="x")
    assert {
        "question",
        "answer",
        "reason_steps",
        "original_report",
        "plan",
        "steps",
        "item_id",
    } <= set(record)
    assert record["task"] == MULTI and isinstance(record["reason_steps"], list)
    assert all({"text", "finding", "evidence"} <= set(step) for step in record["steps"])


def test_it_refuses_an_unknown_task() -> None:
    with pytest.raises(ValueError, match="unknown task type"):
        build(tasks=("binary", "essay"))


@pytest.mark.skipif(
    not (SHARED_DATA / "radrbench-dev" / "cases.jsonl").exists(), reason="real data absent"
)
def test_it_mines_the_real_reports_with_valid_options_and_links() -> None:
    lines = (SHARED_DATA / "radrbench-dev" / "cases.jsonl").read_text().splitlines()
    reports = list(dict.fromkeys(json.loads(line)["original_report"] for line in lines))
    made = Counter()
    for index, report in enumerate(reports):
        labels = labels_from_report(clean_report(report))
        for case in build_cases(labels, key=str(index)).cases:
            made[case.task] += 1
            assert_evidence_valid(case)
            if case.task == SINGLE:
                assert [labels.status(o["text"]) for o in case.options].count(PRESENT) == 1
            assert case.steps[0].kind == "plan" and case.steps[-1].kind == "conclusion"
    assert made[BINARY] == len(reports) and made[SINGLE] > 0.9 * len(reports)
    assert set(made) == set(TASKS) - {TEMPORAL}
