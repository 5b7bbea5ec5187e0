"""Reward functions for GRPO: format, answer accuracy, and the process reward with three judges.

Each reward is a plain callable in TRL's shape: ``reward(prompts=..., completions=..., **columns)
-> list[float | None]``, one value per completion. The extra columns of the ``grpo`` export
(``answer``, ``options``, ``reference_steps``, ``reference_findings``, ``task_type``, ...) arrive as
keyword arguments, one value per completion; unknown ones are ignored. A completion is a string or
TRL's conversational ``[{"role": "assistant", "content": ...}]``. ``None`` means "no reward from
this function for this completion" (TRL counts it as NaN and sums the others).

The process reward scores the reasoning steps with an interchangeable judge:

- `OfflineJudge`: `cxr.radrscore` (findings read by `cxr`'s labeler, matched against the
  reference findings: factuality, completeness, effectiveness; their mean). No model; thousands
  of completions a second.
- `PRMJudge`: the process reward model trained by ``python -m training prm`` on the
  radiologists' verdicts; the mean (or min, or product) of its per-step probability of "correct".
- `LLMJudge`: an LLM behind an OpenAI-compatible endpoint (the paper's method) gives a verdict per
  step (correct / incorrect / irrelevant) and the reference findings the steps recall; the same
  three ratios follow from them.

Parsing of outputs (tags, steps, letters) is `cxr.output.parse_output`'s.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final, Protocol

from cxr.output import ParsedOutput, parse_output
from cxr.questions import Option, parse_answer
from cxr.radrscore import KeyFinding, findings_from_text, score_reasoning

JUDGES: Final = ("offline", "prm", "llm")


# --- reading completions and columns ---------------------------------------------------------


def completion_text(completion: Any) -> str:
    """The text of a completion: a string, or the last assistant message of a conversation."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        completion = [completion]
    for message in reversed(list(completion or [])):
        if message.get("role", "assistant") != "assistant":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        return "".join(
            part.get("text") or "" for part in content or [] if part.get("type") == "text"
        )
    return ""


def prompt_question(prompt: Any) -> str:
    """The question of a prompt: the text parts of its last user message (or the string itself)."""
    if isinstance(prompt, str):
        return prompt
    for message in reversed(list(prompt or [])):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            return "\n".join(
                part.get("text") or "" for part in content or [] if part.get("type") == "text"
            ).strip()
    return ""


def _options(value: Any) -> list[Option]:
    """Options from the export's ``[{"key", "text"}]`` (or already `Option`s); [] when open."""
    return [
        item if isinstance(item, Option) else Option(str(item["key"]), str(item["text"]))
        for item in value or []
    ]


@lru_cache(maxsize=8192)
def parsed_output(text: str, options: tuple[Option, ...] = ()) -> ParsedOutput:
    """`cxr.output.parse_output`, remembered: the format, accuracy and process rewards of one
    training step read the same completions (a group of them fits the cache many times over)."""
    return parse_output(text, list(options))


def _column(kwargs: dict[str, Any], name: str, count: int) -> list[Any]:
    """A column passed by the trainer, or Nones when the dataset does not have it."""
    values = kwargs.get(name)
    if values is None:
        return [None] * count
    if len(values) != count:
        raise ValueError(f"column {name!r} has {len(values)} values for {count} completions")
    return list(values)


# --- format ----------------------------------------------------------------------------------


def format_reward(completions: Sequence[Any], **kwargs: Any) -> list[float]:
    """1.0 for exactly ``<think> steps </think><answer> X </answer>`` (both non-empty), else 0.0.

    >>> format_reward(["<think>\\nNo effusion.\\n</think>\\n<answer>B</answer>", "B"])
    [1.0, 0.0]
    """
    return [1.0 if parsed_output(completion_text(c)).well_formed else 0.0 for c in completions]


# --- answer accuracy -------------------------------------------------------------------------


def _positive_observations(text: str) -> set[str]:
    """Observations a free-text answer names as present (or possible)."""
    return {f.observation for f in findings_from_text(text) if f.status != "absent"}


def _f1(predicted: set[str], expected: set[str]) -> float:
    if not predicted and not expected:
        return 1.0
    overlap = len(predicted & expected)
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(predicted), overlap / len(expected)
    return 2 * precision * recall / (precision + recall)


