"""The tiny models build offline and load with from_pretrained like any checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("trl")

from training import tiny as tiny_module  # noqa: E402


def test_it_builds_a_tiny_qwen2_vl_that_loads_with_auto_classes(tiny: Any) -> None:
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from trl.chat_template_utils import qwen2_5_vl_chat_template

    model = AutoModelForImageTextToText.from_pretrained(tiny.vlm)
    processor = AutoProcessor.from_pretrained(tiny.vlm)
    assert model.config.model_type == "qwen2_vl"
    assert sum(p.numel() for p in model.parameters()) < 1_000_000  # tiny: trains in seconds
    # Exactly Qwen's template, so TRL swaps in its training variant for assistant-only loss.
    assert processor.chat_template == qwen2_5_vl_chat_template
    assert not hasattr(processor, "video_processor")  # no torchvision needed
    tokenizer = processor.tokenizer
    for token in ("<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|image_pad|>"):
        assert token in tokenizer.get_vocab()
    assert model.config.image_token_id == tokenizer.convert_tokens_to_ids("<|image_pad|>")


def test_it_turns_an_image_and_a_question_into_inputs_the_model_runs_on(tiny: Any) -> None:
    import torch
    from PIL import Image
    from transformers import AutoModelForImageTextToText

    from cxr.prompts import conversation
    from training.processors import load_processor

    processor = load_processor(str(tiny.vlm))
    model = AutoModelForImageTextToText.from_pretrained(tiny.vlm)
    messages = conversation("Does this chest X-ray show edema?", 1)
    messages[1]["content"][0]["image"] = Image.new("RGB", (120, 120), "gray")
    inputs = processor.apply_chat_template(
        [messages], tokenize=True, return_dict=True, return_tensors="pt", add_generation_prompt=True
    )
    image_tokens = int((inputs["input_ids"] == processor.image_token_id).sum())
    assert image_tokens == 4  # 56x56 pixels -> 4x4 patches -> 2x2 after the merge
    with torch.no_grad():
        generated = model.generate(**inputs, max_new_tokens=3, do_sample=False)
    assert generated.shape[1] == inputs["input_ids"].shape[1] + 3


def test_it_builds_a_text_model_for_the_prm(tiny: Any) -> None:
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    model = AutoModelForTokenClassification.from_pretrained(tiny.text, num_labels=2)
    tokenizer = AutoTokenizer.from_pretrained(tiny.text)
    ids = tokenizer("There is a small left pleural effusion.\n", return_tensors="pt")
    assert model(**ids).logits.shape[-1] == 2


def test_it_builds_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert tiny_module.main([str(tmp_path / "tiny")]) == 0
    assert (tmp_path / "tiny" / "vlm" / "model.safetensors").is_file()
    assert (tmp_path / "tiny" / "text" / "tokenizer.json").is_file()
    assert "Tiny Qwen2-VL in" in capsys.readouterr().out
