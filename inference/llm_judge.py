"""The paper's LLM judge of reasoning, through any OpenAI-compatible endpoint, cached on disk.

ChestX-Reasoner scores reasoning with GPT-4o in four questions, which these prompts restate:

1. key findings: the observations (with their status) that a text's reasoning rests on, asked
   once of the reference chain and once of the model's output;
2. recall: which reference key findings the model's key findings cover (completeness);
3. precision: which of the model's key findings the report supports or does not contradict,
   silence about an abnormality meaning normal (factuality);
4. efficiency: which of the model's reasoning steps the reference chain supports (effectiveness).

Components follow the paper's evaluation code: completeness = recalled / reference findings,
factuality = correct / model findings, effectiveness = effective / (effective + ineffective),
each 0 when its denominator is 0. A fifth question, whether the answer is right, is recorded as
``judge_correct`` beside the rule-based ``accuracy``.

Every answer is cached under ``cache_dir`` by the hash of (model, prompt): re-scoring a file, or
scoring three models on the same cases (the reference's key findings are asked once), costs no
new calls. An answer that is not the JSON asked for is asked again once, then the row fails with
the reason; unparseable answers are never cached. An endpoint that is still failing after its
retries (`EndpointUnavailable`) stops the whole run: every later row would wait and fail the same.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from cxr.output import ParsedOutput
from cxr.radrscore import KeyFinding
from inference.openai_client import ChatClient, EndpointError, EndpointUnavailable
from inference.records import case_problems, question_of, reference_steps, report_of

SYSTEM = "You are a medical AI assistant who evaluates chest X-ray reasoning."

KEY_FINDINGS = """Read the reasoning below about a chest X-ray.

Reasoning:
{text}

List every key medical observation the reasoning relies on (for example the width of the
mediastinum or the size of the cardiac silhouette) with its status as the reasoning states it
(for example present, not present, unlikely, enlarged). Keep each observation short and tied to
the text; where the reasoning is ambiguous or contradicts itself, report what it says without
inferring beyond it.

Answer with JSON only, in this shape:
{{"key_conclusion": [{{"observation": "...", "status": "..."}}]}}"""

RECALL = """Compare two lists of key findings about the same chest X-ray.

Ground truth findings: {reference}
Model findings: {model}

A ground-truth finding is recalled when the model's findings contain it in substance (same
observation, same meaning of its status), however it is worded. List the recalled ground-truth
findings and count them.

Answer with JSON only, in this shape:
{{"recalled_findings": [{{"observation": "...", "status": "..."}}], "recalled_count": 0}}"""

PRECISION = """Judge a model's findings against the chest X-ray report they describe.

Report: {report}
Model findings: {model}

A finding is correct when the report states it or does not contradict it, and also when the
report does not mention the observation (which implies it is normal) and the finding calls it
normal. A finding is incorrect when it contradicts the report, or calls abnormal an observation
the report does not mention. General statements (definitions, what was examined) are correct
unless they misstate the report. List the correct findings and count them.

Answer with JSON only, in this shape:
{{"correct_steps": [{{"observation": "...", "status": "..."}}], "correct_count": 0}}"""

EFFICIENCY = """Judge how efficiently a model reasons about a chest X-ray, against a reference.

Reference reasoning steps: {reference}
Model output: {model}

Split the model's reasoning into its distinct steps. A step is effective when the reference
reasoning supports it; it is ineffective when the reference contradicts it or does not support
it. List the effective steps (their text) and count effective and ineffective steps.

Answer with JSON only, in this shape:
{{"effective_steps": ["..."], "effective_count": 0, "ineffective_count": 0}}"""

ACCURACY = """Question: {question}
Correct answer: {answer}
Model output: {model}

Does the model's final answer match the correct answer?
Answer with JSON only: {{"correct": "yes"}} or {{"correct": "no"}}"""

_FENCE = re.compile(r"^\s*```(?:json)?\s*|\s*```\s*$", re.I)


class JudgeError(ValueError):
    """The judge's answer could not be read (after one retry), or the endpoint failed."""


def _count(value: Any, upper: int | None = None) -> int:
    try:
        number = max(0, int(value))
    except (TypeError, ValueError):
        raise JudgeError(f"expected a count, got {value!r}") from None
    return min(number, upper) if upper is not None else number


def _findings(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, dict):
        raise JudgeError(f"expected an object with key_conclusion, got {type(value).__name__}")
    items = value.get("key_conclusion", value.get("key_conclusions"))
    if not isinstance(items, list):
        raise JudgeError("the key findings answer has no key_conclusion list")
    return [
        {"observation": str(item.get("observation", "")), "status": str(item.get("status", ""))}
        for item in items
        if isinstance(item, dict)
    ]


