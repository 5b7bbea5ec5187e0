"""Reward functions on hand-written completions, and the three process judges side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("trl")

from tests.training.conftest import CASES, FakeJudgeServer  # noqa: E402
from training.rewards import (  # noqa: E402
    JudgeItem,
    LLMJudge,
    OfflineJudge,
    PRMJudge,
    ProcessReward,
    accuracy_reward,
    format_reward,
    llm_judge_messages,
)

YES_NO = [{"key": "A", "text": "Yes"}, {"key": "B", "text": "No"}]
FOUR = [
    {"key": "A", "text": "Cardiomegaly"},
    {"key": "B", "text": "Pneumothorax"},
    {"key": "C", "text": "Edema"},
    {"key": "D", "text": "Fracture"},
]
EFFUSION = CASES[0]  # binary: pleural effusion present, no pneumothorax; answer A
REFERENCE_STEPS = EFFUSION["steps"]
REFERENCE_FINDINGS = EFFUSION["findings"]
GOOD = (
    "<think>\nThere is a small left pleural effusion.\nThere is no pneumothorax.\n</think>\n"
    "<answer>A</answer>"
)


def think(*steps: str, answer: str = "A") -> str:
    return "<think>\n" + "\n".join(steps) + "\n</think>\n<answer>" + answer + "</answer>"


def columns(count: int, **overrides: Any) -> dict[str, Any]:
    """The grpo export's extra columns for `count` completions of the effusion case, plus what
    the trainer adds (the rewards must ignore what they do not use)."""
    base = {
        "answer": ["A"] * count,
        "options": [YES_NO] * count,
        "reference_steps": [REFERENCE_STEPS] * count,
        "reference_findings": [REFERENCE_FINDINGS] * count,
        "task_type": ["binary"] * count,
        "case_id": ["case-effusion"] * count,
        "images": [[]] * count,
        "trainer_state": None,
    }
    base.update(overrides)
    return base


# --- format --------------------------------------------------------------------------------


def test_it_rewards_the_think_answer_format() -> None:
    completions = [
        GOOD,  # good format: one <think> block, then one <answer> block
        "There is a small left pleural effusion. The answer is A.",  # missing tags entirely
        "<think>\nThere is a small left pleural effusion.\n<answer>A</answer>",  # </think> missing
        "<think>\nThere is an effusion.\n</think>\n<answer></answer>",  # empty answer
        "<answer>A</answer><think>\nEffusion.\n</think>",  # tags in the wrong order
        think("Effusion.") + "<answer>B</answer>",  # a second answer block
    ]
    assert format_reward(completions) == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]


def test_it_reads_conversational_completions() -> None:
    # TRL passes conversational completions as [{"role": "assistant", "content": text}].
    completion = [{"role": "assistant", "content": GOOD}]
    structured = [{"role": "assistant", "content": [{"type": "text", "text": GOOD}]}]
    assert format_reward([completion, structured]) == [1.0, 1.0]
    assert accuracy_reward([completion, structured], **columns(2)) == [1.0, 1.0]


# --- answer accuracy -----------------------------------------------------------------------


def test_it_scores_a_single_letter() -> None:
    completions = [
        GOOD,  # right letter
        think("There is no pleural effusion.", answer="B"),  # wrong letter
        "There is a small left pleural effusion. The answer is A.",  # right, though without tags
        think("There is an effusion.", answer="A) Yes"),  # letter with its option text
        think("There is an effusion.", answer="Yes"),  # the option's text instead of its letter
        think("There is an effusion.", answer=""),  # no answer at all
    ]
    assert accuracy_reward(completions, **columns(len(completions))) == [
        1.0,
        0.0,
        1.0,
        1.0,
        1.0,
        0.0,
    ]


def test_it_scores_several_letters_all_or_nothing_or_with_partial_credit() -> None:
    completions = [
        think("Cardiomegaly.", "Edema.", answer="A, C"),  # exactly the expected letters
        think("Cardiomegaly.", "Edema.", answer="C and A"),  # same letters, other order and words
        think("Cardiomegaly.", answer="A"),  # one of the two: half right
        think("Cardiomegaly.", "Edema.", "Pneumothorax.", answer="A, B, C"),  # one letter too many
        think("Pneumothorax.", answer="B"),  # wrong letter
    ]
    kw = columns(
        len(completions), answer=["A, C"] * len(completions), options=[FOUR] * len(completions)
    )
    assert accuracy_reward(completions, **kw) == [1.0, 1.0, 0.0, 0.0, 0.0]
    partial = accuracy_reward(completions, partial_credit=True, **kw)
    assert partial == pytest.approx([1.0, 1.0, 0.5, 2 / 3, 0.0])


def test_it_scores_free_text_findings_for_open_questions() -> None:
    completions = [
        think("Cardiomegaly.", answer="Cardiomegaly and pleural effusion"),  # both, other words
        think("Cardiomegaly.", answer="Cardiomegaly"),  # one of two: F1 = 2/3
        think("Cardiomegaly.", answer="Cardiomegaly, pleural effusion, pneumothorax"),  # one extra
        think("Pneumothorax.", answer="Pneumothorax"),  # none of them
        "<think>\nCardiomegaly.\n</think>\n<answer></answer>",  # an empty answer
        # No tags: cxr.output reads the last line as the answer, as it does at evaluation.
        "The heart is enlarged.\nCardiomegaly and a pleural effusion.",
    ]
    kw = columns(len(completions), answer=["Cardiomegaly, Pleural Effusion"] * 6, options=[[]] * 6)
    assert accuracy_reward(completions, **kw) == pytest.approx([1.0, 2 / 3, 0.8, 0.0, 0.0, 1.0])


# --- process reward, offline judge ---------------------------------------------------------


def test_it_gives_full_process_reward_to_reasoning_that_matches_the_reference() -> None:
    reward = ProcessReward(OfflineJudge())
    assert reward(prompts=["q"], completions=[GOOD], **columns(1)) == [1.0]


def test_it_lowers_the_process_reward_for_a_step_that_contradicts_the_reference() -> None:
    reward = ProcessReward(OfflineJudge())
    contradicting = think(
        "There is no pleural effusion.",  # the reference says a small effusion is present
        "There is no pneumothorax.",
    )
    good, bad = reward(prompts=["q", "q"], completions=[GOOD, contradicting], **columns(2))
    assert good == 1.0
    assert bad < 0.7


def test_it_lowers_the_process_reward_for_a_step_that_invents_a_finding() -> None:
    reward = ProcessReward(OfflineJudge())
    inventing = think(
        "There is a small left pleural effusion.",
        "There is no pneumothorax.",
        "There is a displaced rib fracture.",  # nothing in the reference mentions a fracture
    )
    good, bad = reward(prompts=["q", "q"], completions=[GOOD, inventing], **columns(2))
    assert bad < good
    assert bad < 0.85


def test_it_gives_no_process_reward_without_steps() -> None:
    reward = ProcessReward(OfflineJudge())
    # Only an answer: nothing to judge.
    assert reward(prompts=["q"], completions=["<answer>A</answer>"], **columns(1)) == [0.0]


def test_it_counts_process_reward_only_when_the_answer_is_right_if_asked() -> None:
    right_reasoning_wrong_answer = think(*REFERENCE_STEPS[1:], answer="B")
    plain = ProcessReward(OfflineJudge())
    paper = ProcessReward(OfflineJudge(), only_when_correct=True)
    completions = [GOOD, right_reasoning_wrong_answer]
    assert plain(prompts=["q"] * 2, completions=completions, **columns(2)) == [1.0, 1.0]
    assert paper(prompts=["q"] * 2, completions=completions, **columns(2)) == [1.0, 0.0]


def test_it_logs_the_mean_process_score() -> None:
    logged: list[tuple[str, float]] = []
    reward = ProcessReward(OfflineJudge())
    reward(
        prompts=["q"],
        completions=[GOOD],
        log_metric=lambda n, v: logged.append((n, v)),
        **columns(1),
    )
    assert logged == [("process/offline", 1.0)]


# --- LLM judge through a loopback OpenAI-compatible server ---------------------------------


def test_it_asks_an_openai_compatible_endpoint_and_scores_its_verdicts(
    judge_server: FakeJudgeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUDGE_KEY", "secret-key")
    judge = LLMJudge(judge_server.base_url, "judge-model", api_key_env="JUDGE_KEY", max_workers=2)
    reward = ProcessReward(judge)
    completions = [
        GOOD,
        think("There is a small left pleural effusion.", "There is a large pneumothorax."),
    ]
    good, half = reward(
        prompts=[[{"role": "user", "content": "Effusion?"}]] * 2,
        completions=completions,
        **columns(2),
    )
    # GOOD: both steps are reference steps; both findings recalled -> 1.0.
    assert good == 1.0
    # One correct and one incorrect step: factuality 1/2, effectiveness 1/2, one of two
    # findings recalled -> 1/2.
    assert half == pytest.approx(0.5)
    assert len(judge_server.requests) == 2
    request = judge_server.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["authorization"] == "Bearer secret-key"
    assert request["body"]["model"] == "judge-model"
    assert request["body"]["temperature"] == 0.0
    prompt = request["body"]["messages"][-1]["content"]
    assert "Effusion?" in prompt and "Pleural Effusion: present" in prompt


def test_it_gives_none_when_the_llm_judge_replies_with_something_else(
    judge_server: FakeJudgeServer,
) -> None:
    judge_server.reply = "I think the reasoning is fine."  # no JSON: no process reward (NaN)
    judge = LLMJudge(judge_server.base_url, "judge-model")
    item = JudgeItem("q", ["There is an effusion."], REFERENCE_STEPS, REFERENCE_FINDINGS)
    assert judge.score([item]) == [None]


def test_it_raises_when_the_llm_judge_endpoint_fails(judge_server: FakeJudgeServer) -> None:
    import openai

    judge_server.status = 400
    judge = LLMJudge(judge_server.base_url, "judge-model", max_retries=0)
    item = JudgeItem("q", ["There is an effusion."], REFERENCE_STEPS, REFERENCE_FINDINGS)
    with pytest.raises(openai.APIStatusError):
        judge.score([item])


def test_it_numbers_steps_and_findings_in_the_llm_judge_prompt() -> None:
    item = JudgeItem("Effusion?", ["Step one.", "Step two."], ["Ref."], REFERENCE_FINDINGS)
    system, user = llm_judge_messages(item)
    assert system["role"] == "system" and "JSON" in system["content"]
    assert "1. Step one.\n2. Step two." in user["content"]
    assert "1. Pleural Effusion: present\n2. Pneumothorax: absent" in user["content"]


# --- the three judges agree on obvious cases -----------------------------------------------


def test_it_has_the_three_judges_agree_on_obvious_cases(
    prm_run: Any, judge_server: FakeJudgeServer
) -> None:
    prm_dir, _ = prm_run
    judges = [
        OfflineJudge(),
        PRMJudge(str(prm_dir), device="cpu"),
        LLMJudge(judge_server.base_url, "judge-model"),
    ]
    for case in CASES:
        # Obviously good: the verified chain itself. Obviously bad: the steps radiologists
        # marked incorrect (each contradicts the reference).
        good = JudgeItem(case["question"], case["steps"], case["steps"], case["findings"])
        bad = JudgeItem(case["question"], case["wrong"], case["steps"], case["findings"])
        for judge in judges:
            good_score, bad_score = judge.score([good, bad])
            assert good_score is not None and bad_score is not None
            assert good_score > bad_score, (judge.name, case["case_id"], good_score, bad_score)
            assert good_score >= 0.75, (judge.name, case["case_id"], good_score)
            assert bad_score <= 0.5, (judge.name, case["case_id"], bad_score)


def test_it_aggregates_prm_step_scores(prm_run: Any) -> None:
    prm_dir, _ = prm_run
    mixed = JudgeItem(EFFUSION["question"], [EFFUSION["wrong"][0], *EFFUSION["steps"][1:]], [], [])
    mean, low, product = (
        PRMJudge(str(prm_dir), aggregation=name, device="cpu").score([mixed])[0]
        for name in ("mean", "min", "prod")
    )
    assert product <= low <= mean  # type: ignore[operator]
    probabilities = PRMJudge(str(prm_dir), device="cpu").step_probabilities([mixed])[0]
    assert len(probabilities) == 3
    assert probabilities[0] < 0.5 < min(probabilities[1:])  # the wrong first step stands out


def test_it_rejects_an_unknown_prm_aggregation(prm_run: Any) -> None:
    with pytest.raises(ValueError, match="aggregation"):
        PRMJudge(str(Path(prm_run[0])), aggregation="median")


def test_it_keeps_its_documented_examples_true() -> None:
    import doctest

    import training.prm
    import training.rewards

    for module in (training.rewards, training.prm):
        failed, attempted = doctest.testmod(module)
        assert attempted > 0 and failed == 0, module.__name__