def answer_score(
    parsed: ParsedOutput, answer: str, options: list[Option], *, partial_credit: bool = False
) -> float:
    """How right one parsed answer is, in [0, 1].

    Multiple choice: 1.0 when the letters are exactly the expected set; with `partial_credit`,
    their Jaccard overlap. Open question: F1 between the observations the answer names and those
    the reference answer names.
    """
    if options:
        expected = set(parse_answer(answer, options))
        given = set(parsed.letters)
        if given == expected:
            return 1.0
        if partial_credit and given:
            return len(given & expected) / len(given | expected)
        return 0.0
    if not parsed.answer_text:
        return 0.0
    return _f1(_positive_observations(parsed.answer_text), _positive_observations(answer))


def accuracy_reward(
    completions: Sequence[Any],
    answer: Sequence[str],
    options: Sequence[Any] | None = None,
    partial_credit: bool = False,
    **kwargs: Any,
) -> list[float]:
    """Answer accuracy: option letters against ``answer`` (one or several), or free-text findings.

    >>> opts = [{"key": "A", "text": "Yes"}, {"key": "B", "text": "No"}]
    >>> accuracy_reward(["<think>x</think><answer>A</answer>", "<answer>B</answer>"],
    ...                 answer=["A", "A"], options=[opts, opts])
    [1.0, 0.0]
    >>> accuracy_reward(["<answer>Edema and cardiomegaly</answer>"], answer=["Cardiomegaly, Edema"],
    ...                 options=[[]])
    [1.0]
    """
    options = options if options is not None else [None] * len(completions)
    scores = []
    for completion, expected, choices in zip(completions, answer, options, strict=True):
        parsed_options = _options(choices)
        parsed = parsed_output(completion_text(completion), tuple(parsed_options))
        scores.append(answer_score(parsed, expected, parsed_options, partial_credit=partial_credit))
    return scores


# --- judges ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class JudgeItem:
    """What a judge sees of one completion."""

    question: str
    steps: list[str]  # the model's reasoning steps (`cxr.output.parse_output`)
    reference_steps: list[str]  # the verified chain
    reference_findings: list[dict[str, str]]  # [{"observation", "status"}] of the verified chain


class Judge(Protocol):
    name: str

    def score(self, items: Sequence[JudgeItem]) -> list[float | None]:
        """One process score in [0, 1] per item (None: the judge could not tell)."""


def _reference_findings(item: JudgeItem) -> list[KeyFinding]:
    return [KeyFinding.coerce(finding) for finding in item.reference_findings or []]


class OfflineJudge:
    """RadRScore from `cxr.radrscore`: no model, the reasoning's findings against the reference's.

    >>> item = JudgeItem("Effusion?", ["There is a small left pleural effusion."],
    ...                  ["Small left pleural effusion."],
    ...                  [{"observation": "Pleural Effusion", "status": "present"}])
    >>> OfflineJudge().score([item])
    [1.0]
    """

    name = "offline"

    def score(self, items: Sequence[JudgeItem]) -> list[float | None]:
        return [
            score_reasoning(item.steps, _reference_findings(item)).radrscore if item.steps else 0.0
            for item in items
        ]


class PRMJudge:
    """The trained process reward model: its probability that each step is correct, aggregated.

    `aggregation`: ``mean`` (default), ``min`` (the weakest step decides) or ``prod`` (every step
    must be right). Steps are tokenized exactly as in training (`training.prm.tokenize_row`).
    """

    name = "prm"

    def __init__(
        self,
        model_path: str,
        *,
        aggregation: str = "mean",
        batch_size: int = 16,
        device: str | None = None,
        step_separator: str = "\n",
        max_length: int | None = 1024,
        max_prompt_length: int | None = 512,
    ) -> None:
        import torch
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        if aggregation not in {"mean", "min", "prod"}:
            raise ValueError(f"PRM aggregation must be mean, min or prod, not {aggregation!r}")
        self.aggregation = aggregation
        self.batch_size = batch_size
        self.step_separator = step_separator
        self.max_length = max_length
        self.max_prompt_length = max_prompt_length
        if device is None:  # this process's own GPU under accelerate/torchrun, else the CPU
            device = f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = (
            AutoModelForTokenClassification.from_pretrained(model_path).to(self.device).eval()
        )

    def step_probabilities(self, items: Sequence[JudgeItem]) -> list[list[float]]:
        """Per item, the probability that each of its steps is correct (steps cut by max_length
        are missing from the end)."""
        import torch

        from training.prm import IGNORE, tokenize_row

        results: list[list[float]] = []
        for start in range(0, len(items), self.batch_size):
            batch = items[start : start + self.batch_size]
            rows = [
                tokenize_row(
                    {
                        "prompt": item.question,
                        "completions": item.steps,
                        "labels": [True] * len(item.steps),
                    },
                    self.tokenizer,
                    step_separator=self.step_separator,
                    max_length=self.max_length,
                    max_prompt_length=self.max_prompt_length,
                )
                for item in batch
            ]
            width = max(len(row["input_ids"]) for row in rows)
            pad = self.tokenizer.pad_token_id
            input_ids = torch.tensor(
                [r["input_ids"] + [pad] * (width - len(r["input_ids"])) for r in rows]
            )
            attention = torch.tensor(
                [[1] * len(r["input_ids"]) + [0] * (width - len(r["input_ids"])) for r in rows]
            )
            with torch.inference_mode():
                logits = self.model(
                    input_ids=input_ids.to(self.device), attention_mask=attention.to(self.device)
                ).logits.float()
            probabilities = logits.softmax(dim=-1)[..., 1].cpu()
            for row, row_probabilities in zip(rows, probabilities, strict=True):
                positions = [i for i, label in enumerate(row["labels"]) if label != IGNORE]
                results.append([float(row_probabilities[i]) for i in positions])
        return results

    def score(self, items: Sequence[JudgeItem]) -> list[float | None]:
        scores: list[float | None] = [0.0] * len(items)
        with_steps = [i for i, item in enumerate(items) if item.steps]
        if not with_steps:
            return scores
        for index, probabilities in zip(
            with_steps, self.step_probabilities([items[i] for i in with_steps]), strict=True
        ):
            if not probabilities:
                continue
            if self.aggregation == "min":
                scores[index] = min(probabilities)
            elif self.aggregation == "prod":
                product = 1.0
                for p in probabilities:
                    product *= p
                scores[index] = product
            else:
                scores[index] = sum(probabilities) / len(probabilities)
        return scores


