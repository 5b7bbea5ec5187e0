"""Loading checkpoints from disk for the stages (no hub access is assumed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.processors import load_processor


def torch_dtype(name: str | None) -> Any:
    """A `ModelConfig.dtype` name ("bfloat16", "float32", "auto") as from_pretrained takes it."""
    import torch

    if name in (None, "auto"):
        return "auto"
    return getattr(torch, name)


def load_vlm(model_args: Any) -> tuple[Any, Any]:
    """(model, processor) for an ``AutoModelForImageTextToText`` checkpoint (TRL's `ModelConfig`)."""
    from transformers import AutoModelForImageTextToText

    kwargs: dict[str, Any] = {"revision": model_args.model_revision}
    if model_args.attn_implementation:
        kwargs["attn_implementation"] = model_args.attn_implementation
    model = AutoModelForImageTextToText.from_pretrained(
        model_args.model_name_or_path, dtype=torch_dtype(model_args.dtype), **kwargs
    )
    processor = load_processor(model_args.model_name_or_path, revision=model_args.model_revision)
    return model, processor


def save_final(trainer: Any, run_dir: Path, processor: Any) -> None:
    """Save the trained model so the run folder loads with ``from_pretrained`` as it is.

    A LoRA run's adapter is merged into the saved model (the adapter alone is kept under
    ``adapter/``): the next stage (GRPO after SFT, the PRM judge) reads a plain checkpoint.
    """
    from peft import PeftModel

    if isinstance(trainer.model, PeftModel):
        trainer.save_model(str(run_dir / "adapter"))
        if trainer.args.should_save:
            trainer.model.merge_and_unload().save_pretrained(str(run_dir))
    else:
        trainer.save_model(str(run_dir))
    if trainer.args.should_save:
        processor.save_pretrained(str(run_dir))
