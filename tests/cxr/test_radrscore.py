"""RadRScore's three components on hand-made predictions against a hand-made reference."""

import json
from pathlib import Path

import pytest

from cxr.radrscore import (
    KeyFinding,
    answer_findings,
    findings_from_steps,
    findings_from_text,
    score_reasoning,
)

REPORT = (
    "FINDINGS: Moderate left pleural effusion with adjacent atelectasis. No pneumothorax. "
    "Heart size is normal. IMPRESSION: Left effusion and atelectasis."
)
REFERENCE_STEPS = [
    "The left costophrenic angle is blunted, indicating a left pleural effusion.",
    "There is adjacent atelectasis at the left base.",
    "No pneumothorax is seen.",
    "The heart size is normal, so there is no cardiomegaly.",
]
REFERENCE = findings_from_steps(REFERENCE_STEPS)


def _names(findings: list[KeyFinding]) -> set[tuple[str, str]]:
    return {(f.observation, f.status) for f in findings}


def test_it_reads_the_reference_findings() -> None:
    assert _names(REFERENCE) == {
        ("Pleural Effusion", "present"),
        ("Atelectasis", "present"),
        ("Pneumothorax", "absent"),
        ("Cardiomegaly", "absent"),
    }


def test_a_perfect_prediction_scores_one() -> None:
    score = score_reasoning(REFERENCE_STEPS, REFERENCE, report=REPORT)
    assert (score.factuality, score.completeness, score.effectiveness, score.radrscore) == (
        1.0,
        1.0,
        1.0,
        1.0,
    )
    assert score.missed == [] and score.contradicted == [] and score.invented == []


def test_an_empty_prediction_scores_zero() -> None:
    score = score_reasoning([], REFERENCE, report=REPORT)
    assert (score.factuality, score.completeness, score.effectiveness, score.radrscore) == (
        0.0,
        0.0,
        0.0,
        0.0,
    )
    assert score.missed == REFERENCE


def test_a_prediction_that_contradicts_the_report_loses_factuality_and_effectiveness() -> None:
    steps = [
        "There is no pleural effusion.",  # the report says there is one
        "No pneumothorax is seen.",  # right
    ]
    score = score_reasoning(steps, REFERENCE, report=REPORT)
    assert score.contradicted == [KeyFinding("Pleural Effusion", "absent")]
    assert score.factuality == 0.5
    assert score.effective_steps == [False, True]
    assert score.effectiveness == 0.5
    assert score.completeness == 0.25  # only the pneumothorax is recalled


def test_a_prediction_that_invents_a_finding_loses_factuality() -> None:
    steps = [*REFERENCE_STEPS, "There is a right upper lobe mass."]  # the report never says so
    score = score_reasoning(steps, REFERENCE, report=REPORT)
    assert score.invented == [KeyFinding("Lung Lesion", "present")]
    assert score.contradicted == []
    assert score.factuality == pytest.approx(4 / 5)
    assert score.completeness == 1.0  # inventing takes nothing from recall
    assert score.effective_steps[-1] is False


def test_an_absent_finding_the_report_does_not_mention_is_factual() -> None:
    # The paper's judge: silence about an abnormality implies it is normal.
    score = score_reasoning(["There is no rib fracture."], REFERENCE, report=REPORT)
    assert score.factuality == 1.0
    assert score.invented == []


def test_a_possible_finding_recalls_a_present_one() -> None:
    score = score_reasoning(
        ["A small effusion may be present on the left."], REFERENCE, report=REPORT
    )
    assert KeyFinding("Pleural Effusion", "present") in score.matched


def test_steps_that_only_say_what_to_look_for_assert_nothing() -> None:
    steps = [
        "To determine whether there is a pneumothorax, look for a visceral pleural line.",
        "Cardiomegaly is typically assessed by the cardiothoracic ratio.",
    ]
    assert findings_from_steps(steps) == []
    score = score_reasoning(steps, REFERENCE, report=REPORT)
    # They examine observations the reference discusses: effective, and nothing invented.
    assert score.effective_steps == [True, True]
    assert score.invented == []


def test_a_step_examining_only_what_the_reference_never_discusses_is_ineffective() -> None:
    steps = [
        "Next, look for rib fractures along each rib.",  # the reference never discusses bones
        "There is a left pleural effusion.",
    ]
    score = score_reasoning(steps, REFERENCE, report=REPORT)
    assert score.effective_steps == [False, True]
    assert score.effectiveness == 0.5


def test_filler_steps_are_left_out_of_effectiveness() -> None:
    steps = ["The image is labelled AP portable.", "There is a left pleural effusion."]
    score = score_reasoning(steps, REFERENCE, report=REPORT)
    assert score.effective_steps == [None, True]
    assert score.effectiveness == 1.0


