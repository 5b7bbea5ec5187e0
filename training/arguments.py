"""The config dataclass every stage shares: which snapshot to read and how much of it.

Stage-specific settings live beside their stage (`training.prm.PRMConfig`,
`training.grpo.RewardArguments`); trainer settings are TRL's own (`SFTConfig`, `GRPOConfig`) and
the model's are TRL's `ModelConfig`. Values come from the defaults, then the YAML file given with
``--config``, then ``--key value`` flags (`trl.TrlParser`).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SnapshotArguments:
    snapshot_dir: str | None = field(
        default=None,
        metadata={
            "help": "Export snapshot folder (with manifest.json and sft/, prm/, grpo/ files)."
        },
    )
    train_split: str = field(default="train", metadata={"help": "Split to train on."})
    eval_split: str | None = field(
        default="validation",
        metadata={
            "help": "Split to evaluate on; empty or missing from the snapshot: no evaluation."
        },
    )
    max_train_rows: int | None = field(
        default=None, metadata={"help": "Read at most this many training rows (smoke runs)."}
    )
    max_eval_rows: int | None = field(
        default=None, metadata={"help": "Read at most this many evaluation rows."}
    )
    verify_snapshot: bool = field(
        default=True,
        metadata={"help": "Check the data files against the manifest's sha256 before training."},
    )

    def __post_init__(self) -> None:
        if self.eval_split in {"", "none", "None"}:
            self.eval_split = None
