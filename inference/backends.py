"""Generation backends: an OpenAI-compatible endpoint, or a local transformers checkpoint.

Both see the prompt the model was trained with (`cxr.prompts`: the system prompt, then one image
placeholder per image and the question) and return, per case, the raw text with its latency and
token counts. torch and transformers are imported only when the local backend is built.
"""

from __future__ import annotations

import base64
import mimetypes
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cxr.prompts import SYSTEM_PROMPT, conversation
from inference.config import ConfigError
from inference.openai_client import ChatClient, EndpointError


@dataclass(frozen=True)
class Request:
    key: str  # the case id
    question: str
    images: list[Path]


@dataclass(frozen=True)
class Generation:
    key: str
    text: str
    latency_ms: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    attempts: int = 1
    error: str | None = None  # set when the case could not be run; text is then ""


@dataclass(frozen=True)
class Sampling:
    max_new_tokens: int = 1024
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    seed: int | None = 0


class Backend(Protocol):
    name: str  # the model's name as recorded in each row

    def generate(self, requests: Sequence[Request]) -> Iterator[Generation]: ...

    def settings(self) -> dict[str, Any]: ...


# --- OpenAI-compatible endpoint --------------------------------------------------------------


def _data_url(path: Path) -> str:
    kind = mimetypes.guess_type(path.name)[0] or "image/png"
    return f"data:{kind};base64,{base64.b64encode(path.read_bytes()).decode()}"


def openai_messages(question: str, images: Sequence[Path]) -> list[dict[str, Any]]:
    """System prompt, then the user turn: the images (as data URLs) before the question."""
    content: list[dict[str, Any]] = [
        {"type": "image_url", "image_url": {"url": _data_url(path)}} for path in images
    ]
    content.append({"type": "text", "text": question})
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": content}]


class OpenAIBackend:
    """Any OpenAI-compatible chat endpoint, `concurrency` requests in flight at once."""

    def __init__(self, client: ChatClient, sampling: Sampling, *, concurrency: int = 8) -> None:
        self.client = client
        self.sampling = sampling
        self.concurrency = max(1, concurrency)
        self.name = client.resolve_model()  # once, before the worker threads start

    def settings(self) -> dict[str, Any]:
        return {
            "backend": "openai",
            "base_url": self.client.base_url,
            "model": self.name,
            "concurrency": self.concurrency,
            "max_retries": self.client.max_retries,
            **self.sampling.__dict__,
        }

    def _one(self, request: Request) -> Generation:
        params: dict[str, Any] = {
            "max_tokens": self.sampling.max_new_tokens,
            "temperature": self.sampling.temperature,
            "top_p": self.sampling.top_p,
        }
        if self.sampling.seed is not None:
            params["seed"] = self.sampling.seed
        try:
            messages = openai_messages(request.question, request.images)
            done = self.client.complete(messages, **params)
        except (EndpointError, OSError) as exc:
            return Generation(request.key, "", None, None, None, error=str(exc))
        return Generation(
            request.key,
            done.text,
            done.latency_ms,
            done.prompt_tokens,
            done.completion_tokens,
            done.attempts,
        )

    def generate(self, requests: Sequence[Request]) -> Iterator[Generation]:
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            yield from pool.map(self._one, requests)  # in input order, as they complete


# --- local transformers ----------------------------------------------------------------------