@pytest.mark.parametrize(
    "step",
    [
        "The heart is of normal size, which rules out cardiomegaly.",
        "Cardiomegaly is excluded.",
        "The cardiac silhouette is normal; cardiomegaly is therefore not present.",
        "The heart isn't enlarged.",
    ],
)
def test_it_reads_the_denials_reasoning_chains_use(step: str) -> None:
    assert KeyFinding("Cardiomegaly", "absent") in findings_from_steps([step])
    assert KeyFinding("Cardiomegaly", "present") not in findings_from_steps([step])


def test_a_heading_names_a_topic_not_a_finding() -> None:
    step = "Pneumothorax: lung markings reach the periphery, so there is no pneumothorax."
    assert findings_from_steps([step]) == [KeyFinding("Pneumothorax", "absent")]


def test_without_reference_findings_completeness_is_one() -> None:
    score = score_reasoning(["There is a left effusion."], [], report=REPORT)
    assert score.completeness == 1.0
    assert score.factuality == 1.0


def test_with_nothing_to_find_and_nothing_said_factuality_is_one() -> None:
    assert score_reasoning([], []).factuality == 1.0


def test_without_a_report_factuality_is_judged_against_the_reference() -> None:
    score = score_reasoning(["There is no pleural effusion."], REFERENCE)
    assert score.contradicted == [KeyFinding("Pleural Effusion", "absent")]


def test_it_takes_reference_findings_as_dicts() -> None:
    reference = [
        {"observation": "pleural effusion", "status": "present", "laterality": "left"},
        {"observation": "Pneumothorax", "status": "absent"},
    ]
    score = score_reasoning(["There is a left pleural effusion."], reference, report=REPORT)
    assert score.matched == [KeyFinding("Pleural Effusion", "present")]
    assert score.completeness == 0.5


def test_it_refuses_a_finding_with_an_unknown_status() -> None:
    with pytest.raises(ValueError, match="status"):
        score_reasoning([], [{"observation": "Edema", "status": "maybe-ish"}])


def test_the_answer_counts_as_a_finding() -> None:
    # "Therefore, the answer is yes" words no finding; the answer itself states one.
    question = "Does this chest X-ray show pleural effusion? Options:\nA) Yes\nB) No"
    stated = answer_findings(question, "A")
    assert stated == [KeyFinding("Pleural Effusion", "present")]
    score = score_reasoning(
        ["Therefore, the answer is yes."], REFERENCE, report=REPORT, answer=stated
    )
    assert score.matched == [KeyFinding("Pleural Effusion", "present")]


def test_it_reads_findings_from_answers_of_every_question_shape() -> None:
    single = (
        "Which finding is in this chest X-ray? Options:\nA) Edema\nB) Fracture\nC) Cardiomegaly"
    )
    assert _names(answer_findings(single, "B")) == {
        ("Fracture", "present"),
        ("Edema", "absent"),
        ("Cardiomegaly", "absent"),
    }
    assert _names(
        answer_findings("Which findings are in this chest X-ray?", "edema, fracture")
    ) == {
        ("Edema", "present"),
        ("Fracture", "present"),
    }
    assert answer_findings(single, "Z") == []  # a letter that names no option states nothing


def test_it_reads_report_findings() -> None:
    assert _names(findings_from_text(REPORT)) == {
        ("Pleural Effusion", "present"),
        ("Atelectasis", "present"),
        ("Pneumothorax", "absent"),
        ("Cardiomegaly", "absent"),
    }


# --- realism check on the paper's public outputs (skipped where absent) ----------------------

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "radrbench-dev"


@pytest.mark.skipif(not (DATA / "predictions.jsonl").exists(), reason="no radrbench-dev data")
def test_it_ranks_the_real_models_as_the_paper_does() -> None:
    from cxr.output import parse_output
    from cxr.questions import parse_question
    from cxr.text import steps_from

    cases = {}
    for line in (DATA / "cases.jsonl").read_text(encoding="utf-8").splitlines():
        case = json.loads(line)
        cases[case["case_key"]] = case
    totals: dict[str, list[float]] = {}
    for line in (DATA / "predictions.jsonl").read_text(encoding="utf-8").splitlines()[::3]:
        prediction = json.loads(line)
        case = cases[prediction["case_key"]]
        options = parse_question(case["question"]).options
        steps = parse_output(prediction["pred"], options).steps
        reference = findings_from_steps(steps_from(case["reason_steps"]))
        score = score_reasoning(steps, reference, report=case["original_report"])
        assert 0.0 <= score.radrscore <= 1.0
        totals.setdefault(prediction["model"], []).append(score.radrscore)
    means = {model: sum(values) / len(values) for model, values in totals.items()}
    assert means["chestx-reasoner-7b"] > means["gpt-4o"] > means["qwen2-vl-72b"]


# --- grain of the paper's judge: headings, sides, wording, silence ---------------------------

_CHAIN = ["There is a small left pleural effusion.", "No pneumothorax is seen."]


