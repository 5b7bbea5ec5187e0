"""The findings labeler on hand-written report sentences."""

import pytest

from cxr import labeler
from cxr.labeler import ABSENT, BILATERAL, LEFT, PRESENT, RIGHT, UNCERTAIN, Finding, label_report
from cxr.text import sentence_spans


def _statuses(report: str) -> dict[str, str]:
    return {finding.observation: finding.status for finding in label_report(report)}


def _finding(report: str, observation: str) -> Finding:
    return next(f for f in label_report(report) if f.observation == observation)


@pytest.mark.parametrize(
    ("report", "observation"),
    [
        ("No pneumothorax.", "Pneumothorax"),
        ("The lungs are clear without effusion.", "Pleural Effusion"),
        ("There is no evidence of focal consolidation.", "Consolidation"),
        ("Negative for pneumothorax.", "Pneumothorax"),
        ("No pleural effusion, pneumothorax, or focal consolidation.", "Consolidation"),
        ("Pneumothorax is no longer seen.", "Pneumothorax"),
        ("The left effusion has resolved.", "Pleural Effusion"),
        ("Interval removal of the endotracheal tube.", "Endotracheal Tube"),
        ("The heart is not enlarged.", "Cardiomegaly"),
        ("Heart size is normal.", "Cardiomegaly"),
        ("Normal cardiomediastinal silhouette.", "Enlarged Cardiomediastinum"),
        ("NO ACUTE FRACTURE.", "Fracture"),
    ],
)
def test_it_reads_negations_as_absent(report: str, observation: str) -> None:
    assert _statuses(report)[observation] == ABSENT


@pytest.mark.parametrize(
    ("report", "observation"),
    [
        ("Retrocardiac opacity may represent atelectasis.", "Atelectasis"),
        ("Possible small left pleural effusion.", "Pleural Effusion"),
        ("Findings are concerning for pneumonia.", "Pneumonia"),
        ("Opacity suspicious for pneumonia.", "Pneumonia"),
        ("Atelectasis versus consolidation at the left base.", "Consolidation"),
        ("Atelectasis or pneumonia in the left lower lobe.", "Atelectasis"),
        ("A small pneumothorax is questioned.", "Pneumothorax"),
        ("Heart size is top normal.", "Cardiomegaly"),
    ],
)
def test_it_reads_hedges_as_uncertain(report: str, observation: str) -> None:
    assert _statuses(report)[observation] == UNCERTAIN


@pytest.mark.parametrize(
    "report",
    [
        "Cannot exclude pneumonia.",
        "Pneumonia cannot be excluded.",
        "Pneumonia is not ruled out.",
        "An early pneumonia can not be entirely excluded.",
    ],
)
def test_it_reads_double_negation_as_uncertain(report: str) -> None:
    assert _statuses(report)["Pneumonia"] == UNCERTAIN


@pytest.mark.parametrize(
    "report",
    [
        "No change in the moderate left pleural effusion.",
        "No significant change in the small pleural effusion.",
        "The pleural effusion has not significantly changed.",
        "Pleural effusion without interval change.",
    ],
)
def test_it_reads_pseudo_negation_as_present(report: str) -> None:
    assert _statuses(report)["Pleural Effusion"] == PRESENT


def test_it_ends_negation_at_but_and_at_a_new_statement() -> None:
    statuses = _statuses("No pneumothorax but a small effusion. No edema, small left effusion.")
    assert statuses["Pneumothorax"] == ABSENT
    assert statuses["Edema"] == ABSENT
    assert statuses["Pleural Effusion"] == PRESENT


def test_it_does_not_carry_uncertainty_from_one_finding_to_the_one_it_explains() -> None:
    statuses = _statuses("Right basilar opacity may represent pneumonia.")
    assert statuses["Lung Opacity"] == PRESENT
    assert statuses["Pneumonia"] == UNCERTAIN


