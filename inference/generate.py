"""`python -m inference generate`: run a model over a case file, one JSON line per case.

Each output row holds the case id (and ``item_id`` when the case has one), the model's name,
the run settings, the raw text (``pred``, the paper's name for it), the parsed answer and steps
(``parsed``), latency and token counts, and the case's own evaluation fields (``question``,
``answer``, ``reason_steps``, ``original_report``, ``task``, ``reference_findings``...) so that
`python -m inference score` and `manage.py import_predictions` can read the file as it is.
A case that could not be run has an ``error`` and an empty ``pred``. A case line that cannot be
used (not UTF-8, not a JSON object, no question, image paths that are not text, a case id already
given on an earlier line) is reported as ``FILE:LINE: reason`` and not run; the command exits 1.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from cxr.output import parse_output
from cxr.questions import parse_question
from inference.backends import Backend, Generation, Request, Sampling
from inference.config import ConfigError, check_ranges
from inference.records import case_id, kind_of, question_of, read_jsonl, resolve_images

# Case fields copied into each output row: what scoring and the web app's import need.
CARRIED = (
    "case_uuid",
    "item_id",
    "case_key",
    "task",
    "task_type",
    "question",
    "answer",
    "answer_content",
    "reason_steps",
    "reference_steps",
    "reference_findings",
    "original_report",
    "original_report1",
    "original_report2",
    "image_path",
    "images",
    "dataset_name",
    "split",
)


def is_endpoint(model: str) -> bool:
    """Whether --model names an OpenAI-compatible endpoint rather than a checkpoint folder."""
    return model.startswith(("http://", "https://"))


@dataclass
class GenerateConfig:
    model: str = field(
        metadata={
            "help": "checkpoint folder (local transformers) or the base URL "
            "of an OpenAI-compatible endpoint (http...)"
        }
    )
    cases: Path = field(metadata={"help": "radrbench or grpo export, or any RadRBench-style JSONL"})
    out: Path = field(metadata={"help": "where the predictions go (JSON Lines)"})
    served_model: str | None = field(
        default=None,
        metadata={
            "help": "model name at the endpoint (default: $OPENAI_MODEL, else the first listed)"
        },
    )
    api_key: str | None = field(
        default=None,
        metadata={"help": "endpoint key (default: $OPENAI_API_KEY; local servers need none)"},
    )
    max_new_tokens: int = field(
        default=1024, metadata={"help": "tokens to generate at most", "min": 1}
    )
    temperature: float = field(default=0.0, metadata={"help": "0 for greedy decoding", "min": 0})
    top_p: float = field(
        default=1.0,
        metadata={"help": "nucleus sampling (when temperature > 0)", "above": 0, "max": 1},
    )
    seed: int | None = field(
        default=0, metadata={"help": "sampling seed (endpoints may ignore it)"}
    )
    batch_size: int = field(
        default=8, metadata={"help": "local backend: cases per generate() call", "min": 1}
    )
    device: str | None = field(
        default=None, metadata={"help": "local backend: cuda, cpu (default: cuda if present)"}
    )
    dtype: str = field(
        default="auto", metadata={"help": "local backend: auto, bfloat16, float32..."}
    )
    concurrency: int = field(
        default=8, metadata={"help": "endpoint: requests in flight at once", "min": 1}
    )
    max_retries: int = field(
        default=5, metadata={"help": "endpoint: retries on 429/5xx/timeouts", "min": 0}
    )
    timeout: float = field(
        default=120.0, metadata={"help": "endpoint: seconds per attempt", "above": 0}
    )
    limit: int | None = field(default=None, metadata={"help": "only the first N cases", "min": 1})
    resume: bool = field(
        default=False,
        metadata={"help": "keep the rows already in --out and run only the cases missing there"},
    )

    def __post_init__(self) -> None:
        check_ranges(self)
        if not is_endpoint(self.model) and not Path(self.model).is_dir():
            # Never a name for transformers to look up on the Hugging Face Hub: nothing leaves
            # this machine unless an endpoint is named.
            raise ConfigError(
                f"--model {self.model}: no such checkpoint folder "
                "(give a folder, or an endpoint's http:// or https:// URL)"
            )

    def sampling(self) -> Sampling:
        return Sampling(self.max_new_tokens, self.temperature, self.top_p, self.seed)


def make_backend(config: GenerateConfig) -> Backend:
    if is_endpoint(config.model):
        from inference.backends import OpenAIBackend
        from inference.openai_client import ChatClient

        client = ChatClient(
            base_url=config.model,
            api_key=config.api_key,
            model=config.served_model,
            timeout=config.timeout,
            max_retries=config.max_retries,
        )
        return OpenAIBackend(client, config.sampling(), concurrency=config.concurrency)
    from inference.backends import TransformersBackend

    return TransformersBackend(
        config.model,
        config.sampling(),
        batch_size=config.batch_size,
        device=config.device,
        dtype=config.dtype,
    )


@dataclass
class GenerateResult:
    written: int = 0
    skipped: int = 0  # already in --out (with --resume)
    failed: int = 0  # rows written with an error
    bad_lines: list[str] = field(default_factory=list)  # unreadable case lines

    def summary(self, out: Path) -> str:
        text = f"Generated {self.written} predictions into {out}, {self.failed} failed"
        if self.skipped:
            text += f", {self.skipped} already there"
        if self.bad_lines:
            text += f", {len(self.bad_lines)} bad case lines not run (listed above)"
        return text


def output_row(
    record: dict[str, Any], generation: Generation, backend: Backend, settings: dict[str, Any]
) -> dict[str, Any]:
    options = parse_question(question_of(record)).options
    parsed = parse_output(generation.text, options)
    row: dict[str, Any] = {"case_id": case_id(record)}
    row.update({name: record[name] for name in CARRIED if name in record})
    if "question" not in row:
        row["question"] = question_of(record)  # a grpo row keeps it inside its prompt
    row.update(
        {
            "model": backend.name,
            "settings": settings,
            "pred": generation.text,
            "parsed": {
                "answer_text": parsed.answer_text,
                "letters": parsed.letters,
                "steps": parsed.steps,
                "well_formed": parsed.well_formed,
            },
            "latency_ms": None
            if generation.latency_ms is None
            else round(generation.latency_ms, 1),
            "prompt_tokens": generation.prompt_tokens,
            "completion_tokens": generation.completion_tokens,
            "attempts": generation.attempts,
        }
    )
    if generation.error:
        row["error"] = generation.error
    return row


def case_error(record: dict[str, Any], seen: dict[str, int], line: int) -> str | None:
    """Why a case cannot be run (None when it can); records its id in `seen`."""
    if not question_of(record).strip():
        return "missing question (a `question`, or a user turn in `prompt`)"
    for name in ("images", "image_path"):
        value = record.get(name)
        if value is None or isinstance(value, str):
            continue
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            return f"`{name}` should be a path or a list of paths, not {kind_of(value)}"
    key = case_id(record)
    if key in seen:
        return f"case id {key!r} already given on line {seen[key]}"
    seen[key] = line
    return None


def run(
    config: GenerateConfig, backend: Backend | None = None, errors: TextIO | None = None
) -> GenerateResult:
    """Generate for every case of `config.cases` not yet in `config.out` (with `resume`)."""
    errors = errors or sys.stderr  # looked up now: a test may have replaced it
    result = GenerateResult()
    records: list[dict[str, Any]] = []
    seen: dict[str, int] = {}  # case id -> the line that gave it first
    for line, record, error in read_jsonl(config.cases):
        if record is not None:
            error = case_error(record, seen, line)
        if error or record is None:
            result.bad_lines.append(f"{config.cases}:{line}: {error}")
            print(f"{config.cases}:{line}: {error}", file=errors)
            continue
        records.append(record)
    if config.limit is not None:
        records = records[: config.limit]
    done: set[str] = set()
    if config.resume and config.out.exists():
        kept = []
        for line, row, error in read_jsonl(config.out):
            if row is None:  # a line cut short by a crash, say: its case runs again
                print(f"{config.out}:{line}: {error}: dropped, its case runs again", file=errors)
            elif not row.get("error"):
                kept.append(row)
        done = {str(row.get("case_id")) for row in kept}
        # Failed rows are run again: drop them so that each case keeps one row.
        config.out.write_text(
            "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in kept), encoding="utf-8"
        )
    todo = [r for r in records if case_id(r) not in done]
    result.skipped = len(records) - len(todo)
    backend = backend or make_backend(config)
    settings = backend.settings()
    base = config.cases.resolve().parent
    requests = [Request(case_id(r), question_of(r), resolve_images(r, base)) for r in todo]
    by_key = {case_id(r): r for r in todo}
    config.out.parent.mkdir(parents=True, exist_ok=True)
    mode = "a" if config.resume else "w"
    with config.out.open(mode, encoding="utf-8") as out:
        for generation in backend.generate(requests):
            row = output_row(by_key[generation.key], generation, backend, settings)
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            out.flush()  # a crash keeps what was done; --resume carries on from there
            result.written += 1
            if generation.error:
                result.failed += 1
                print(f"case {generation.key}: {generation.error}", file=errors)
    return result