class TransformersBackend:
    """A checkpoint on disk, generating in batches (left-padded), greedy or sampled.

    Vision-language checkpoints (``AutoModelForImageTextToText``) get the images; a text-only
    checkpoint gets the question alone (recorded in the settings as ``images: false``).
    """

    def __init__(
        self,
        path: str,
        sampling: Sampling,
        *,
        batch_size: int = 8,
        device: str | None = None,
        dtype: str = "auto",
    ) -> None:
        if not Path(path).is_dir():  # a hub name would be downloaded: nothing leaves unasked
            raise ConfigError(f"{path}: no such checkpoint folder")
        import torch
        import transformers

        self.torch = torch
        self.path = path
        self.sampling = sampling
        self.batch_size = max(1, batch_size)
        self.name = Path(path).name or path
        config = transformers.AutoConfig.from_pretrained(path)
        self.vision = hasattr(config, "vision_config")
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        torch_dtype = "auto" if dtype == "auto" else getattr(torch, dtype)
        model_class = (
            transformers.AutoModelForImageTextToText
            if self.vision
            else transformers.AutoModelForCausalLM
        )
        self.model = model_class.from_pretrained(path, dtype=torch_dtype).to(self.device).eval()
        self.processor = _load_processor(path, vision=self.vision)
        tokenizer = getattr(self.processor, "tokenizer", self.processor)
        tokenizer.padding_side = "left"  # decoder-only batches pad on the left
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.tokenizer = tokenizer
        if sampling.seed is not None:
            torch.manual_seed(sampling.seed)

    def settings(self) -> dict[str, Any]:
        return {
            "backend": "transformers",
            "model": self.path,
            "batch_size": self.batch_size,
            "device": self.device,
            "images": self.vision,
            **self.sampling.__dict__,
        }

    def _prompt(self, request: Request) -> str:
        n_images = len(request.images) if self.vision else 0
        messages = conversation(request.question, n_images)
        if not self.vision:  # a tokenizer's template wants plain strings
            messages = [
                {
                    "role": m["role"],
                    "content": " ".join(p["text"] for p in m["content"] if "text" in p),
                }
                for m in messages
            ]
        return self.processor.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )

    def _batch(self, batch: Sequence[Request]) -> list[Generation]:
        from PIL import Image

        texts = [self._prompt(request) for request in batch]
        kwargs: dict[str, Any] = {"text": texts, "return_tensors": "pt", "padding": True}
        if self.vision:
            images = [
                [Image.open(path).convert("RGB") for path in request.images] for request in batch
            ]
            if any(images):
                kwargs["images"] = images
        inputs = self.processor(**kwargs).to(self.device)
        sample = self.sampling.temperature > 0
        started = time.perf_counter()
        with self.torch.no_grad():
            output = self.model.generate(
                **inputs,
                max_new_tokens=self.sampling.max_new_tokens,
                do_sample=sample,
                temperature=self.sampling.temperature if sample else None,
                top_p=self.sampling.top_p if sample else None,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        # The batch ran as one: each case is charged an equal share of its time.
        latency = (time.perf_counter() - started) * 1000 / len(batch)
        prompt_length = inputs["input_ids"].shape[1]
        generated = output[:, prompt_length:]
        results = []
        for row, request in enumerate(batch):
            tokens = generated[row]
            # Generated tokens up to and including the end of turn; padding after it is not output.
            stop = {self.tokenizer.pad_token_id, self.tokenizer.eos_token_id} - {None}
            length = len(tokens)
            for index, token in enumerate(tokens.tolist()):
                if token in stop:
                    length = index + 1
                    break
            text = self.tokenizer.decode(tokens[:length], skip_special_tokens=True)
            results.append(
                Generation(
                    request.key,
                    text,
                    latency,
                    int(inputs["attention_mask"][row].sum()),
                    int(length),
                )
            )
        return results

    def generate(self, requests: Sequence[Request]) -> Iterator[Generation]:
        for start in range(0, len(requests), self.batch_size):
            batch = requests[start : start + self.batch_size]
            missing = [p for r in batch for p in r.images if self.vision and not p.is_file()]
            if missing:
                # Run what can run; a case whose image is missing is reported, not guessed.
                runnable = [r for r in batch if not any(p in missing for p in r.images)]
                done = {g.key: g for g in (self._batch(runnable) if runnable else [])}
                for request in batch:
                    yield done.get(request.key) or Generation(
                        request.key,
                        "",
                        None,
                        None,
                        None,
                        error=f"image not found: {next(p for p in request.images if p in missing)}",
                    )
                continue
            yield from self._batch(batch)


def _load_processor(path: str, *, vision: bool) -> Any:
    """The checkpoint's processor (image-only Qwen processors where torchvision is missing);
    a text-only checkpoint's tokenizer."""
    import transformers

    if not vision:
        return transformers.AutoTokenizer.from_pretrained(path)
    try:
        from training.processors import load_processor  # registers the image-only processors
    except ImportError:
        load_processor = None
    if load_processor is not None:
        return load_processor(path)
    return transformers.AutoProcessor.from_pretrained(path)