@pytest.mark.parametrize(
    ("report", "laterality"),
    [
        ("Small left pleural effusion.", LEFT),
        ("Right-sided pleural effusion.", RIGHT),
        ("Small bilateral pleural effusions.", BILATERAL),
        ("Left and right pleural effusions.", BILATERAL),
        ("Pleural effusions on both sides.", BILATERAL),
        ("Moderate pleural effusion.", None),
    ],
)
def test_it_states_laterality(report: str, laterality: str | None) -> None:
    assert _finding(report, "Pleural Effusion").laterality == laterality


def test_it_keeps_laterality_within_its_own_list_item() -> None:
    finding = _finding("No pneumothorax, small right pleural effusion.", "Pneumothorax")
    assert finding.laterality is None


def test_it_states_location() -> None:
    finding = _finding("Consolidation in the right lower lobe.", "Consolidation")
    assert (finding.laterality, finding.location) == (RIGHT, "lower lobe")


def test_it_points_at_the_evidence_sentence() -> None:
    report = "FINDINGS: Heart size is normal. Small left effusion.\nIMPRESSION: No pneumothorax."
    finding = _finding(report, "Pleural Effusion")
    assert finding.evidence == "Small left effusion."
    assert finding.span is not None
    assert report[finding.span[0] : finding.span[1]] == "Small left effusion."
    assert finding.section == "findings"


def test_it_keeps_the_strongest_mention() -> None:
    report = "FINDINGS: No effusion on the right. Possible left effusion. Small left effusion."
    finding = _finding(report, "Pleural Effusion")
    assert (finding.status, finding.evidence) == (PRESENT, "Small left effusion.")


def test_it_prefers_the_impression_as_evidence() -> None:
    report = "FINDINGS: Small left effusion. IMPRESSION: Small left pleural effusion."
    assert _finding(report, "Pleural Effusion").section == "impression"


def test_it_ignores_the_indication() -> None:
    report = "INDICATION: Evaluate for pneumonia. FINDINGS: The lungs are clear."
    assert "Pneumonia" not in _statuses(report)


def test_it_survives_deidentification_marks() -> None:
    report = "Compared to ___. No pneumothorax. Dr. ___ was told of the ___ effusion at ___."
    statuses = _statuses(report)
    assert statuses["Pneumothorax"] == ABSENT
    assert statuses["Pleural Effusion"] == PRESENT


def test_it_reads_numbered_capitalised_impressions() -> None:
    statuses = _statuses("IMPRESSION: 1.NO PNEUMOTHORAX. 2.STABLE MILD CARDIOMEGALY.")
    assert statuses["Pneumothorax"] == ABSENT
    assert statuses["Cardiomegaly"] == PRESENT


def test_it_implies_the_parent_of_an_extra() -> None:
    statuses = _statuses("Endotracheal tube 4 cm above the carina. Left rib fracture. Lung nodule.")
    assert statuses["Endotracheal Tube"] == statuses["Support Devices"] == PRESENT
    assert statuses["Rib Fracture"] == statuses["Fracture"] == PRESENT
    assert statuses["Nodule"] == statuses["Lung Lesion"] == PRESENT


def test_it_does_not_take_subcutaneous_emphysema_for_emphysema() -> None:
    assert "Emphysema" not in _statuses("Subcutaneous emphysema in the left chest wall.")


def test_it_finds_no_finding_when_nothing_abnormal_is_present() -> None:
    assert _statuses("No effusion or pneumothorax. Heart size normal.")["No Finding"] == PRESENT
    assert _statuses("Right IJ line in the SVC. Lungs clear.")["No Finding"] == PRESENT
    assert _statuses("Possible left lower lobe pneumonia.")["No Finding"] == ABSENT


def test_it_returns_only_no_finding_for_an_empty_report() -> None:
    assert [(f.observation, f.status) for f in label_report("")] == [("No Finding", PRESENT)]


def test_it_serialises_findings() -> None:
    finding = _finding("Small left effusion.", "Pleural Effusion")
    assert finding.as_dict() == {
        "observation": "Pleural Effusion",
        "status": PRESENT,
        "laterality": LEFT,
        "location": None,
        "evidence": "Small left effusion.",
        "span": [0, 20],
    }


