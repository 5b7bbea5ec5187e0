"""The process reward model: step labels on the right tokens, training, step-level metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("trl")

from tests.training.conftest import stage_argv  # noqa: E402
from training import prm  # noqa: E402
from training.prm import IGNORE, auroc, step_metrics, tokenize_row  # noqa: E402
from training.runs import read_run  # noqa: E402

ROW = {
    "prompt": "Does this chest X-ray show pleural effusion?",
    "completions": [
        "There is no pneumothorax.",
        "There is no pleural effusion.",
        "The answer is A.",
    ],
    "labels": [True, False, True],
}


@pytest.fixture(scope="module")
def tokenizer(tiny: Any) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny.text)


def test_it_puts_each_label_on_the_last_token_of_its_step(tokenizer: Any) -> None:
    row = tokenize_row(ROW, tokenizer, step_separator="\n")
    ids, labels = row["input_ids"], row["labels"]
    labelled = [i for i, label in enumerate(labels) if label != IGNORE]
    assert [labels[i] for i in labelled] == [1, 0, 1]  # the verdicts, in step order
    newline = tokenizer.encode("\n", add_special_tokens=False)
    assert all(ids[i] == newline[-1] for i in labelled)  # the separator closing each step
    # Between two labelled positions lies exactly one step and its separator.
    prompt_end = len(tokenizer.encode(ROW["prompt"] + "\n", add_special_tokens=False))
    starts = [prompt_end, *(i + 1 for i in labelled[:-1])]
    for start, end, step in zip(starts, labelled, ROW["completions"]):
        assert tokenizer.decode(ids[start : end + 1]) == step + "\n"
    assert tokenizer.decode(ids[:prompt_end]) == ROW["prompt"] + "\n"


def test_it_labels_only_the_last_step_when_asked(tokenizer: Any) -> None:
    labels = tokenize_row(ROW, tokenizer, train_on_last_step_only=True)["labels"]
    assert [label for label in labels if label != IGNORE] == [1]


def test_it_cuts_long_rows_and_keeps_labels_aligned(tokenizer: Any) -> None:
    full = tokenize_row(ROW, tokenizer)
    cut = tokenize_row(ROW, tokenizer, max_length=len(full["input_ids"]) - 3)
    assert cut["input_ids"] == full["input_ids"][: len(cut["input_ids"])]
    assert cut["labels"] == full["labels"][: len(cut["labels"])]
    assert [label for label in cut["labels"] if label != IGNORE] == [1, 0]  # last step cut off


def test_it_refuses_a_row_with_more_steps_than_labels(tokenizer: Any) -> None:
    with pytest.raises(ValueError, match="3 steps but 2 labels"):
        tokenize_row({**ROW, "labels": [True, False]}, tokenizer)


def test_it_keeps_minus_100_as_int64_through_datasets_map(tokenizer: Any) -> None:
    import datasets

    # Bool labels in the source: without int64 features, -100 would come back as True.
    dataset = datasets.Dataset.from_list([ROW, {**ROW, "labels": [False, False, False]}])
    args = prm.PRMConfig(output_dir="unused", use_cpu=True, report_to="none")
    tokenized = prm.tokenize_dataset(dataset, tokenizer, args)
    assert tokenized.features["labels"].feature.dtype == "int64"
    labels = tokenized[0]["labels"]
    assert labels.count(IGNORE) == len(labels) - 3
    assert [label for label in labels if label != IGNORE] == [1, 0, 1]


def test_it_computes_auroc_with_ties_and_one_class() -> None:
    assert auroc(np.array([0.9, 0.8, 0.3, 0.1]), np.array([1, 1, 0, 0])) == 1.0
    assert auroc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([1, 1, 0, 0])) == 0.0
    assert auroc(np.array([0.5, 0.5, 0.5, 0.5]), np.array([1, 0, 1, 0])) == 0.5  # all tied
    assert auroc(np.array([0.8, 0.4, 0.6]), np.array([1, 0, 0])) == 1.0
    assert np.isnan(auroc(np.array([0.2, 0.3]), np.array([1, 1])))


def test_saved_metrics_are_strict_json_even_with_one_class() -> None:
    from training.prm import json_safe

    saved = json.dumps(json_safe({"eval_auroc": float("nan"), "eval_f1": 0.5}))
    assert json.loads(saved, parse_constant=lambda name: pytest.fail(name)) == {
        "eval_auroc": None,
        "eval_f1": 0.5,
    }


def test_it_reports_step_accuracy_f1_and_auroc_on_labelled_positions_only() -> None:
    # Two rows of three positions; -100 marks the positions without a step end.
    logits = np.array(
        [
            [[9.0, 0.0], [0.0, 2.0], [0.0, 1.0]],  # step scores: correct (p~0.88), correct (p~0.73)
            [[2.0, 0.0], [0.0, 0.0], [0.0, 3.0]],  # incorrect (p~0.12), ignored, correct (p~0.95)
        ]
    )
    labels = np.array([[IGNORE, 1, 0], [0, IGNORE, 1]])
    metrics = step_metrics(logits, labels)
    assert metrics["steps"] == 4
    assert metrics["step_accuracy"] == 0.75  # the third position of row one is wrong
    assert metrics["f1"] == pytest.approx(0.8)  # correct steps: precision 2/3, recall 1
    assert metrics["f1_incorrect"] == pytest.approx(2 / 3)  # precision 1, recall 1/2
    # The ranking is still perfect: both correct steps score above both incorrect ones.
    assert metrics["auroc"] == 1.0


def test_it_learns_the_radiologists_verdicts(prm_run: Any, snapshot_dir: Path) -> None:
    out, trainer = prm_run
    results = json.loads((out / "eval_results.json").read_text())
    assert results["eval_step_accuracy"] == 1.0
    assert results["eval_f1"] == 1.0 and results["eval_f1_incorrect"] == 1.0
    assert results["eval_auroc"] == 1.0
    assert results["eval_steps"] == 14  # 2 cases x (3 verified + 4 corrected) steps
    run = read_run(out)
    assert run["stage"] == "prm" and run["snapshot"]["number"] == 7
    from transformers import AutoModelForTokenClassification

    model = AutoModelForTokenClassification.from_pretrained(out)
    assert model.config.id2label == {0: "incorrect", 1: "correct"}


def test_it_resumes_prm_training(tiny: Any, snapshot_dir: Path, tmp_path: Path) -> None:
    def run(*extra: str) -> Any:
        argv = stage_argv("prm", tiny, snapshot_dir, tmp_path, "--eval_strategy", "no", *extra)
        return prm.train(*prm.make_parser().parse_args_and_config(argv))

    run("--max_steps", "3", "--save_steps", "3", "--logging_steps", "1")
    state_file = tmp_path / "checkpoint-3" / "trainer_state.json"
    state = json.loads(state_file.read_text())
    state["log_history"][0]["marker"] = "from checkpoint-3"  # only a resumed run carries it
    state_file.write_text(json.dumps(state))
    trainer = run(
        "--max_steps",
        "5",
        "--save_steps",
        "5",
        "--logging_steps",
        "1",
        "--resume_from_checkpoint",
        "last",
    )
    assert trainer.state.global_step == 5
    assert trainer.state.log_history[0].get("marker") == "from checkpoint-3"
    assert (tmp_path / "checkpoint-5" / "run.json").is_file()


def test_it_trains_a_prm_with_lora(tiny: Any, snapshot_dir: Path, tmp_path: Path) -> None:
    argv = stage_argv(
        "prm",
        tiny,
        snapshot_dir,
        tmp_path,
        "--max_steps",
        "2",
        "--eval_strategy",
        "no",
        "--save_strategy",
        "no",
        "--use_peft",
        "true",
        "--lora_r",
        "4",
        "--lora_alpha",
        "8",
        "--lora_target_modules",
        "q_proj",
        "v_proj",
    )
    trainer = prm.train(*prm.make_parser().parse_args_and_config(argv))
    adapter = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert adapter["task_type"] == "TOKEN_CLS"
    assert "score" in adapter["modules_to_save"]  # the new head trains with the adapter
    # The run folder holds the merged model: the PRM judge loads it as a plain classifier and
    # scores steps exactly as the trained (merged) model does.
    from training.rewards import JudgeItem, PRMJudge

    item = JudgeItem(ROW["prompt"], ROW["completions"], [], [])
    judge = PRMJudge(str(tmp_path), device="cpu")
    assert not hasattr(judge.model, "peft_config")
    trained = PRMJudge.__new__(PRMJudge)
    trained.__dict__.update(judge.__dict__, model=trainer.model.eval())
    assert judge.step_probabilities([item])[0] == pytest.approx(
        trained.step_probabilities([item])[0]
    )
