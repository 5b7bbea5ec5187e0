"""Process reward model from the radiologists' step verdicts: ``python -m training prm --config FILE``.

Reads the snapshot's ``prm`` files (TRL's stepwise supervision: ``prompt``, ``completions``: the
steps, ``labels``: one bool per step, True where the radiologist marked the step correct) and
trains a token-classification head on a text model with `transformers.Trainer`, the way TRL's
retired ``PRMTrainer`` did: the question, then each step followed by the separator; the step's
label sits on its last token (the separator's last token), every other position is -100. The
PRM reads text only: the images are not part of its input.

Evaluation on the validation split: step-level accuracy, F1 (for "correct" and for "incorrect")
and AUROC of the step score.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from transformers import TrainingArguments
from trl import ModelConfig, TrlParser, get_peft_config

from training.arguments import SnapshotArguments
from training.data import Snapshot, SnapshotError, load_split
from training.models import save_final
from training.runs import ProvenanceCallback, resume_checkpoint, start_run

STAGE = "prm"
IGNORE = -100  # positions the loss and the metrics skip
LABELS = {0: "incorrect", 1: "correct"}


@dataclass
class PRMConfig(TrainingArguments):
    """`TrainingArguments` plus how steps become tokens (TRL's former ``PRMConfig`` fields)."""

    step_separator: str = field(
        default="\n",
        metadata={"help": "Text after every step; the step's label sits on its last token."},
    )
    max_length: int | None = field(
        default=1024,
        metadata={"help": "Longest tokenized row (prompt + steps); longer rows are cut."},
    )
    max_prompt_length: int | None = field(
        default=512, metadata={"help": "Longest question; longer ones keep their end."}
    )
    max_completion_length: int | None = field(
        default=None, metadata={"help": "Longest steps part; longer ones keep their start."}
    )
    train_on_last_step_only: bool = field(
        default=False, metadata={"help": "Label only the last step (outcome supervision)."}
    )
    dataset_num_proc: int | None = field(
        default=None, metadata={"help": "Processes for tokenizing the dataset."}
    )


def make_parser() -> TrlParser:
    return TrlParser((SnapshotArguments, PRMConfig, ModelConfig))


def tokenize_row(
    row: dict[str, Any],
    tokenizer: Any,
    *,
    step_separator: str = "\n",
    max_length: int | None = None,
    max_prompt_length: int | None = None,
    max_completion_length: int | None = None,
    train_on_last_step_only: bool = False,
) -> dict[str, list[int]]:
    """Token ids and labels for one row: labels on each step's last token, -100 elsewhere.

    >>> # prompt "Q" + separator, then "a" + separator (label 1), "b" + separator (label 0):
    >>> # input_ids = [Q, \\n, a, \\n, b, \\n]; labels = [-100, -100, -100, 1, -100, 0]
    """
    separator = tokenizer.encode(step_separator, add_special_tokens=False)
    prompt = tokenizer.encode(row["prompt"], add_special_tokens=False) + separator
    if tokenizer.bos_token_id is not None and (not prompt or prompt[0] != tokenizer.bos_token_id):
        prompt = [tokenizer.bos_token_id, *prompt]
    steps = [
        tokenizer.encode(step, add_special_tokens=False) + separator for step in row["completions"]
    ]
    verdicts = [int(bool(label)) for label in row["labels"]]
    if len(verdicts) != len(steps):
        raise ValueError(f"row {row.get('id')}: {len(steps)} steps but {len(verdicts)} labels")
    if train_on_last_step_only:
        verdicts = [IGNORE] * (len(verdicts) - 1) + verdicts[-1:]
    step_labels = [[IGNORE] * (len(ids) - 1) + [label] for ids, label in zip(steps, verdicts)]
    completion = [token for ids in steps for token in ids]
    labels = [label for ids in step_labels for label in ids]
    if max_prompt_length is not None and len(prompt) > max_prompt_length:
        prompt = prompt[-max_prompt_length:]
    if max_completion_length is not None:
        completion, labels = completion[:max_completion_length], labels[:max_completion_length]
    input_ids = prompt + completion
    labels = [IGNORE] * len(prompt) + labels
    if max_length is not None:
        input_ids, labels = input_ids[:max_length], labels[:max_length]
    return {"input_ids": input_ids, "labels": labels}


def tokenize_dataset(dataset: Any, tokenizer: Any, args: PRMConfig) -> Any:
    """Map rows to ``input_ids``/``labels`` with int64 label features.

    Without explicit int64 features, `datasets` may infer the labels column from the source's
    bool ``labels`` and -100 silently becomes True.
    """
    import datasets

    features = datasets.Features(
        {
            "input_ids": datasets.List(datasets.Value("int64")),
            "labels": datasets.List(datasets.Value("int64")),
        }
    )
    return dataset.map(
        tokenize_row,
        fn_kwargs={
            "tokenizer": tokenizer,
            "step_separator": args.step_separator,
            "max_length": args.max_length,
            "max_prompt_length": args.max_prompt_length,
            "max_completion_length": args.max_completion_length,
            "train_on_last_step_only": args.train_on_last_step_only,
        },
        remove_columns=dataset.column_names,
        features=features,
        num_proc=args.dataset_num_proc,
        desc="Tokenizing steps",
    )


def json_safe(metrics: dict[str, Any]) -> dict[str, Any]:
    """Metrics as strict JSON can hold them: NaN (an AUROC of one class) becomes null.

    >>> json_safe({"eval_auroc": float("nan"), "eval_f1": 1.0})
    {'eval_auroc': None, 'eval_f1': 1.0}
    """
    return {
        name: None if isinstance(value, float) and value != value else value
        for name, value in metrics.items()
    }


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with tied ranks averaged); NaN with one class.

    >>> round(auroc(np.array([0.9, 0.8, 0.3, 0.1]), np.array([1, 1, 0, 0])), 3)
    1.0
    """
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(len(scores), dtype=float)
    sorted_scores = scores[order]
    start = 0
    while start < len(scores):  # average ranks over runs of equal scores
        end = start
        while end + 1 < len(scores) and sorted_scores[end + 1] == sorted_scores[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2 + 1
        start = end + 1
    rank_sum = ranks[labels == 1].sum()
    return float((rank_sum - positives * (positives + 1) / 2) / (positives * negatives))


def _f1(predicted: np.ndarray, actual: np.ndarray, positive: int) -> float:
    true_positive = int(((predicted == positive) & (actual == positive)).sum())
    predicted_positive = int((predicted == positive).sum())
    actual_positive = int((actual == positive).sum())
    if true_positive == 0:
        return 0.0
    precision, recall = true_positive / predicted_positive, true_positive / actual_positive
    return 2 * precision * recall / (precision + recall)


def step_metrics(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Step-level accuracy, F1 (correct / incorrect as the positive class) and AUROC."""
    mask = labels != IGNORE
    step_logits = logits[mask].astype(np.float64)  # (steps, 2)
    actual = labels[mask].astype(int)
    shifted = step_logits - step_logits.max(axis=-1, keepdims=True)
    probabilities = np.exp(shifted) / np.exp(shifted).sum(axis=-1, keepdims=True)
    predicted = probabilities.argmax(axis=-1)
    return {
        "step_accuracy": float((predicted == actual).mean()) if len(actual) else float("nan"),
        "f1": _f1(predicted, actual, 1),
        "f1_incorrect": _f1(predicted, actual, 0),
        "auroc": auroc(probabilities[:, 1], actual),
        "steps": float(len(actual)),
    }