def test_it_reads_a_question_mark_as_uncertain() -> None:
    assert _statuses("Left lower lobe pneumonia?")["Pneumonia"] == UNCERTAIN


def test_it_skips_mentions_of_past_findings() -> None:
    assert "Pneumonia" not in _statuses("Left upper lobe scarring from prior pneumonia.")
    assert (
        _statuses("Compared to prior study the effusion is larger.")["Pleural Effusion"] == PRESENT
    )


def test_it_keeps_old_fractures_which_still_show() -> None:
    assert _statuses("The left lung is clear with prior rib fractures.")["Fracture"] == PRESENT


def test_it_does_not_carry_removal_over_to_a_new_device() -> None:
    report = "Interval removal of the right port and placement of a left IJ central line."
    assert _statuses(report)["Central Line"] == PRESENT


@pytest.mark.parametrize(
    ("report", "status"),
    [
        ("This rules out pneumothorax.", ABSENT),
        ("No visible pleural line, ruling out pneumothorax.", ABSENT),
        ("The findings ruled out pneumothorax.", ABSENT),
        ("Pneumothorax is ruled out.", ABSENT),
        ("Sharp costophrenic angles, which rule out pneumothorax.", ABSENT),
        # A request, as in an indication: what to look for, not what was seen (nor denied).
        ("Portable chest to rule out pneumothorax.", UNCERTAIN),
        ("Rule out pneumothorax.", UNCERTAIN),
        ("Pneumothorax cannot be ruled out.", UNCERTAIN),
    ],
)
def test_it_reads_ruling_out_as_a_denial_and_a_request_as_uncertain(
    report: str, status: str
) -> None:
    assert _statuses(report)["Pneumothorax"] == status


def test_it_does_not_take_the_pleural_line_for_a_device() -> None:
    statuses = _statuses(
        "A visceral pleural line is seen. Kerley B lines. Mid-sternal line. "
        "Short horizontal lines at the bases. Interstitial lines."
    )
    assert "Support Devices" not in statuses
    assert _statuses("Right IJ line in the SVC.")["Support Devices"] == PRESENT


@pytest.mark.parametrize(
    ("report", "observation", "status"),
    [
        ("Pleural effusion: none.", "Pleural Effusion", ABSENT),
        ("Effusion: absent.", "Pleural Effusion", ABSENT),
        ("**Pneumothorax**: Not present.", "Pneumothorax", ABSENT),
        ("Pneumothorax, effusion: none.", "Pneumothorax", ABSENT),
        ("**Pleural Effusion**: There is no evidence of fluid.", "Pleural Effusion", ABSENT),
        ("Consolidation - none.", "Consolidation", ABSENT),
        ("Consolidation: possible, in the left base.", "Consolidation", UNCERTAIN),
        ("Pleural effusion: present.", "Pleural Effusion", PRESENT),
        ("Pleural effusion: small, on the left.", "Pleural Effusion", PRESENT),
        ("Pleural effusion: no significant change.", "Pleural Effusion", PRESENT),
    ],
)
def test_it_reads_a_finding_answered_after_a_colon(
    report: str, observation: str, status: str
) -> None:
    assert _statuses(report)[observation] == status


@pytest.mark.parametrize(
    ("report", "observation"),
    [
        ("Pneumothorax is therefore not present.", "Pneumothorax"),
        ("A pneumothorax isn't seen.", "Pneumothorax"),
        ("There isn’t a pneumothorax.", "Pneumothorax"),
        ("The effusions are no longer seen.", "Pleural Effusion"),
        ("Pneumothorax does not appear to be present.", "Pneumothorax"),
        ("There doesn't appear to be a pneumothorax.", "Pneumothorax"),
        ("Thus, pneumothorax is not diagnosed.", "Pneumothorax"),
        ("The lack of a visible pleural line argues against pneumothorax.", "Pneumothorax"),
        ("Cardiomegaly is not present, as there is no enlargement of the heart.", "Cardiomegaly"),
    ],
)
def test_it_reads_denials_with_extra_words_as_absent(report: str, observation: str) -> None:
    assert _statuses(report)[observation] == ABSENT


