"""The observation vocabulary."""

import pytest

from cxr.vocabulary import (
    CHEXPERT,
    OBSERVATIONS,
    PLEURAL_EFFUSION,
    SUPPORT_DEVICES,
    ancestors,
    canonical,
)


def test_it_holds_the_fourteen_chexpert_observations() -> None:
    assert len(CHEXPERT) == 14
    assert set(CHEXPERT) <= set(OBSERVATIONS)


def test_it_canonicalises_names() -> None:
    assert canonical("pleural effusion") == PLEURAL_EFFUSION
    assert canonical(" Support_Devices ") == SUPPORT_DEVICES


def test_it_rejects_unknown_names() -> None:
    with pytest.raises(KeyError, match="unknown observation"):
        canonical("headache")


def test_it_knows_parents_of_extras() -> None:
    assert ancestors("Endotracheal Tube") == [SUPPORT_DEVICES]
    assert ancestors(PLEURAL_EFFUSION) == []


@pytest.mark.parametrize(
    ("text", "observation"),
    [
        ("bilateral pleural effusions", PLEURAL_EFFUSION),
        ("a right picc line", "Central Line"),
        ("ng tube in the stomach", "Nasogastric Tube"),
        ("dual-lead pacemaker", "Pacemaker"),
        ("left chest tube", "Chest Tube"),
        ("small hiatal hernia", "Hernia"),
        ("a 2 cm mass", "Mass"),
    ],
)
def test_it_recognises_wording(text: str, observation: str) -> None:
    pattern = OBSERVATIONS[observation].pattern
    assert pattern is not None and pattern.search(text)


def test_it_does_not_take_pericardial_effusion_for_pleural() -> None:
    pattern = OBSERVATIONS[PLEURAL_EFFUSION].pattern
    assert pattern is not None and not pattern.search("small pericardial effusion")