def _compute_metrics(prediction: Any) -> dict[str, float]:
    logits = (
        prediction.predictions[0]
        if isinstance(prediction.predictions, tuple)
        else prediction.predictions
    )
    return step_metrics(np.asarray(logits), np.asarray(prediction.label_ids))


def load_token_classifier(model_args: ModelConfig) -> tuple[Any, Any]:
    """(model with a 2-label token-classification head, tokenizer) from a text checkpoint."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from training.models import torch_dtype

    tokenizer = AutoTokenizer.from_pretrained(
        model_args.model_name_or_path, revision=model_args.model_revision
    )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    kwargs: dict[str, Any] = {"revision": model_args.model_revision}
    if model_args.attn_implementation:
        kwargs["attn_implementation"] = model_args.attn_implementation
    model = AutoModelForTokenClassification.from_pretrained(
        model_args.model_name_or_path,
        num_labels=len(LABELS),
        id2label=LABELS,
        label2id={name: index for index, name in LABELS.items()},
        dtype=torch_dtype(model_args.dtype),
        **kwargs,
    )
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def train(data_args: SnapshotArguments, args: PRMConfig, model_args: ModelConfig) -> Any:
    """Train the PRM (or resume), evaluate it, save it; returns the trainer."""
    from transformers import DataCollatorForTokenClassification, Trainer

    if not model_args.model_name_or_path:
        raise ValueError("no model: give --model_name_or_path or model_name_or_path in the config")
    if not data_args.snapshot_dir:
        raise SnapshotError("no snapshot: give --snapshot_dir or snapshot_dir in the config")
    snapshot = Snapshot.open(data_args.snapshot_dir)
    if data_args.verify_snapshot:
        snapshot.verify(STAGE)
    model, tokenizer = load_token_classifier(model_args)
    train_rows = load_split(
        snapshot, STAGE, data_args.train_split, max_rows=data_args.max_train_rows, with_images=False
    )
    eval_dataset = None
    if data_args.eval_split and snapshot.has_split(STAGE, data_args.eval_split):
        eval_rows = load_split(
            snapshot,
            STAGE,
            data_args.eval_split,
            max_rows=data_args.max_eval_rows,
            with_images=False,
        )
        eval_dataset = tokenize_dataset(eval_rows, tokenizer, args)
    else:
        args.eval_strategy = "no"
    data = {
        "train_rows": len(train_rows),
        "eval_rows": len(eval_dataset) if eval_dataset is not None else 0,
    }
    run_dir = start_run(
        args.output_dir,
        STAGE,
        (data_args, args, model_args),
        snapshot,
        data,
        write=args.should_save,
    )
    peft_config = get_peft_config(model_args)
    if peft_config is not None:
        from peft import get_peft_model

        peft_config.task_type = "TOKEN_CLS"
        model = get_peft_model(model, peft_config)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=tokenize_dataset(train_rows, tokenizer, args),
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        data_collator=DataCollatorForTokenClassification(tokenizer, label_pad_token_id=IGNORE),
        compute_metrics=_compute_metrics,
        callbacks=[ProvenanceCallback(run_dir)],
    )
    trainer.train(resume_from_checkpoint=resume_checkpoint(args.resume_from_checkpoint, run_dir))
    save_final(trainer, run_dir, tokenizer)
    if eval_dataset is not None:
        metrics = trainer.evaluate()
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", json_safe(metrics))
    return trainer


def main(argv: list[str] | None = None) -> int:
    data_args, args, model_args = make_parser().parse_args_and_config(argv)
    train(data_args, args, model_args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
