"""The observation vocabulary."""

import pytest

from cxr.vocabulary import (
    CHEXPERT,
    OBSERVATIONS,
    PLEURAL_EFFUSION,
    SUPPORT_DEVICES,
    ancestors,
    canonical,
    required_substrings,
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


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        (r"\b(?:chest tubes?|pleural (?:drain|tube)s?)\b", {"chest tube", "pleural "}),
        (r"(?:hydro)?pneumothora(?:x|ces)", {"pneumothora"}),
        (r"(?<!soft tissue )densit(?:y|ies)", {"densit"}),
        (r"air[- ]?space (?:disease|process)", {"disease", "process"}),
        (r"(?:ab)+c?", {"ab"}),
        (r"x?", None),  # nothing is required
        (r"a|", None),  # one branch requires nothing
        (r"(?i)abc", None),  # the words would need case folding
    ],
)
def test_it_reads_the_words_a_pattern_requires(pattern: str, words: set[str] | None) -> None:
    found = required_substrings(pattern)
    assert (set(found) if found is not None else None) == words


def test_it_screens_every_observation_by_words_its_mentions_contain() -> None:
    for observation in OBSERVATIONS.values():
        assert observation.keywords, observation.name
    # Terms are read one by one: the parser shares the prefix of "fractur|fx" out as "f".
    assert required_substrings(r"fractur\w*|fx") == {"f"}
    assert OBSERVATIONS["Fracture"].keywords == {"fractur", "fx"}


@pytest.mark.parametrize(
    "text",
    [
        "small bilateral pleural effusions",
        "enlarged cardiac silhouette",
        "ng tube in the stomach; dobhoff",
        "hydropneumothorax at the apex",
        "blunted left cp angle",
        "interval increase in air-space disease",
        "cardiomediastinal silhouette is widened",
        "a guidewire and pacing wires",
    ],
)
def test_it_finds_a_keyword_wherever_a_pattern_matches(text: str) -> None:
    matched = 0
    for observation in OBSERVATIONS.values():
        for pattern in (observation.pattern, observation.anatomy_pattern):
            if pattern is None or not pattern.search(text):
                continue
            matched += 1
            assert observation.keywords is not None
            assert any(word in text for word in observation.keywords), observation.name
    assert matched


def test_it_does_not_count_mass_effect_or_reference_lines() -> None:
    assert OBSERVATIONS["Mass"].pattern is not None
    assert not OBSERVATIONS["Mass"].pattern.search("mass effect on the trachea")
    devices = OBSERVATIONS[SUPPORT_DEVICES].pattern
    assert devices is not None
    assert not devices.search("visceral pleural line; kerley b lines; mid-sternal line")
    assert devices.search("right picc line")
