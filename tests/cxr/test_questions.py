"""Question and answer parsing on hand-written questions in the shapes real case files use."""

import pytest

from cxr.questions import Option, ParsedQuestion, parse_answer, parse_question

INSTRUCTION = "Let's think step by step. Enclose the answer within <answer></answer>."
EFFUSION_EDEMA_FRACTURE = [
    Option("A", "Pleural effusion"),
    Option("B", "Edema"),
    Option("C", "Fracture"),
]


def test_it_parses_lettered_options_after_an_inline_label() -> None:
    parsed = parse_question("Does this chest X-ray show edema? Options:\nA) Yes\nB) No")
    assert parsed == ParsedQuestion(
        "Does this chest X-ray show edema?", [Option("A", "Yes"), Option("B", "No")]
    )


def test_it_keeps_the_instruction_after_the_options_in_the_stem() -> None:
    parsed = parse_question(
        f"Which finding is shown? Options:\nA) Edema\nB) Fracture\n{INSTRUCTION}"
    )
    assert parsed.stem == f"Which finding is shown?\n{INSTRUCTION}"
    assert parsed.keys == ["A", "B"]


@pytest.mark.parametrize(
    "lines",
    ["A. Edema\nB. Fracture", "(A) Edema\n(B) Fracture", "a) Edema\nb) Fracture"],
)
def test_it_reads_other_letter_styles(lines: str) -> None:
    parsed = parse_question(f"Which finding?\nOptions:\n{lines}")
    assert parsed == ParsedQuestion(
        "Which finding?", [Option("A", "Edema"), Option("B", "Fracture")]
    )


def test_it_letters_unlettered_options_in_order() -> None:
    parsed = parse_question("Which findings? Options:\nedema, fracture\ncardiomegaly\nlung opacity")
    assert parsed.stem == "Which findings?"
    assert parsed.options == [
        Option("A", "edema, fracture"),
        Option("B", "cardiomegaly"),
        Option("C", "lung opacity"),
    ]


def test_it_stops_unlettered_options_at_an_instruction() -> None:
    parsed = parse_question(f"Which finding? Options:\nEdema\nFracture\n{INSTRUCTION}")
    assert [option.text for option in parsed.options] == ["Edema", "Fracture"]
    assert parsed.stem.endswith(INSTRUCTION)


def test_it_reads_options_written_on_one_line() -> None:
    parsed = parse_question("Is there edema? Options: A) Yes B) No")
    assert parsed == ParsedQuestion("Is there edema?", [Option("A", "Yes"), Option("B", "No")])


def test_it_leaves_open_questions_without_options() -> None:
    parsed = parse_question(f"Which findings are in this chest X-ray?\n{INSTRUCTION}")
    assert parsed.options == []
    assert parsed.stem.startswith("Which findings are in this chest X-ray?")


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("B", ["B"]),
        ("<answer> B </answer>", ["B"]),
        ("<think>Edema is absent.</think><answer>C</answer>", ["C"]),
        ("A, C", ["A", "C"]),
        ("C, A", ["A", "C"]),
        ("AC", ["A", "C"]),
        ("A and C", ["A", "C"]),
        ("['A', 'C']", ["A", "C"]),
        (["C", "A"], ["A", "C"]),
        ("(B)", ["B"]),
        ("B) Edema", ["B"]),
        ("Answer: B", ["B"]),
        ("The answer is B.", ["B"]),
        ("Edema", ["B"]),
        ("pleural effusion.", ["A"]),
        ("Pleural effusion and fracture", ["A", "C"]),
    ],
)
def test_it_normalises_answers_to_sorted_letters(
    answer: str | list[str], expected: list[str]
) -> None:
    assert parse_answer(answer, EFFUSION_EDEMA_FRACTURE) == expected


def test_it_matches_whole_option_texts_before_splitting_on_commas() -> None:
    options = [Option("A", "edema, fracture"), Option("B", "lung opacity, edema")]
    assert parse_answer("lung opacity, edema", options) == ["B"]


def test_it_prefers_an_option_text_to_reading_letters() -> None:
    options = [Option("A", "Support Devices"), Option("B", "No Finding")]
    assert parse_answer("No Finding", options) == ["B"]
    assert parse_answer("NO", [Option("A", "Yes"), Option("B", "No")]) == ["B"]


def test_it_returns_the_text_of_open_answers() -> None:
    assert parse_answer("<answer> edema, cardiomegaly </answer>", []) == ["edema, cardiomegaly"]
    assert parse_answer(["edema ", "cardiomegaly"], []) == ["edema", "cardiomegaly"]


@pytest.mark.parametrize("answer", ["E", "AE", "D) Edema", "['A', 'F']"])
def test_it_rejects_letters_that_are_not_options(answer: str) -> None:
    with pytest.raises(ValueError, match="but the options are A, B, C"):
        parse_answer(answer, EFFUSION_EDEMA_FRACTURE)


def test_it_rejects_answers_that_match_no_option() -> None:
    with pytest.raises(ValueError, match="matches none of the options"):
        parse_answer("Pneumonia", EFFUSION_EDEMA_FRACTURE)


def test_it_rejects_empty_answers() -> None:
    with pytest.raises(ValueError, match="empty answer"):
        parse_answer("<answer> </answer>", EFFUSION_EDEMA_FRACTURE)
    with pytest.raises(ValueError, match="empty answer"):
        parse_answer("  ", [])