LLM_JUDGE_SYSTEM = (
    "You are a senior radiologist grading a model's step-by-step reasoning about a chest X-ray "
    "against a reference reasoning chain verified by radiologists. Judge each model step: "
    '"correct" (a finding or observation consistent with the reference), "incorrect" (it '
    "contradicts the reference or states a finding the reference does not support) or "
    '"irrelevant" (true or harmless but does not help answer the question). Then list which '
    "reference findings the model's steps recall. Reply with JSON only."
)
_LLM_JUDGE_TEMPLATE = """Question:
{question}

Reference steps (verified):
{reference_steps}

Reference findings (numbered):
{reference_findings}

Model steps (numbered):
{model_steps}

Reply with exactly this JSON shape:
{{"steps": [{{"step": 1, "verdict": "correct" | "incorrect" | "irrelevant"}}, ...],
 "recalled_findings": [numbers of the reference findings the model's steps recall]}}"""
_JSON_OBJECT: Final = re.compile(r"\{.*\}", re.S)
VERDICTS: Final = ("correct", "incorrect", "irrelevant")


def _numbered(lines: Sequence[str]) -> str:
    return "\n".join(f"{number}. {line}" for number, line in enumerate(lines, start=1)) or "(none)"


def llm_judge_messages(item: JudgeItem) -> list[dict[str, str]]:
    """The chat messages the LLM judge sends for one item."""
    findings = [f"{f['observation']}: {f['status']}" for f in item.reference_findings or []]
    user = _LLM_JUDGE_TEMPLATE.format(
        question=item.question.strip(),
        reference_steps=_numbered(item.reference_steps or []),
        reference_findings=_numbered(findings),
        model_steps=_numbered(item.steps),
    )
    return [{"role": "system", "content": LLM_JUDGE_SYSTEM}, {"role": "user", "content": user}]


def score_llm_reply(reply: str, item: JudgeItem) -> float | None:
    """The process score from the judge's JSON reply; None when the reply is not that JSON.

    factuality = correct / (correct + incorrect) steps; effectiveness = correct / all steps;
    completeness = recalled / reference findings (1.0 with none); the score is their mean, as
    RadRScore combines them.

    >>> item = JudgeItem("q", ["a", "b"], ["a"], [{"observation": "Edema", "status": "present"}])
    >>> score_llm_reply('{"steps": [{"step": 1, "verdict": "correct"}, '
    ...                 '{"step": 2, "verdict": "irrelevant"}], "recalled_findings": [1]}', item)
    0.8333333333333334
    """
    match = _JSON_OBJECT.search(reply or "")
    if match is None:
        return None
    try:
        data = json.loads(match.group(0))
        verdicts: dict[int, str] = {}
        for entry in data["steps"]:
            verdict = str(entry["verdict"]).strip().lower()
            if verdict not in VERDICTS:
                return None
            verdicts[int(entry["step"])] = verdict
        recalled = {int(number) for number in data.get("recalled_findings", [])}
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    steps = len(item.steps)
    # A step the judge left out counts as irrelevant: it earned no credit.
    labels = [verdicts.get(number, "irrelevant") for number in range(1, steps + 1)]
    correct, incorrect = labels.count("correct"), labels.count("incorrect")
    references = len(item.reference_findings or [])
    factuality = correct / (correct + incorrect) if correct + incorrect else 0.0
    effectiveness = correct / steps if steps else 0.0
    completeness = len(recalled & set(range(1, references + 1))) / references if references else 1.0
    return (factuality + completeness + effectiveness) / 3


