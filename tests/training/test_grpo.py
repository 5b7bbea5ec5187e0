"""GRPO on the snapshot's prompts with format, accuracy and process rewards (all three judges)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("trl")

from tests.training.conftest import FakeJudgeServer, stage_argv  # noqa: E402
from training import grpo  # noqa: E402
from training.runs import read_run  # noqa: E402


def _parse(tiny: Any, snapshot: Path, out: Path, *extra: str) -> Any:
    return grpo.make_parser().parse_args_and_config(stage_argv("grpo", tiny, snapshot, out, *extra))


def _logged(trainer: Any) -> list[dict[str, float]]:
    return [entry for entry in trainer.state.log_history if "reward" in entry]


def test_it_runs_grpo_steps_and_logs_every_reward(
    tiny: Any, snapshot_dir: Path, tmp_path: Path
) -> None:
    trainer = grpo.train(*_parse(tiny, snapshot_dir, tmp_path))
    assert trainer.state.global_step == 2
    for entry in _logged(trainer):
        for name in ("format_reward", "accuracy_reward", "process_offline"):
            assert f"rewards/{name}/mean" in entry
        assert "kl" in entry and "completions/mean_length" in entry
    run = read_run(tmp_path)
    assert run["stage"] == "grpo"
    assert (tmp_path / "checkpoint-2" / "config.yaml").is_file()


def test_it_rewards_an_sft_model_with_the_prm_judge_and_weights_the_rewards(
    tiny: Any, snapshot_dir: Path, sft_run: Any, prm_run: Any, tmp_path: Path
) -> None:
    sft_dir, _ = sft_run
    prm_dir, _ = prm_run
    args = _parse(
        tiny,
        snapshot_dir,
        tmp_path,
        "--model_name_or_path",
        str(sft_dir),  # memorised chains: well-formed completions
        "--max_completion_length",
        "64",
        "--process_judge",
        "prm",
        "--prm_model_path",
        str(prm_dir),
        "--prm_device",
        "cpu",
        "--reward_weights",
        "0.5",
        "1.0",
        "2.0",
        "--save_strategy",
        "no",
    )
    trainer = grpo.train(*args)
    logged = _logged(trainer)
    assert logged
    for entry in logged:
        fmt = entry["rewards/format_reward/mean"]
        acc = entry["rewards/accuracy_reward/mean"]
        process = entry["rewards/process_prm/mean"]
        assert entry["reward"] == pytest.approx(0.5 * fmt + 1.0 * acc + 2.0 * process, abs=1e-5)
    assert max(e["rewards/format_reward/mean"] for e in logged) > 0  # the SFT taught the format
    assert max(e["rewards/process_prm/mean"] for e in logged) > 0


def test_it_scores_reasoning_with_the_llm_judge_during_training(
    tiny: Any, snapshot_dir: Path, sft_run: Any, judge_server: FakeJudgeServer, tmp_path: Path
) -> None:
    sft_dir, _ = sft_run
    args = _parse(
        tiny,
        snapshot_dir,
        tmp_path,
        "--model_name_or_path",
        str(sft_dir),
        "--max_completion_length",
        "64",
        "--max_steps",
        "1",
        "--process_judge",
        "llm",
        "--llm_judge_base_url",
        judge_server.base_url,
        "--llm_judge_model",
        "judge-model",
        "--save_strategy",
        "no",
    )
    trainer = grpo.train(*args)
    assert judge_server.requests  # every completion with steps went to the judge
    assert "rewards/process_llm/mean" in _logged(trainer)[0]


def test_it_resumes_grpo_from_a_checkpoint(tiny: Any, snapshot_dir: Path, tmp_path: Path) -> None:
    grpo.train(*_parse(tiny, snapshot_dir, tmp_path))
    state_file = tmp_path / "checkpoint-2" / "trainer_state.json"
    state = json.loads(state_file.read_text())
    state["log_history"][0]["marker"] = "from checkpoint-2"
    state_file.write_text(json.dumps(state))
    trainer = grpo.train(
        *_parse(
            tiny,
            snapshot_dir,
            tmp_path,
            "--max_steps",
            "3",
            "--save_steps",
            "3",
            "--resume_from_checkpoint",
            "last",
        )
    )
    assert trainer.state.global_step == 3
    assert trainer.state.log_history[0].get("marker") == "from checkpoint-2"


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed")
def test_it_refuses_use_vllm_where_vllm_is_not_installed(
    tiny: Any, snapshot_dir: Path, tmp_path: Path
) -> None:
    args = _parse(tiny, snapshot_dir, tmp_path, "--use_vllm", "true")
    assert args[2].use_vllm is True  # passed through to TRL's GRPOConfig
    with pytest.raises(RuntimeError, match="vLLM is not installed"):
        grpo.train(*args)


def test_it_refuses_reward_weights_that_do_not_match_the_rewards(
    tiny: Any, snapshot_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="reward_weights has 2 values for 3 reward_funcs"):
        grpo.train(*_parse(tiny, snapshot_dir, tmp_path, "--reward_weights", "1.0", "1.0"))


def test_it_refuses_unknown_rewards_and_incomplete_judges() -> None:
    with pytest.raises(ValueError, match="unknown"):
        grpo.RewardArguments(reward_funcs=["format", "length"])
    with pytest.raises(ValueError, match="prm_model_path"):
        grpo.RewardArguments(process_judge="prm")
    with pytest.raises(ValueError, match="llm_judge_base_url"):
        grpo.RewardArguments(process_judge="llm")
    # Without the process reward, no judge settings are needed.
    grpo.RewardArguments(reward_funcs=["format", "accuracy"], process_judge="prm")


def test_it_builds_the_reward_functions_in_order(prm_run: Any) -> None:
    functions = grpo.reward_functions(
        grpo.RewardArguments(
            reward_funcs=["process", "accuracy", "format"],
            process_judge="prm",
            prm_model_path=str(prm_run[0]),
            prm_device="cpu",
            process_only_when_correct=True,
            accuracy_partial_credit=True,
        )
    )
    assert functions[0].__name__ == "process_prm" and functions[0].only_when_correct
    assert functions[1].func.__name__ == "accuracy_reward"
    assert functions[1].keywords == {"partial_credit": True}
    assert functions[2].__name__ == "format_reward"


def test_it_leaves_out_prompts_without_images_beside_prompts_with_images(
    tiny: Any, tmp_path: Path, make_snapshot: Any
) -> None:
    # TRL cannot batch prompts with and without images together: the image-less case goes,
    # and run.json says so.
    snapshot = make_snapshot(tmp_path / "snap", images_per_case=(2, 1, 1, 0))
    trainer = grpo.train(*_parse(tiny, snapshot, tmp_path / "run", "--save_strategy", "no"))
    assert trainer.state.global_step == 2
    data = read_run(tmp_path / "run")["data"]
    assert data["train_rows"] == 3 and data["train_dropped_without_images"] == 1
