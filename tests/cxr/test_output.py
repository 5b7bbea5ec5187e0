"""Model output parsing on hand-written outputs in the shapes real models produce."""

import pytest

from cxr.output import ParsedOutput, is_correct, named_observations, parse_output
from cxr.questions import Option, parse_question

YES_NO = [Option("A", "Yes"), Option("B", "No")]
FINDINGS = [
    Option("A", "Cardiomegaly"),
    Option("B", "Support Devices"),
    Option("C", "Atelectasis"),
    Option("D", "Fracture"),
]


def test_it_reads_a_well_formed_output() -> None:
    text = (
        "<think>\nThe costophrenic angles are blunted.\nThere is a left pleural effusion.\n"
        "</think>\n<answer> A </answer>"
    )
    assert parse_output(text, YES_NO) == ParsedOutput(
        think="The costophrenic angles are blunted.\nThere is a left pleural effusion.",
        answer_text="A",
        letters=["A"],
        steps=["The costophrenic angles are blunted.", "There is a left pleural effusion."],
        well_formed=True,
    )


def test_it_splits_a_one_paragraph_think_into_sentences() -> None:
    parsed = parse_output("<think>No pneumothorax. The heart is normal.</think><answer>B</answer>")
    assert parsed.steps == ["No pneumothorax.", "The heart is normal."]


def test_it_reads_the_answer_of_an_untagged_output() -> None:
    text = "1. **Ribs**: intact.\n2. **Clavicles**: intact.\n\nThus, the answer is:\n\nB) No"
    parsed = parse_output(text, YES_NO)
    assert parsed.letters == ["B"]
    assert parsed.steps[:2] == ["Ribs: intact.", "Clavicles: intact."]  # markdown removed
    assert not parsed.well_formed


def test_it_takes_the_paragraph_after_a_concluding_colon() -> None:
    text = "The ribs look intact.\n\nBased on these observations, we can conclude:\n\nB) No\n\nThese steps help."
    assert parse_output(text, YES_NO).letters == ["B"]


def test_it_does_not_take_a_reasoning_line_for_an_answer() -> None:
    # A cut-off output ends mid-reasoning: "no" in it is not option B.
    parsed = parse_output("Look at the lungs.\n- There is no obvious", YES_NO)
    assert parsed.letters == []


def test_it_copes_with_a_missing_closing_think_tag() -> None:
    # Generation cut at the token limit: everything after <think> is reasoning, no answer.
    parsed = parse_output("<think>The heart is enlarged. The lungs are", FINDINGS)
    assert parsed.steps == ["The heart is enlarged.", "The lungs are"]
    assert parsed.letters == []
    assert not parsed.well_formed


def test_it_copes_with_a_missing_closing_answer_tag() -> None:
    parsed = parse_output("<think>Lines are seen.</think><answer> B", FINDINGS)
    assert parsed.answer_text == "B"
    assert parsed.letters == ["B"]
    assert not parsed.well_formed


def test_it_joins_repeated_think_blocks_and_takes_the_last_answer() -> None:
    text = (
        "<think>Step one.</think><answer>A</answer>"
        "<think>On reflection, no devices.</think><answer>C</answer>"
    )
    parsed = parse_output(text, FINDINGS)
    assert parsed.steps == ["Step one.", "On reflection, no devices."]
    assert parsed.letters == ["C"]
    assert not parsed.well_formed  # two of each tag


def test_it_reads_a_stray_closing_think_tag() -> None:
    parsed = parse_output("The mediastinum is normal.</think><answer>B</answer>", YES_NO)
    assert parsed.steps == ["The mediastinum is normal."]
    assert parsed.letters == ["B"]


def test_it_skips_an_echoed_chat_transcript() -> None:
    # The prompt itself names the tags; only the assistant turn is the model's output.
    text = (
        "system\nYou are a helpful assistant.\nuser\nDoes this chest X-ray show edema? Options:\n"
        "A) Yes\nB) No\nEnclose the reasoning within <think></think> and the answer within "
        "<answer></answer>.\nassistant\n<think> The vessels are indistinct. </think><answer> A </answer>"
    )
    parsed = parse_output(text, YES_NO)
    assert parsed.steps == ["The vessels are indistinct."]
    assert parsed.letters == ["A"]
    assert parsed.well_formed


@pytest.mark.parametrize(
    ("answer", "letters"),
    [
        ("Support Devices", ["B"]),  # the option's text instead of its letter
        ('The finding in this chest X-ray is "Support Devices."', ["B"]),
        ("B) Support Devices", ["B"]),
        ("A, C", ["A", "C"]),
        ("Option D", ["D"]),
        ("None of these", []),
    ],
)
def test_it_turns_the_answer_into_letters(answer: str, letters: list[str]) -> None:
    assert parse_output(f"<think>x</think><answer>{answer}</answer>", FINDINGS).letters == letters


def test_it_letters_options_given_as_unlettered_text() -> None:
    question = parse_question(
        "Which findings are in this chest X-ray? Options:\nedema, fracture\ncardiomegaly, lung opacity"
    )
    text = "The heart is large.\n\nThe correct option is: cardiomegaly, lung opacity"
    assert parse_output(text, question.options).letters == ["B"]


def test_it_commits_to_nothing_when_every_option_is_named() -> None:
    assert parse_output("<answer>Yes or No</answer>", YES_NO).letters == []


@pytest.mark.parametrize("text", ["", "   \n", "<think></think><answer></answer>"])
def test_it_copes_with_empty_output(text: str) -> None:
    parsed = parse_output(text, YES_NO)
    assert (parsed.think, parsed.answer_text, parsed.letters, parsed.steps) == ("", "", [], [])
    assert not parsed.well_formed


def test_it_leaves_letters_empty_for_open_questions() -> None:
    parsed = parse_output("<think>Opacity at the base.</think><answer>lung opacity</answer>")
    assert parsed.letters == []
    assert parsed.answer_text == "lung opacity"


def test_it_names_observations_of_an_open_answer() -> None:
    assert named_observations("Lung opacity, edema and pleural effusion.") == {
        "Lung Opacity",
        "Edema",
        "Pleural Effusion",
    }


def test_it_judges_answers() -> None:
    assert is_correct(parse_output("<answer>B</answer>", YES_NO), "<answer> B </answer>", YES_NO)
    assert not is_correct(parse_output("<answer>A</answer>", YES_NO), "B", YES_NO)
    assert not is_correct(parse_output("", YES_NO), "B", YES_NO)  # no answer is a wrong answer
    open_answer = parse_output("<answer>edema, lung opacity</answer>")
    assert is_correct(open_answer, "lung opacity, edema")  # order does not matter
    assert not is_correct(open_answer, "lung opacity, edema, cardiomegaly")  # one missing