def test_it_reads_a_bare_heading_step_as_a_topic_not_a_finding() -> None:
    assert findings_from_steps(["Pleural Effusion", "Lung Lesion and Pneumonia:"]) == []


def test_it_contradicts_a_finding_placed_on_the_other_side() -> None:
    reference = findings_from_steps(_CHAIN)
    score = score_reasoning(
        ["There is a right pleural effusion."], reference, report="Small left pleural effusion."
    )
    assert score.contradicted == [KeyFinding("Pleural Effusion", "present")]
    assert score.factuality == 0.0 and score.completeness < 1.0


def test_it_scores_a_perfect_prediction_one_with_the_wording() -> None:
    score = score_reasoning(
        _CHAIN, findings_from_steps(_CHAIN), report=" ".join(_CHAIN), reference_steps=_CHAIN
    )
    assert (score.factuality, score.completeness, score.effectiveness) == (1.0, 1.0, 1.0)


def test_it_gives_nothing_for_a_contradicting_prediction_with_the_wording() -> None:
    score = score_reasoning(
        ["There is no pleural effusion.", "There is a pneumothorax."],
        findings_from_steps(_CHAIN),
        report=" ".join(_CHAIN),
        reference_steps=_CHAIN,
    )
    assert score.factuality == 0.0 and score.effectiveness == 0.0
    assert len(score.contradicted) == 2


def test_it_counts_invented_findings_against_factuality_with_the_wording() -> None:
    score = score_reasoning(
        [*_CHAIN, "There is a large right upper lobe mass."],
        findings_from_steps(_CHAIN),
        report=" ".join(_CHAIN),
        reference_steps=_CHAIN,
    )
    assert score.invented == [KeyFinding("Lung Lesion", "present")]
    assert 0.0 < score.factuality < 1.0 and score.completeness == 1.0


def test_it_blends_in_the_reference_wording_the_model_leaves_out() -> None:
    reference = findings_from_steps(_CHAIN)
    terse = score_reasoning(["Effusion.", "No pneumothorax."], reference, reference_steps=_CHAIN)
    full = score_reasoning(_CHAIN, reference, reference_steps=_CHAIN)
    assert terse.matched == full.matched and terse.completeness < full.completeness == 1.0


def test_it_gives_silence_the_factuality_asked_for_and_an_empty_output_none() -> None:
    reference = findings_from_steps(_CHAIN)
    filler = ["Next, examine the costophrenic angles."]
    assert score_reasoning(filler, reference).factuality == 0.0
    assert score_reasoning(filler, reference, no_findings_factuality=0.5).factuality == 0.5
    assert score_reasoning([], reference, no_findings_factuality=0.5).factuality == 0.0


def test_each_component_can_be_recomputed_from_its_parts() -> None:
    report = "Small left pleural effusion. No pneumothorax. Heart size is normal."
    reference_steps = [
        "There is a small left pleural effusion.",
        "No pneumothorax is seen.",
        "The heart size is normal.",
    ]
    score = score_reasoning(
        ["There is a left pleural effusion.", "There is a pneumothorax.", "Next, the heart."],
        findings_from_steps(reference_steps),
        report=report,
        reference_steps=reference_steps,
    )
    out = score.as_dict()
    for name in ("factuality", "completeness", "effectiveness"):
        part = out["parts"][name]
        assert sum(part["weights"].values()) == pytest.approx(1.0)
        recomputed = sum(part["weights"][k] * part["shares"][k] for k in part["weights"])
        assert out[name] == pytest.approx(recomputed)
    # The finding shares are the counts the lists explain.
    assert out["parts"]["completeness"]["shares"]["findings"] == pytest.approx(
        len(out["matched"]) / (len(out["matched"]) + len(out["missed"]))
    )
    wrong = len(out["contradicted"]) + len(out["invented"])
    assert out["parts"]["factuality"]["shares"]["findings"] == pytest.approx(
        1 - wrong / len(out["model_findings"])
    )
    counted = [flag for flag in out["effective_steps"] if flag is not None]
    assert out["effectiveness"] == pytest.approx(sum(counted) / len(counted))


def test_without_reference_text_the_findings_carry_all_the_weight() -> None:
    ref = findings_from_text("Small left pleural effusion.")
    score = score_reasoning(["There is a left effusion."], ref, report="Small left effusion.")
    assert score.parts["completeness"] == {"shares": {"findings": 1.0}, "weights": {"findings": 1.0}}
    assert score.completeness == 1.0


def test_a_step_the_reference_never_discusses_is_judged_by_the_report() -> None:
    ref = findings_from_text("Small left pleural effusion.")
    score = score_reasoning(
        ["There is a left effusion.", "There is cardiomegaly."],
        ref,
        report="Small left effusion. The heart is enlarged.",
    )
    assert score.effective_steps == [True, True]