def test_it_reads_not_clearly_present_as_uncertain_as_chexpert_reads_not_clearly_seen() -> None:
    assert _statuses("Pleural effusion is not clearly present.")["Pleural Effusion"] == UNCERTAIN
    assert _statuses("Pleural effusion is not clearly seen.")["Pleural Effusion"] == UNCERTAIN


def test_it_does_not_take_mass_effect_for_a_lung_lesion() -> None:
    assert "Lung Lesion" not in _statuses("Mass effect on the trachea from the large effusion.")
    assert _statuses("A 3 cm left upper lobe mass.")["Lung Lesion"] == PRESENT


def test_it_keeps_no_change_in_an_enlarged_heart_present() -> None:
    assert _statuses("No change in the enlargement of the heart.")["Cardiomegaly"] == PRESENT


SENTENCES = [
    "No pneumothorax, effusion or focal consolidation.",
    "Heart size is top normal; the mediastinum is widened.",
    "Right IJ central line tip in the SVC, ET tube 4 cm above the carina, NG tube in the stomach.",
    "Old healed left rib fractures. Prior sternotomy wires.",
    "Retrocardiac opacity may represent atelectasis versus pneumonia?",
    "Hyperinflated lungs consistent with emphysema; 6 mm nodule in the right upper lobe.",
    "Blunting of the left costophrenic angle, small hiatal hernia, pleural thickening.",
    "Mild pulmonary vascular congestion and interstitial edema, cardiomegaly.",
]


def test_it_reads_the_same_with_and_without_the_keyword_screen() -> None:
    unscreened = tuple((observation, None) for observation, _ in labeler._SCREEN)
    for sentence in SENTENCES:
        lowered = sentence.lower()
        screened = labeler._read_sentence(lowered, labeler._screen(lowered))
        assert screened == labeler._read_sentence(lowered, unscreened), sentence
        assert screened, sentence


def test_it_reads_the_same_from_the_cache() -> None:
    report = " ".join(SENTENCES)
    labeler.clear_cache()
    cold = label_report(report)
    assert label_report(report) == cold
    # A cached sentence elsewhere in another report points at its own place there.
    moved = "FINDINGS: " + report
    for finding in label_report(moved):
        if finding.span is not None:
            assert moved[finding.span[0] : finding.span[1]] == finding.evidence


def test_it_lowers_each_sentence_alone_where_lowering_changes_lengths() -> None:
    report = "İ. Small left effusion."
    finding = _finding(report, "Pleural Effusion")
    assert report[finding.span[0] : finding.span[1]] == "Small left effusion."  # type: ignore[index]


@pytest.mark.parametrize(
    "report",
    [
        "No pneumothorax. Small left effusion. Heart size is top normal.",
        "FINDINGS: Lungs are clear. IMPRESSION: Possible right lower lobe pneumonia.",
        "The endotracheal tube ends 4 cm above the carina; no edema, cannot exclude atelectasis.",
        "Cardiomegaly with mild pulmonary vascular congestion. No change in the effusion.",
    ],
)
def test_a_sentence_reads_the_same_with_or_without_the_report_screen(report: str) -> None:
    lowered = report.lower()
    screen = labeler._screen(lowered)
    for start, end in sentence_spans(report):
        sentence = lowered[start:end]
        assert labeler._read_sentence(sentence, screen) == labeler._read_sentence(
            sentence, labeler._SCREEN
        )


def test_a_lone_sentence_labels_as_inside_a_report() -> None:
    labeler.clear_cache()
    alone = label_report("Small left pleural effusion.")
    labeler.clear_cache()
    within = label_report("No pneumothorax. Small left pleural effusion.")
    effusion = [f for f in within if f.observation == "Pleural Effusion"]
    assert [f for f in alone if f.observation == "Pleural Effusion"][0].status == effusion[0].status