class LLMJudge:
    """An LLM behind an OpenAI-compatible ``/v1/chat/completions`` endpoint (vLLM, an API).

    The API key is read from the environment variable named by `api_key_env` (never from a
    config file). Requests run `max_workers` at a time. A reply that is not the expected JSON
    gives None (no process reward for that completion); a failed request raises.
    """

    name = "llm"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = 60.0,
        max_workers: int = 8,
        temperature: float = 0.0,
        max_tokens: int = 512,
        max_retries: int = 2,
    ) -> None:
        from openai import OpenAI

        self.model = model
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.max_workers = max_workers
        self.client = OpenAI(
            base_url=base_url,
            api_key=os.environ.get(api_key_env) or "EMPTY",  # local servers accept any key
            timeout=timeout,
            max_retries=max_retries,
        )

    def _one(self, item: JudgeItem) -> float | None:
        if not item.steps:
            return 0.0
        response = self.client.chat.completions.create(
            model=self.model,
            messages=llm_judge_messages(item),  # type: ignore[arg-type]
            temperature=self.temperature,
            max_tokens=self.max_tokens,
        )
        return score_llm_reply(response.choices[0].message.content or "", item)

    def score(self, items: Sequence[JudgeItem]) -> list[float | None]:
        if len(items) <= 1 or self.max_workers <= 1:
            return [self._one(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(self.max_workers, len(items))) as pool:
            return list(pool.map(self._one, items))


# --- the process reward ----------------------------------------------------------------------


class ProcessReward:
    """Process reward: the judge's score of the completion's reasoning steps, in [0, 1].

    With `only_when_correct` (the paper's choice), a completion whose answer is wrong gets 0.0
    whatever its reasoning. Logs the mean score as ``process/<judge>`` when the trainer offers
    ``log_metric``.

    >>> reward = ProcessReward(OfflineJudge())
    >>> reward(prompts=["Effusion? Options:\\nA) Yes\\nB) No"],
    ...        completions=["<think>\\nThere is a small left pleural effusion.\\n</think>\\n<answer>A</answer>"],
    ...        answer=["A"], options=[[{"key": "A", "text": "Yes"}, {"key": "B", "text": "No"}]],
    ...        reference_steps=[["Small left pleural effusion."]],
    ...        reference_findings=[[{"observation": "Pleural Effusion", "status": "present"}]])
    [1.0]
    """

    def __init__(self, judge: Judge, *, only_when_correct: bool = False) -> None:
        self.judge = judge
        self.only_when_correct = only_when_correct
        self.__name__ = f"process_{judge.name}"  # TRL names the reward column after it

    def __call__(
        self,
        prompts: Sequence[Any] | None = None,
        completions: Sequence[Any] = (),
        **kwargs: Any,
    ) -> list[float | None]:
        count = len(completions)
        prompts = list(prompts) if prompts is not None else [""] * count
        answers = _column(kwargs, "answer", count)
        options = _column(kwargs, "options", count)
        reference_steps = _column(kwargs, "reference_steps", count)
        reference_findings = _column(kwargs, "reference_findings", count)
        items, correct = [], []
        for index, completion in enumerate(completions):
            choices = _options(options[index])
            parsed = parsed_output(completion_text(completion), tuple(choices))
            items.append(
                JudgeItem(
                    question=prompt_question(prompts[index]),
                    steps=parsed.steps,
                    reference_steps=list(reference_steps[index] or []),
                    reference_findings=list(reference_findings[index] or []),
                )
            )
            if self.only_when_correct:
                if answers[index] is None:
                    raise ValueError("only_when_correct needs the dataset's answer column")
                correct.append(answer_score(parsed, answers[index], choices) == 1.0)
        scores = self.judge.score(items)
        if self.only_when_correct:
            scores = [score if ok else 0.0 for score, ok in zip(scores, correct, strict=True)]
        log_metric: Callable[[str, float], None] | None = kwargs.get("log_metric")
        known = [score for score in scores if score is not None]
        if log_metric is not None and known:
            log_metric(f"process/{self.judge.name}", sum(known) / len(known))
        return scores
