"""Sentence and step splitting on hand-written radiology text."""

import pytest

from cxr.text import sentence_spans, split_sentences, split_steps, steps_from


def test_it_splits_plain_sentences() -> None:
    assert split_sentences("The heart is normal. No effusion! Pneumothorax?") == [
        "The heart is normal.",
        "No effusion!",
        "Pneumothorax?",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "Discussed with Dr. ___ by phone.",
        "Edema vs. pneumonia in the right base.",
        "Tube tip approx. 4 cm above the carina.",
        "Devices, e.g. the pacemaker, are unchanged.",
        "The tube is well placed, i.e. in the mid trachea.",
        "No. 5 sternal wire is fractured.",
        "The nodule measures 1.5 cm in diameter.",
        "The nodule measures 2 cm. in diameter.",
        "Called at 2:15 p.m. on ___ by telephone.",
    ],
)
def test_it_keeps_abbreviations_and_decimals_inside_a_sentence(text: str) -> None:
    assert split_sentences(text) == [text]


def test_it_ends_a_sentence_after_a_unit_when_a_capital_follows() -> None:
    assert split_sentences("The nodule measures 2 cm. The heart is normal.") == [
        "The nodule measures 2 cm.",
        "The heart is normal.",
    ]


def test_it_ends_a_sentence_after_a_deidentification_mark() -> None:
    assert split_sentences("Compared to ___. Findings are stable.") == [
        "Compared to ___.",
        "Findings are stable.",
    ]


def test_it_drops_list_numbering() -> None:
    text = "Impression: 1. Tube 5.3 cm above the carina. 2) Small left effusion. (3) No edema."
    assert split_sentences(text) == [
        "Tube 5.3 cm above the carina.",
        "Small left effusion.",
        "No edema.",
    ]


def test_it_splits_numbering_written_without_a_space() -> None:
    assert split_sentences("1.STABLE CARDIOMEGALY. 2.NO EFFUSION.") == [
        "STABLE CARDIOMEGALY.",
        "NO EFFUSION.",
    ]


def test_it_splits_a_running_list_whose_items_lack_full_stops() -> None:
    assert split_sentences("1. LOW LUNG VOLUMES 2. MILD CARDIOMEGALY") == [
        "LOW LUNG VOLUMES",
        "MILD CARDIOMEGALY",
    ]


def test_it_keeps_a_number_that_ends_a_sentence() -> None:
    assert split_sentences("The tube is at level 2. The lungs are clear.") == [
        "The tube is at level 2.",
        "The lungs are clear.",
    ]


def test_it_joins_hard_wrapped_lines_and_splits_list_lines() -> None:
    text = "The heart is\nnormal in size.\nNo effusion\n- No pneumothorax\n\nStable."
    assert split_sentences(text) == [
        "The heart is normal in size.",
        "No effusion",
        "No pneumothorax",
        "Stable.",
    ]


def test_it_drops_lone_section_labels() -> None:
    assert split_sentences("Findings: / Impression: 1. NO ACUTE DISEASE.") == ["NO ACUTE DISEASE."]


def test_it_returns_nothing_for_blank_text() -> None:
    assert split_sentences("  \n ") == []


def test_it_gives_spans_that_index_the_original_text() -> None:
    text = "IMPRESSION:\n1. No effusion.  2. Small  right\npneumothorax."
    spans = sentence_spans(text)
    assert [text[start:end] for start, end in spans] == [
        "No effusion.",
        "Small  right\npneumothorax.",
    ]


def test_it_splits_step_markers_and_strips_them() -> None:
    text = "Step 1: Look at the heart. It is large. Step 2: Look at the lungs. Step 3: Answer A."
    assert split_steps(text) == [
        "Look at the heart. It is large.",
        "Look at the lungs.",
        "Answer A.",
    ]


def test_it_splits_numbered_steps() -> None:
    assert split_steps("1. Heart enlarged.\n2) Lungs clear.\n3. So the answer is A.") == [
        "Heart enlarged.",
        "Lungs clear.",
        "So the answer is A.",
    ]


def test_it_splits_unnumbered_chains_into_sentences() -> None:
    text = "First assess the heart, e.g. its size. The heart is enlarged. Therefore, A."
    assert split_steps(text) == [
        "First assess the heart, e.g. its size.",
        "The heart is enlarged.",
        "Therefore, A.",
    ]


def test_it_keeps_text_around_a_numbered_list_as_steps() -> None:
    text = (
        "Plan:\n\n1. **Ribs**: check them.\n2. **Lungs**: check.\n\nApplying this:\n- Ribs intact."
    )
    assert split_steps(text) == [
        "Plan:",
        "**Ribs**: check them.",
        "**Lungs**: check.",
        "Applying this:",
        "Ribs intact.",
    ]


def test_it_normalises_chains_given_as_list_string_or_object() -> None:
    assert steps_from(["Step 1: Heart large.", "", " 2. Lungs clear. "]) == [
        "Heart large.",
        "Lungs clear.",
    ]
    assert steps_from("Heart large. Lungs clear.") == ["Heart large.", "Lungs clear."]
    assert steps_from({"steps": ["Heart large."]}) == ["Heart large."]
    assert steps_from({"reason_steps": "Heart large."}) == ["Heart large."]


def test_it_rejects_chains_it_cannot_read() -> None:
    with pytest.raises(ValueError, match="keys"):
        steps_from({"unexpected": "x"})
    with pytest.raises(ValueError, match="text"):
        steps_from(42)


ONE_SENTENCE_AND_MORE = [
    "No pneumothorax.",
    "No pneumothorax",
    "  The heart size is normal.  ",
    "Tube 5.3 cm above the carina.",
    "**Heart**: normal size",
    "Findings: none",
    "FINDINGS:",
    "Is there an effusion?",
    "Measures 2 cm. in diameter",
    "Dr. Smith was paged",
    "1. No effusion",
    "No effusion 2) stable",
    'He said "no effusion." Then left',
    "No effusion. Stable heart.",
    "No effusion.\nStable heart.",
    "e.g. effusion",
    "___",
    "",
    "   ",
    "(see above).",
    "Effusion?\tNo.",
]


@pytest.mark.parametrize("text", ONE_SENTENCE_AND_MORE)
def test_the_one_sentence_shortcut_cuts_as_the_full_pass(text: str) -> None:
    from cxr.text import _all_sentence_spans

    assert sentence_spans(text) == _all_sentence_spans(text)
