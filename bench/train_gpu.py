"""GPU benchmark: a few SFT and GRPO steps on the Qwen2-VL-2B architecture, random weights, bf16.

Builds the model from Qwen2-VL-2B-Instruct's published sizes (no download: random weights, the
tokenizer of `training.tiny`, 448x448 images = 256 image tokens each), writes a small snapshot in
the export layout, then runs the same code paths as ``python -m training sft|grpo`` (TRL's
trainers, `training.data`, `training.rewards`) and prints, per stage: tokens per second, step
time (median, first step excluded) and peak GPU memory.

    python bench/train_gpu.py [--steps 6] [--sft-batch 4] [--grpo-generations 4]

Without CUDA it prints that it skipped and exits 0. ``--arch tiny`` runs the tiny model instead
(on the CPU too, in float32): a check that the script itself works, not a benchmark.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from cxr.prompts import assistant_text, conversation  # noqa: E402

# Qwen2-VL-2B-Instruct's config.json (text and vision towers).
QWEN2_VL_2B_TEXT = {
    "vocab_size": 151936,
    "hidden_size": 1536,
    "intermediate_size": 8960,
    "num_hidden_layers": 28,
    "num_attention_heads": 12,
    "num_key_value_heads": 2,
    "max_position_embeddings": 32768,
    "rms_norm_eps": 1e-6,
    "rope_parameters": {
        "rope_type": "default",
        "rope_theta": 1000000.0,
        "mrope_section": [16, 24, 24],
    },
    "tie_word_embeddings": True,
}
QWEN2_VL_2B_VISION = {
    "depth": 32,
    "embed_dim": 1280,
    "hidden_size": 1536,
    "num_heads": 16,
    "mlp_ratio": 4,
    "patch_size": 14,
    "spatial_merge_size": 2,
    "temporal_patch_size": 2,
}
IMAGE_SIDE = 448  # 32x32 patches of 14 px, 16x16 = 256 tokens after the 2x2 merge

STEPS = [
    "The cardiomediastinal silhouette is enlarged, consistent with cardiomegaly.",
    "There is a small left pleural effusion with blunting of the costophrenic angle.",
    "There is mild interstitial pulmonary edema.",
    "There is no pneumothorax.",
    "No acute osseous abnormality is seen.",
]
QUESTION = "Does this chest X-ray show pleural effusion? Options:\nA) Yes\nB) No"


def build_model(arch: str, folder: Path, dtype: Any) -> Path:
    """Save a random-weight Qwen2-VL (2B sizes, or tiny) with a processor; returns the folder."""
    import torch
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from training.processors import Qwen2VLImageOnlyProcessor
    from training.tiny import CHAT_TEMPLATE, build_tiny, build_tokenizer

    if arch == "tiny":
        return build_tiny(folder).vlm
    tokenizer = build_tokenizer()
    ids = tokenizer.convert_tokens_to_ids
    config = Qwen2VLConfig(
        text_config={
            **QWEN2_VL_2B_TEXT,
            "bos_token_id": ids("<|endoftext|>"),
            "eos_token_id": ids("<|im_end|>"),
            "pad_token_id": ids("<|endoftext|>"),
        },
        vision_config=QWEN2_VL_2B_VISION,
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = Qwen2VLForConditionalGeneration(config).to(dtype)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    out = folder / "qwen2-vl-2b-random"
    model.save_pretrained(out)
    pixels = IMAGE_SIDE * IMAGE_SIDE
    image_processor = Qwen2VLImageProcessorPil(min_pixels=pixels, max_pixels=pixels)
    Qwen2VLImageOnlyProcessor(
        image_processor=image_processor, tokenizer=tokenizer, chat_template=CHAT_TEMPLATE
    ).save_pretrained(out)
    return out


def write_snapshot(root: Path, rows: int) -> Path:
    """A snapshot in the export layout: `rows` cases with one 448x448 image each."""
    import numpy as np
    from PIL import Image

    (root / "images").mkdir(parents=True)
    files = []
    rng = np.random.default_rng(0)
    sft, grpo = [], []
    for index in range(rows):
        buffer = io.BytesIO()
        pixels = rng.integers(0, 256, (IMAGE_SIDE, IMAGE_SIDE), dtype=np.uint8)
        Image.fromarray(pixels, mode="L").save(buffer, format="PNG")
        digest = hashlib.sha256(buffer.getvalue()).hexdigest()
        image = f"images/{digest}.png"
        (root / image).write_bytes(buffer.getvalue())
        base = {"case_id": f"case-{index}", "task_type": "binary", "images": [image]}
        sft.append(
            {
                "id": f"sft-{index}",
                **base,
                "messages": [
                    *conversation(QUESTION, 1),
                    {
                        "role": "assistant",
                        "content": [{"type": "text", "text": assistant_text(STEPS, "A")}],
                    },
                ],
            }
        )
        grpo.append(
            {
                "id": f"grpo-{index}",
                **base,
                "prompt": conversation(QUESTION, 1),
                "answer": "A",
                "options": [{"key": "A", "text": "Yes"}, {"key": "B", "text": "No"}],
                "reference_steps": STEPS,
                "reference_findings": [
                    {"observation": "Cardiomegaly", "status": "present"},
                    {"observation": "Pleural Effusion", "status": "present"},
                    {"observation": "Edema", "status": "present"},
                    {"observation": "Pneumothorax", "status": "absent"},
                ],
            }
        )
    for fmt, data in (("sft", sft), ("grpo", grpo)):
        (root / fmt).mkdir()
        (root / fmt / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in data))
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        content = path.read_bytes()
        files.append(
            {
                "path": path.relative_to(root).as_posix(),
                "sha256": hashlib.sha256(content).hexdigest(),
                "bytes": len(content),
            }
        )
    manifest = {"uuid": "bench", "number": 0, "options": {}, "counts": {}, "files": files}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


class _Timer:
    """Trainer callback: wall time of each optimizer step and the tokens logged so far."""

    def __init__(self, cuda: bool) -> None:
        from transformers import TrainerCallback

        timer = self

        class Callback(TrainerCallback):
            def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                timer._sync()
                timer.started = time.perf_counter()

            def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                timer._sync()
                timer.step_times.append(time.perf_counter() - timer.started)

            def on_log(
                self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any
            ) -> None:
                if logs and "num_tokens" in logs:
                    timer.tokens.append(float(logs["num_tokens"]))

        self.cuda = cuda
        self.callback = Callback()
        self.step_times: list[float] = []
        self.tokens: list[float] = []
        self.started = 0.0

    def _sync(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize()

    def figures(self) -> dict[str, float]:
        # The first step pays for compilation, allocation and warm-up: left out.
        times = self.step_times[1:] or self.step_times
        tokens = (self.tokens[-1] - self.tokens[0]) if len(self.tokens) > 1 else float("nan")
        return {
            "step_s": statistics.median(times),
            "tokens_per_s": tokens / sum(times) if times else float("nan"),
        }


def _common(out: Path, cuda: bool, steps: int) -> dict[str, Any]:
    return {
        "output_dir": str(out),
        "max_steps": steps,
        "logging_steps": 1,
        "save_strategy": "no",
        "eval_strategy": "no",
        "report_to": "none",
        "bf16": cuda,
        "activation_checkpointing": cuda,
        "use_cpu": not cuda,
        "learning_rate": 1e-6,
        "dataloader_num_workers": 2 if cuda else 0,
    }


def _peak_gib(cuda: bool) -> float:
    if not cuda:
        return float("nan")
    import torch

    return torch.cuda.max_memory_allocated() / 2**30


def run_sft(model_dir: Path, snapshot: Path, out: Path, args: Any, cuda: bool) -> dict[str, float]:
    import torch
    from transformers import AutoModelForImageTextToText
    from trl import SFTConfig, SFTTrainer

    from training.data import Snapshot, load_split
    from training.processors import load_processor

    dataset = load_split(Snapshot.open(snapshot), "sft", "train")
    model = AutoModelForImageTextToText.from_pretrained(
        model_dir, dtype=torch.bfloat16 if cuda else torch.float32
    )
    timer = _Timer(cuda)
    config = SFTConfig(
        **_common(out, cuda, args.steps),
        per_device_train_batch_size=args.sft_batch,
        assistant_only_loss=True,
        max_length=None,
    )
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=dataset,
        processing_class=load_processor(str(model_dir)),
        callbacks=[timer.callback],
    )
    trainer.train()
    figures = timer.figures()
    figures["peak_gib"] = _peak_gib(cuda)
    del trainer, model
    if cuda:
        torch.cuda.empty_cache()
    return figures


def run_grpo(model_dir: Path, snapshot: Path, out: Path, args: Any, cuda: bool) -> dict[str, float]:
    import torch
    from transformers import AutoModelForImageTextToText
    from trl import GRPOConfig, GRPOTrainer

    from training.data import Snapshot, load_split
    from training.processors import load_processor
    from training.rewards import OfflineJudge, ProcessReward, accuracy_reward, format_reward

    dataset = load_split(Snapshot.open(snapshot), "grpo", "train")
    model = AutoModelForImageTextToText.from_pretrained(
        model_dir, dtype=torch.bfloat16 if cuda else torch.float32
    )
    timer = _Timer(cuda)
    config = GRPOConfig(
        **_common(out, cuda, args.steps),
        per_device_train_batch_size=args.grpo_generations * args.grpo_prompts,
        num_generations=args.grpo_generations,
        max_completion_length=args.grpo_completion_length,
        beta=0.001,
        temperature=1.0,
    )
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[format_reward, accuracy_reward, ProcessReward(OfflineJudge())],
        args=config,
        train_dataset=dataset,
        processing_class=load_processor(str(model_dir)),
        callbacks=[timer.callback],
    )
    trainer.train()
    figures = timer.figures()
    figures["peak_gib"] = _peak_gib(cuda)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--arch", choices=("2b", "tiny"), default="2b", help="model sizes (default 2b)"
    )
    parser.add_argument("--steps", type=int, default=6, help="optimizer steps per stage")
    parser.add_argument("--sft-batch", type=int, default=4, help="SFT sequences per step")
    parser.add_argument("--grpo-generations", type=int, default=4, help="completions per prompt")
    parser.add_argument("--grpo-prompts", type=int, default=1, help="prompts per step")
    parser.add_argument("--grpo-completion-length", type=int, default=256, help="max new tokens")
    args = parser.parse_args(argv)

    import torch

    cuda = torch.cuda.is_available()
    if not cuda and args.arch != "tiny":
        print(
            "No CUDA device: GPU benchmark skipped (use --arch tiny to check the script on the CPU)."
        )
        return 0
    device = torch.cuda.get_device_name(0) if cuda else "CPU (float32, script check only)"
    print(f"Device: {device}; torch {torch.__version__}; arch {args.arch}, random weights")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        model_dir = build_model(
            args.arch, folder / "model", torch.bfloat16 if cuda else torch.float32
        )
        snapshot = write_snapshot(
            folder / "snapshot", rows=max(args.sft_batch, args.grpo_prompts) * 4
        )
        results = {
            "sft": run_sft(model_dir, snapshot, folder / "sft", args, cuda),
            "grpo": run_grpo(model_dir, snapshot, folder / "grpo", args, cuda),
        }
    print(f"{'stage':<6} {'tokens/s':>10} {'step s':>8} {'peak GPU GiB':>13}")
    for stage, figures in results.items():
        print(
            f"{stage:<6} {figures['tokens_per_s']:>10,.0f} {figures['step_s']:>8.3f} "
            f"{figures['peak_gib']:>13.1f}"
        )
    print(
        f"SFT: {args.sft_batch} sequences/step; GRPO: {args.grpo_prompts} prompt(s) x "
        f"{args.grpo_generations} completions of up to {args.grpo_completion_length} tokens/step "
        "(tokens/s counts prompt and completion tokens, as TRL's num_tokens does)."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
