"""Tiny models for tests and smoke runs, built offline: ``python -m training.tiny OUT_DIR``.

Writes two checkpoints with random weights, each loadable with ``from_pretrained``:

- ``OUT_DIR/vlm``: a Qwen2-VL (``AutoModelForImageTextToText``) with its processor (a byte-level BPE
  tokenizer trained here with `tokenizers`, Qwen's special tokens and chat template, a small
  image processor: every image becomes 56x56 pixels, 16 patches, 4 image tokens);
- ``OUT_DIR/text``: a Qwen2 text model (``AutoModelForCausalLM``; ``AutoModelForTokenClassification``
  adds a fresh head) sharing that tokenizer, the base of the process reward model.

Nothing is downloaded: the architecture comes from configs, the tokenizer from a small corpus made
of the prompt text and the observation vocabulary. It takes a few seconds on one core.
"""

from __future__ import annotations

import argparse
import random
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    GenerationConfig,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen2VLConfig,
    Qwen2VLForConditionalGeneration,
)
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
from trl.chat_template_utils import qwen2_5_vl_chat_template

from cxr.prompts import SYSTEM_PROMPT
from cxr.vocabulary import OBSERVATIONS
from training.processors import Qwen2VLImageOnlyProcessor

# Qwen2-VL's added tokens, in its order (ids follow the BPE vocabulary here, not Qwen's numbers).
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
# Qwen's chat template for Qwen2-VL and Qwen2.5-VL: TRL recognises it and swaps in its training
# variant (with {% generation %} markers) for assistant-only loss.
CHAT_TEMPLATE = qwen2_5_vl_chat_template

VOCAB_SIZE = 1024  # merges enough to keep the system prompt short, small enough to stay tiny
HIDDEN = 64  # text width; 4 heads of 16
IMAGE_PIXELS = 56 * 56  # every image becomes 4x4 patches of 14 px = 4 tokens after the 2x2 merge
_SEED = 1234

_CORPUS_EXTRA = (
    "Does this chest X-ray show {name}? Options:\nA) Yes\nB) No",
    "Which finding is present? Options:\nA) {name}\nB) No Finding\nC) Fracture\nD) Edema",
    "The {lower} is present. There is no {lower}. {name} may be present. No evidence of {lower}.",
    "<think>\nThe heart size is normal.\nThe lungs are clear.\nThere is {lower}.\n</think>\n"
    "<answer>A</answer>",
    "<answer>A, C</answer> <answer>B</answer> <answer>{name}</answer>",
)


@dataclass(frozen=True)
class TinyPaths:
    vlm: Path  # Qwen2-VL checkpoint + processor
    text: Path  # Qwen2 text checkpoint + tokenizer (PRM base)


def corpus() -> list[str]:
    """Text the BPE tokenizer learns its merges from: prompts, questions, findings."""
    lines = [SYSTEM_PROMPT] * 20
    for name in OBSERVATIONS:
        for template in _CORPUS_EXTRA:
            lines.append(template.format(name=name, lower=name.lower()))
    lines.extend(
        "The cardiomediastinal silhouette is within normal limits. The lungs are clear. "
        "No pleural effusion or pneumothorax. Small left pleural effusion. Mild pulmonary edema. "
        "Right lower lobe consolidation concerning for pneumonia. Endotracheal tube in place."
        for _ in range(10)
    )
    lines.extend(
        "0123456789 ABCDEFGHIJKLMNOPQRSTUVWXYZ abcdefghijklmnopqrstuvwxyz .,;:!?()[]{}<>/-_'\""
    )
    return lines


def build_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer (no unknown tokens) with Qwen's special tokens and template."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus(), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=CHAT_TEMPLATE,
        model_max_length=4096,
    )


def _text_sizes(vocab_size: int) -> dict[str, object]:
    return {
        "vocab_size": vocab_size,
        "hidden_size": HIDDEN,
        "intermediate_size": 2 * HIDDEN,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
    }


def build_vlm(tokenizer: PreTrainedTokenizerFast) -> Qwen2VLForConditionalGeneration:
    ids = tokenizer.convert_tokens_to_ids
    config = Qwen2VLConfig(
        text_config={
            **_text_sizes(len(tokenizer)),
            # Multimodal RoPE splits each head's 8 frequency pairs over (time, height, width).
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 10000.0,
                "mrope_section": [2, 3, 3],
            },
            "bos_token_id": ids("<|endoftext|>"),
            "eos_token_id": ids("<|im_end|>"),
            "pad_token_id": ids("<|endoftext|>"),
        },
        vision_config={
            "depth": 1,
            "embed_dim": 32,
            "hidden_size": HIDDEN,  # the merger projects image patches into the text width
            "num_heads": 2,
            "mlp_ratio": 2,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
    )
    return Qwen2VLForConditionalGeneration(config)


def build_text(tokenizer: PreTrainedTokenizerFast) -> Qwen2ForCausalLM:
    ids = tokenizer.convert_tokens_to_ids
    config = Qwen2Config(
        **_text_sizes(len(tokenizer)),
        bos_token_id=ids("<|endoftext|>"),
        eos_token_id=ids("<|im_end|>"),
        pad_token_id=ids("<|endoftext|>"),
        tie_word_embeddings=True,
    )
    return Qwen2ForCausalLM(config)


def _generation_config(tokenizer: PreTrainedTokenizerFast) -> GenerationConfig:
    return GenerationConfig(
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        do_sample=True,
        temperature=1.0,
    )


def build_tiny(out_dir: str | Path) -> TinyPaths:
    """Build and save both tiny checkpoints under `out_dir`; returns their folders."""
    import torch

    out = Path(out_dir)
    paths = TinyPaths(vlm=out / "vlm", text=out / "text")
    random.seed(_SEED)
    torch.manual_seed(_SEED)
    tokenizer = build_tokenizer()
    image_processor = Qwen2VLImageProcessorPil(
        min_pixels=IMAGE_PIXELS,
        max_pixels=IMAGE_PIXELS,
        patch_size=14,
        temporal_patch_size=2,
        merge_size=2,
    )
    processor = Qwen2VLImageOnlyProcessor(
        image_processor=image_processor, tokenizer=tokenizer, chat_template=CHAT_TEMPLATE
    )
    vlm = build_vlm(tokenizer)
    vlm.generation_config = _generation_config(tokenizer)
    vlm.save_pretrained(paths.vlm)
    processor.save_pretrained(paths.vlm)

    text = build_text(tokenizer)
    text.generation_config = _generation_config(tokenizer)
    text.save_pretrained(paths.text)
    tokenizer.save_pretrained(paths.text)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.tiny", description=__doc__.splitlines()[0]
    )
    parser.add_argument("out_dir", help="folder to write vlm/ and text/ into")
    args = parser.parse_args(argv)
    paths = build_tiny(args.out_dir)
    print(f"Tiny Qwen2-VL in {paths.vlm}, tiny text model in {paths.text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