class LLMJudge:
    name = "llm"

    def __init__(self, client: ChatClient, cache_dir: Path) -> None:
        self.client = client
        self.model = client.resolve_model()
        self.cache_dir = cache_dir  # created with the first answer cached, not before

    def problems(self, row: dict[str, Any]) -> list[str]:
        return case_problems(row, judge_reads_text=True)  # the prompts quote chain and report

    # -- one question, cached --------------------------------------------------------------

    def _path(self, prompt: str) -> Path:
        key = hashlib.sha256(f"{self.model}\x00{SYSTEM}\x00{prompt}".encode()).hexdigest()
        return self.cache_dir / key[:2] / f"{key}.json"

    def ask(self, prompt: str) -> Any:
        """The judge's parsed JSON answer to `prompt` (from the cache when asked before)."""
        path = self._path(prompt)
        if path.is_file():
            try:
                return json.loads(path.read_text(encoding="utf-8"))["answer"]
            except (OSError, ValueError, KeyError, TypeError):
                pass  # a damaged entry (a disk filled up, a hand edit): asked again, rewritten
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]
        last = ""
        for _ in range(2):  # the paper's evaluation asks once more when the JSON is broken
            try:
                text = self.client.complete(messages, temperature=0).text
            except EndpointUnavailable:
                raise  # down or overloaded past its retries: the run stops, not just this row
            except EndpointError as exc:  # refused this request (a 4xx): the row fails with it
                raise JudgeError(str(exc)) from exc
            last = text
            try:
                answer = json.loads(_FENCE.sub("", text.strip()))
            except json.JSONDecodeError:
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(f"{path.name}.{os.getpid()}.part")
            temporary.write_text(
                json.dumps({"model": self.model, "answer": answer}, ensure_ascii=False),
                encoding="utf-8",
            )
            temporary.replace(path)  # atomic: concurrent workers never read half a file
            return answer
        raise JudgeError(f"the judge did not answer in JSON: {last[:200]!r}")

    # -- the four questions --------------------------------------------------------------------

    def score(
        self, row: dict[str, Any], parsed: ParsedOutput, reference: list[KeyFinding]
    ) -> dict[str, Any]:
        pred = str(row.get("pred") or "")
        reference_text = json.dumps(reference_steps(row), ensure_ascii=False)
        gt = _findings(self.ask(KEY_FINDINGS.format(text=reference_text)))
        mine = _findings(self.ask(KEY_FINDINGS.format(text=pred)))
        gt_json, mine_json = (
            json.dumps(gt, ensure_ascii=False),
            json.dumps(mine, ensure_ascii=False),
        )
        recall = self.ask(RECALL.format(reference=gt_json, model=mine_json))
        precision = self.ask(PRECISION.format(report=report_of(row), model=mine_json))
        efficiency = self.ask(EFFICIENCY.format(reference=reference_text, model=pred))
        correct = self.ask(
            ACCURACY.format(question=question_of(row), answer=row.get("answer", ""), model=pred)
        )
        if not all(isinstance(a, dict) for a in (recall, precision, efficiency, correct)):
            raise JudgeError("the judge answered with something other than a JSON object")
        recalled = _count(recall.get("recalled_count"), len(gt))
        right = _count(precision.get("correct_count"), len(mine))
        effective = _count(efficiency.get("effective_count"))
        ineffective = _count(efficiency.get("ineffective_count"))
        completeness = recalled / len(gt) if gt else 0.0
        factuality = right / len(mine) if mine else 0.0
        effectiveness = effective / (effective + ineffective) if effective + ineffective else 0.0
        recalled_items = [f for f in recall.get("recalled_findings") or [] if isinstance(f, dict)]
        correct_items = [f for f in precision.get("correct_steps") or [] if isinstance(f, dict)]
        return {
            "factuality": factuality,
            "completeness": completeness,
            "effectiveness": effectiveness,
            "radrscore": (factuality + completeness + effectiveness) / 3,
            "matched": recalled_items,
            "missed": [f for f in gt if f not in recalled_items],
            "contradicted": [f for f in mine if f not in correct_items],
            "invented": [],  # the paper's judge does not tell invented from contradicted
            "judge_correct": str(correct.get("correct", "")).strip().lower().startswith("y"),
            "judge_key_findings": {"reference": gt, "model": mine},
            "judge_efficiency": {"effective": effective, "ineffective": ineffective},
        }
