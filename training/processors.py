"""Processors for Qwen2-VL / Qwen2.5-VL without the video part.

The stock `Qwen2VLProcessor` loads a video processor that needs torchvision, and no torchvision
works beside the CPU build of torch 2.13 we pin. These subclasses keep the image processor and the
tokenizer only (images are all a chest X-ray case has) and are registered with `AutoProcessor`, so
a checkpoint saved with one of them loads with `AutoProcessor.from_pretrained`. With torchvision
installed (a GPU machine), `load_processor` simply returns the stock processor.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from transformers import AutoConfig, AutoProcessor, AutoTokenizer, ProcessorMixin
from transformers.models.qwen2_5_vl import Qwen2_5_VLConfig
from transformers.models.qwen2_vl import Qwen2VLConfig
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil


class _ImageOnlyMixin:
    """Qwen's image-token bookkeeping, without a video processor."""

    def _set_tokens(self, tokenizer: Any) -> None:
        self.image_token = getattr(tokenizer, "image_token", None) or "<|image_pad|>"
        self.video_token = getattr(tokenizer, "video_token", None) or "<|video_pad|>"
        self.image_token_id = getattr(tokenizer, "image_token_id", None) or (
            tokenizer.convert_tokens_to_ids(self.image_token)
        )
        self.video_token_id = getattr(tokenizer, "video_token_id", None) or (
            tokenizer.convert_tokens_to_ids(self.video_token)
        )

    def replace_image_token(self, image_inputs: dict, image_idx: int, **kwargs: Any) -> str:
        merge_length = self.image_processor.merge_size**2  # type: ignore[attr-defined]
        count = image_inputs["image_grid_thw"][image_idx].prod() // merge_length
        return self.image_token * int(count)

    def post_process_image_text_to_text(
        self, generated_outputs: Any, skip_special_tokens: bool = True, **kwargs: Any
    ) -> list[str]:
        return self.tokenizer.batch_decode(  # type: ignore[attr-defined]
            generated_outputs, skip_special_tokens=skip_special_tokens, **kwargs
        )

    @property
    def model_input_names(self) -> list[str]:
        return super().model_input_names + ["mm_token_type_ids"]  # type: ignore[misc]


class Qwen2VLImageOnlyProcessor(_ImageOnlyMixin, ProcessorMixin):
    """Qwen2-VL processor: image processor + tokenizer, no video processor."""

    return_mm_token_type_ids = True

    def __init__(
        self,
        image_processor: Any = None,
        tokenizer: Any = None,
        chat_template: Any = None,
        **kwargs: Any,
    ) -> None:
        self._set_tokens(tokenizer)
        super().__init__(image_processor, tokenizer, chat_template=chat_template)


class Qwen2_5_VLImageOnlyProcessor(Qwen2VLImageOnlyProcessor):  # noqa: N801 (transformers' naming)
    """Qwen2.5-VL processor: image processor + tokenizer, no video processor."""


AutoProcessor.register(Qwen2VLConfig, Qwen2VLImageOnlyProcessor, exist_ok=True)
AutoProcessor.register(Qwen2_5_VLConfig, Qwen2_5_VLImageOnlyProcessor, exist_ok=True)

_IMAGE_ONLY = {"qwen2_vl": Qwen2VLImageOnlyProcessor, "qwen2_5_vl": Qwen2_5_VLImageOnlyProcessor}


def has_torchvision() -> bool:
    return importlib.util.find_spec("torchvision") is not None


def load_processor(model_name_or_path: str, **kwargs: Any) -> Any:
    """The processor for a checkpoint: the stock one where torchvision works, else image-only.

    A text-only checkpoint (no image processor) gives its tokenizer.
    """
    path = Path(model_name_or_path)
    saved_class = None
    if (path / "processor_config.json").is_file():
        saved_class = json.loads((path / "processor_config.json").read_text()).get(
            "processor_class"
        )
    if saved_class in {cls.__name__ for cls in _IMAGE_ONLY.values()} or has_torchvision():
        try:
            return AutoProcessor.from_pretrained(model_name_or_path, **kwargs)
        except (OSError, ValueError, ImportError):
            if saved_class:
                raise
    model_type = AutoConfig.from_pretrained(model_name_or_path, **kwargs).model_type
    if model_type in _IMAGE_ONLY:
        tokenizer = AutoTokenizer.from_pretrained(model_name_or_path, **kwargs)
        image_processor = Qwen2VLImageProcessorPil.from_pretrained(model_name_or_path, **kwargs)
        return _IMAGE_ONLY[model_type](
            image_processor=image_processor,
            tokenizer=tokenizer,
            chat_template=tokenizer.chat_template,
        )
    return AutoProcessor.from_pretrained(model_name_or_path, **kwargs)
