"""Report sectioning."""

from cxr.sections import split_sections


def test_it_splits_labelled_sections_case_insensitively() -> None:
    report = (
        "EXAMINATION: Chest PA and lateral.\nINDICATION: Cough.\nCOMPARISON: ___.\n"
        "FINDINGS: Heart normal.\n\nImpression: No acute disease."
    )
    assert split_sections(report) == {
        "technique": "Chest PA and lateral.",
        "history": "Cough.",
        "comparison": "___.",
        "findings": "Heart normal.",
        "impression": "No acute disease.",
    }


def test_it_finds_labels_in_the_middle_of_a_line() -> None:
    report = "Technique: Portable AP. Findings: Lungs clear. Impression: 1. NORMAL."
    assert split_sections(report) == {
        "technique": "Portable AP.",
        "findings": "Lungs clear.",
        "impression": "1. NORMAL.",
    }


def test_it_puts_unlabelled_text_in_findings() -> None:
    assert split_sections("Heart normal. No effusion.") == {
        "findings": "Heart normal. No effusion."
    }


def test_it_drops_empty_sections() -> None:
    assert split_sections("Findings: / Impression: STABLE.") == {"impression": "STABLE."}


def test_it_does_not_take_words_inside_sentences_for_labels() -> None:
    assert split_sections("Compared with the prior findings: stable.") == {
        "findings": "Compared with the prior findings: stable."
    }


def test_it_finds_labels_spaced_from_their_colon_and_spread_over_lines() -> None:
    report = "FINDINGS      \t: Lungs clear. Clinical\n  History : cough. **Heart**: normal."
    assert split_sections(report) == {
        "findings": "Lungs clear.",
        "history": "cough. **Heart**: normal.",
    }


def test_it_leaves_text_with_colons_but_no_labels_whole() -> None:
    text = "**Heart**: normal. Step 1: look at the lungs. Ratio 1:2."
    assert split_sections(text) == {"findings": text}
