"""GRPO with format, answer and process rewards: ``python -m training grpo --config FILE``.

TRL's `GRPOTrainer` on the snapshot's ``grpo`` files (conversational ``prompt`` + ``images``; the
``answer``, ``options``, ``reference_steps`` and ``reference_findings`` columns reach the reward
functions of `training.rewards` as keyword arguments). Which rewards, and their weights, come from
``reward_funcs`` and TRL's ``reward_weights``; the process reward's judge from ``process_judge``.
Generation through vLLM with TRL's ``use_vllm`` (and ``vllm_mode``) where vLLM is installed.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass, field
from typing import Any

from trl import GRPOConfig, GRPOTrainer, ModelConfig, TrlParser, get_peft_config

from training.arguments import SnapshotArguments
from training.data import Snapshot, SnapshotError, drop_rows_without_images, load_split
from training.models import load_vlm, save_final
from training.rewards import (
    JUDGES,
    LLMJudge,
    OfflineJudge,
    PRMJudge,
    ProcessReward,
    accuracy_reward,
    format_reward,
)
from training.runs import ProvenanceCallback, resume_checkpoint, start_run

STAGE = "grpo"
REWARDS = ("format", "accuracy", "process")


@dataclass
class RewardArguments:
    reward_funcs: list[str] = field(
        default_factory=lambda: list(REWARDS),
        metadata={"help": f"Rewards, in the order of reward_weights: any of {', '.join(REWARDS)}."},
    )
    accuracy_partial_credit: bool = field(
        default=False,
        metadata={"help": "Several-letter answers: Jaccard overlap instead of all-or-nothing."},
    )
    process_judge: str = field(
        default="offline",
        metadata={"help": f"Who scores the reasoning steps: {', '.join(JUDGES)}."},
    )
    process_only_when_correct: bool = field(
        default=False,
        metadata={
            "help": "Process reward only for completions whose answer is right (the paper's choice)."
        },
    )
    prm_model_path: str | None = field(
        default=None,
        metadata={"help": "process_judge=prm: the folder written by `python -m training prm`."},
    )
    prm_aggregation: str = field(
        default="mean",
        metadata={"help": "process_judge=prm: mean, min or prod of the step scores."},
    )
    prm_device: str | None = field(
        default=None,
        metadata={"help": "process_judge=prm: device for the PRM (default: cuda if any)."},
    )
    llm_judge_base_url: str | None = field(
        default=None,
        metadata={
            "help": "process_judge=llm: OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1."
        },
    )
    llm_judge_model: str | None = field(
        default=None, metadata={"help": "process_judge=llm: model name the endpoint serves."}
    )
    llm_judge_api_key_env: str = field(
        default="OPENAI_API_KEY",
        metadata={
            "help": "process_judge=llm: environment variable holding the API key (never the key)."
        },
    )
    llm_judge_timeout: float = field(default=60.0, metadata={"help": "Seconds per judge request."})
    llm_judge_max_workers: int = field(
        default=8, metadata={"help": "Judge requests in flight at once."}
    )

    def __post_init__(self) -> None:
        unknown = [name for name in self.reward_funcs if name not in REWARDS]
        if unknown or not self.reward_funcs:
            raise ValueError(f"reward_funcs: unknown {unknown}; choose from {', '.join(REWARDS)}")
        if self.process_judge not in JUDGES:
            raise ValueError(f"process_judge must be one of {', '.join(JUDGES)}")
        if "process" in self.reward_funcs:
            if self.process_judge == "prm" and not self.prm_model_path:
                raise ValueError("process_judge=prm needs prm_model_path")
            if self.process_judge == "llm" and not (
                self.llm_judge_base_url and self.llm_judge_model
            ):
                raise ValueError("process_judge=llm needs llm_judge_base_url and llm_judge_model")


def make_parser() -> TrlParser:
    return TrlParser((SnapshotArguments, RewardArguments, GRPOConfig, ModelConfig))


def make_judge(reward_args: RewardArguments) -> Any:
    if reward_args.process_judge == "prm":
        return PRMJudge(
            str(reward_args.prm_model_path),
            aggregation=reward_args.prm_aggregation,
            device=reward_args.prm_device,
        )
    if reward_args.process_judge == "llm":
        return LLMJudge(
            str(reward_args.llm_judge_base_url),
            str(reward_args.llm_judge_model),
            api_key_env=reward_args.llm_judge_api_key_env,
            timeout=reward_args.llm_judge_timeout,
            max_workers=reward_args.llm_judge_max_workers,
        )
    return OfflineJudge()


def reward_functions(reward_args: RewardArguments) -> list[Any]:
    """The reward callables, in the order of `reward_funcs` (and of TRL's `reward_weights`)."""
    functions: list[Any] = []
    for name in reward_args.reward_funcs:
        if name == "format":
            functions.append(format_reward)
        elif name == "accuracy":
            # functools.partial keeps the name TRL logs: "accuracy_reward".
            functions.append(
                functools.partial(
                    accuracy_reward, partial_credit=reward_args.accuracy_partial_credit
                )
                if reward_args.accuracy_partial_credit
                else accuracy_reward
            )
        else:
            functions.append(
                ProcessReward(
                    make_judge(reward_args), only_when_correct=reward_args.process_only_when_correct
                )
            )
    return functions


def check_generation_backend(args: GRPOConfig) -> None:
    """Fail before loading anything when vLLM generation is asked for but vLLM is missing."""
    if args.use_vllm and importlib.util.find_spec("vllm") is None:
        raise RuntimeError(
            "use_vllm is set but vLLM is not installed here: install vllm on the GPU machine "
            "(and start `trl vllm-serve` for vllm_mode=server), or drop --use_vllm"
        )


def train(
    data_args: SnapshotArguments,
    reward_args: RewardArguments,
    args: GRPOConfig,
    model_args: ModelConfig,
) -> GRPOTrainer:
    """Run GRPO to the end (or resume it) and save the final model; returns the trainer."""
    if not model_args.model_name_or_path:
        raise ValueError("no model: give --model_name_or_path or model_name_or_path in the config")
    if not data_args.snapshot_dir:
        raise SnapshotError("no snapshot: give --snapshot_dir or snapshot_dir in the config")
    if args.reward_weights is not None and len(args.reward_weights) != len(
        reward_args.reward_funcs
    ):
        raise ValueError(
            f"reward_weights has {len(args.reward_weights)} values for "
            f"{len(reward_args.reward_funcs)} reward_funcs ({', '.join(reward_args.reward_funcs)})"
        )
    check_generation_backend(args)
    snapshot = Snapshot.open(data_args.snapshot_dir)
    if data_args.verify_snapshot:
        snapshot.verify(STAGE)
    train_dataset = load_split(
        snapshot, STAGE, data_args.train_split, max_rows=data_args.max_train_rows
    )
    eval_dataset = None
    evaluate = args.eval_strategy != "no"
    if evaluate and data_args.eval_split and snapshot.has_split(STAGE, data_args.eval_split):
        eval_dataset = load_split(
            snapshot, STAGE, data_args.eval_split, max_rows=data_args.max_eval_rows
        )
    else:
        args.eval_strategy = "no"
    train_dataset, dropped = drop_rows_without_images(train_dataset)
    data: dict[str, Any] = {
        "train_rows": len(train_dataset),
        "train_dropped_without_images": dropped,
    }
    if eval_dataset is not None:
        eval_dataset, dropped = drop_rows_without_images(eval_dataset)
        data.update(eval_rows=len(eval_dataset), eval_dropped_without_images=dropped)
    configs = (data_args, reward_args, args, model_args)
    run_dir = start_run(args.output_dir, STAGE, configs, snapshot, data, write=args.should_save)
    model, processor = load_vlm(model_args)
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=reward_functions(reward_args),
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=processor,
        peft_config=get_peft_config(model_args),
        callbacks=[ProvenanceCallback(run_dir)],
    )
    trainer.train(resume_from_checkpoint=resume_checkpoint(args.resume_from_checkpoint, run_dir))
    save_final(trainer, run_dir, processor)
    return trainer


def main(argv: list[str] | None = None) -> int:
    data_args, reward_args, args, model_args = make_parser().parse_args_and_config(argv)
    train(data_args, reward_args, args, model_args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
