"""Supervised fine-tuning on verified chains: ``python -m training sft --config FILE``.

TRL's `SFTTrainer` on the snapshot's ``sft`` files: conversational rows (system, user with image
placeholders and the question, assistant with ``<think> steps </think><answer> X </answer>``) and
their images. The loss counts the assistant turn only (``assistant_only_loss``); LoRA through
``use_peft`` (TRL's `ModelConfig`). Any ``AutoModelForImageTextToText`` checkpoint on disk works.
"""

from __future__ import annotations

import logging
from typing import Any

from trl import ModelConfig, SFTConfig, SFTTrainer, TrlParser, get_peft_config

from training.arguments import SnapshotArguments
from training.data import Snapshot, SnapshotError, load_split
from training.models import load_vlm, save_final
from training.runs import ProvenanceCallback, resume_checkpoint, start_run

logger = logging.getLogger(__name__)
STAGE = "sft"


def make_parser() -> TrlParser:
    return TrlParser((SnapshotArguments, SFTConfig, ModelConfig))


def datasets_for(
    data_args: SnapshotArguments, *, evaluate: bool = True
) -> tuple[Snapshot, Any, Any]:
    """(snapshot, train dataset, eval dataset or None) for a stage reading the ``sft`` files."""
    if not data_args.snapshot_dir:
        raise SnapshotError("no snapshot: give --snapshot_dir or snapshot_dir in the config")
    snapshot = Snapshot.open(data_args.snapshot_dir)
    if data_args.verify_snapshot:
        snapshot.verify(STAGE)
    train = load_split(snapshot, STAGE, data_args.train_split, max_rows=data_args.max_train_rows)
    evaluation = None
    if evaluate and data_args.eval_split and snapshot.has_split(STAGE, data_args.eval_split):
        evaluation = load_split(
            snapshot, STAGE, data_args.eval_split, max_rows=data_args.max_eval_rows
        )
    return snapshot, train, evaluation


def train(data_args: SnapshotArguments, args: SFTConfig, model_args: ModelConfig) -> SFTTrainer:
    """Run SFT to the end (or resume it) and save the final model; returns the trainer."""
    if not model_args.model_name_or_path:
        raise ValueError("no model: give --model_name_or_path or model_name_or_path in the config")
    snapshot, train_dataset, eval_dataset = datasets_for(
        data_args, evaluate=args.eval_strategy != "no"
    )
    if eval_dataset is None:
        args.eval_strategy = "no"
    data = {"train_rows": len(train_dataset), "eval_rows": len(eval_dataset) if eval_dataset else 0}
    run_dir = start_run(
        args.output_dir,
        STAGE,
        (data_args, args, model_args),
        snapshot,
        data,
        write=args.should_save,
    )
    model, processor = load_vlm(model_args)
    trainer = SFTTrainer(
        model=model,
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
    data_args, args, model_args = make_parser().parse_args_and_config(argv)
    train(data_args, args, model_args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
