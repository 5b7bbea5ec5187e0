"""Reasoning chains written by an LLM through any OpenAI-compatible chat endpoint (vLLM, a hosted API).

The paper's three stages, for a case the rule-based miner (`cxr.mining`) has already built (its
question, options, answer and labels are the ground truth the LLM explains):

1. **plan**: per option (or per finding), what to examine and which signs decide it;
2. **steps**: evidence-based steps from the report, one per option or finding, each with its
   observation, status and the report sentence it rests on, then a conclusion naming the answer;
3. **refine**: the same chain with every reference to "the report" removed, ordered as a
   radiologist reads (plan, options in turn, conclusion).

Every reply is JSON, asked for with a JSON schema in `response_format` where the server accepts
one (a server that refuses it is asked again without), and validated either way. 429, 5xx and
connection errors are retried with exponential backoff (honouring Retry-After); at most
`concurrency` cases are in flight. Valid replies are cached on disk by a hash of the prompt, so a
rerun costs nothing. A case whose reply is garbage gets a readable `error` and no steps: the
caller keeps the rule-based chain and reports the error beside it (never drops the case). An
endpoint that cannot serve any case (unreachable, 401/403/404) raises `LLMEndpointError` instead.

No Django here except `LLMConfig.from_settings`, which reads settings lazily.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai

from cxr.labeler import STATUSES
from cxr.mining import (
    CURRENT,
    OPEN,
    PRIOR,
    TEMPORAL,
    Evidence,
    MinedCase,
    MinedStep,
)
from cxr.questions import Option, parse_answer
from cxr.text import sentence_spans
from cxr.vocabulary import canonical

PROMPT_VERSION = 1  # part of every cache key: bump when the prompts change
RETRY_STATUSES = frozenset({408, 409, 429})  # and every 5xx
FATAL_STATUSES = frozenset({401, 403, 404})  # a wrong key, URL or model: no case can succeed
MAX_RETRY_AFTER = 60.0  # seconds: never sleep longer than this on a server's say-so


@dataclass(frozen=True)
class LLMConfig:
    base_url: str  # e.g. http://127.0.0.1:8001/v1
    model: str
    api_key: str = ""  # local servers often need none
    concurrency: int = 4  # cases in flight at once
    timeout: float = 120.0  # seconds per request
    max_retries: int = 5  # on 408/409/429/5xx and connection errors
    backoff: float = 1.0  # first retry waits this long, doubling each time
    cache_dir: Path | None = None  # None: no cache
    temperature: float = 0.0
    json_schema: bool = True  # ask for a JSON schema in response_format (dropped if refused)

    @classmethod
    def from_settings(cls, **overrides: Any) -> LLMConfig:
        """Settings (WORKBENCH_LLM_*), with command options or form values on top."""
        from django.conf import settings

        values: dict[str, Any] = {
            "base_url": settings.LLM_BASE_URL,
            "model": settings.LLM_MODEL,
            "api_key": settings.LLM_API_KEY,
            "concurrency": settings.LLM_CONCURRENCY,
            "timeout": float(settings.LLM_TIMEOUT),
            "max_retries": settings.LLM_MAX_RETRIES,
            "cache_dir": Path(settings.LLM_CACHE_DIR),
        }
        values.update({k: v for k, v in overrides.items() if v not in (None, "")})
        config = cls(**values)
        config.check()
        return config

    def check(self) -> None:
        missing = [name for name in ("base_url", "model") if not getattr(self, name)]
        if missing:
            raise LLMConfigError(
                "LLM mining needs "
                + " and ".join(f"WORKBENCH_LLM_{m.upper()}" for m in missing)
                + " (or the matching --llm-* option)"
            )
        if self.concurrency < 1:
            raise LLMConfigError("LLM concurrency must be at least 1")


class LLMConfigError(ValueError):
    pass


class LLMEndpointError(Exception):
    """The endpoint itself is unusable (unreachable, refuses the key, has no such model): stop."""


class LLMError(Exception):
    """A stage failed for one case: a readable reason, never a stack trace."""

    def __init__(self, stage: str, reason: str) -> None:
        self.stage = stage
        self.reason = reason
        super().__init__(f"{stage}: {reason}")


# --- prompts and schemas -------------------------------------------------------------------

_STEP_ITEM = {
    "type": "object",
    "properties": {
        "text": {"type": "string"},
        "observation": {"type": ["string", "null"]},
        "status": {"type": ["string", "null"], "enum": [*STATUSES, None]},
        "evidence": {"type": ["string", "null"]},
    },
    "required": ["text", "observation", "status", "evidence"],
    "additionalProperties": False,
}
SCHEMAS: dict[str, dict[str, Any]] = {
    "plan": {
        "type": "object",
        "properties": {
            "plans": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"option": {"type": "string"}, "plan": {"type": "string"}},
                    "required": ["option", "plan"],
                    "additionalProperties": False,
                },
            }
        },
        "required": ["plans"],
        "additionalProperties": False,
    },
    "steps": {
        "type": "object",
        "properties": {
            "steps": {"type": "array", "items": _STEP_ITEM},
            "answer": {"type": "string"},
        },
        "required": ["steps", "answer"],
        "additionalProperties": False,
    },
    "refine": {
        "type": "object",
        "properties": {"steps": {"type": "array", "items": _STEP_ITEM}},
        "required": ["steps"],
        "additionalProperties": False,
    },
}

SYSTEM = {
    "plan": (
        "You are an experienced radiologist preparing to answer a question about a chest X-ray. "
        "For each option (for a question without options: each finding worth checking), write a "
        "short plan: which structures to examine on the image and which signs would confirm or "
        "exclude it. Reply with JSON only, in this shape: "
        '{"plans": [{"option": "<option or finding>", "plan": "<what to examine>"}]}'
    ),
    "steps": (
        "You are an experienced radiologist writing the step-by-step reasoning that leads from a "
        "chest X-ray to the correct answer. Start with one step saying what the question needs "
        "examined. Then follow the plan: one step per option (or per finding), each saying what "
        "to look at, what is seen and what it means, using only facts the report states; a "
        "finding the report does not mention is normal. End with one step that names the correct "
        "answer. For every step give the observation it concerns (a CheXpert observation name "
        'such as "Pleural Effusion", or null), its status (present, absent, uncertain, or null) '
        "and the exact sentence of the report it rests on (or null). Reply with JSON only: "
        '{"steps": [{"text": "...", "observation": "...", "status": "...", "evidence": "..."}], '
        '"answer": "<the correct answer>"}'
    ),
    "refine": (
        "You are editing a radiologist's reasoning chain about a chest X-ray so that it reads as "
        "reasoning made directly from the image. Remove every reference to the report, to what "
        "was mentioned, described or noted, and to the radiologist: state what is seen on the "
        "image instead. Order the steps as a radiologist reads: the planning step first, then "
        "each option or finding in turn, and last the conclusion, which names the answer. Keep "
        "each step's observation, status and evidence unchanged. Reply with JSON only: "
        '{"steps": [{"text": "...", "observation": "...", "status": "...", "evidence": "..."}]}'
    ),
}


def _case_text(case: MinedCase) -> str:
    parts = [f"Question:\n{_stem(case.question)}"]
    if case.options:
        parts.append("Options:\n" + "\n".join(f"{o['key']}) {o['text']}" for o in case.options))
    parts.append(f"Correct answer: {_answer_text(case)}")
    if case.task == TEMPORAL:
        parts.append(f"Report of the prior chest X-ray:\n{case.prior_report}")
        parts.append(f"Report of the current chest X-ray:\n{case.report}")
    else:
        parts.append(f"Radiology report of this chest X-ray:\n{case.report}")
    return "\n\n".join(parts)


def _stem(question: str) -> str:
    return question.split(" Options:\n", 1)[0]


def _answer_text(case: MinedCase) -> str:
    if not case.options:
        return case.answer_content
    texts = {o["key"]: o["text"] for o in case.options}
    return ", ".join(f"{letter}) {texts[letter]}" for letter in case.answer)


def messages_for(stage: str, case: MinedCase, previous: Any = None) -> list[dict[str, str]]:
    user = _case_text(case)
    if stage == "steps":
        plans = "\n".join(f"- {p['option']}: {p['plan']}" for p in previous)
        user += f"\n\nPlan:\n{plans}"
    elif stage == "refine":
        user += "\n\nChain to refine:\n" + json.dumps(
            {"steps": previous}, ensure_ascii=False, indent=1
        )
    return [{"role": "system", "content": SYSTEM[stage]}, {"role": "user", "content": user}]


# --- validation ----------------------------------------------------------------------------

_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.S)
_REPORT_WORDS = re.compile(r"(?i)\b(?:report(?:s|ed)?|mention(?:s|ed)?)\b")


def parse_json(stage: str, content: str | None) -> Any:
    if not content or not content.strip():
        raise LLMError(stage, "the model returned an empty reply")
    text = content.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        snippet = " ".join(content.split())[:120]
        raise LLMError(
            stage, f"the reply is not JSON ({exc.msg} at column {exc.colno}): {snippet!r}"
        ) from None


def _require(stage: str, ok: bool, reason: str) -> None:
    if not ok:
        raise LLMError(stage, reason)


def _check_steps(stage: str, data: Any) -> list[dict[str, Any]]:
    _require(stage, isinstance(data, dict), "the reply is not a JSON object")
    steps = data.get("steps")
    _require(
        stage, isinstance(steps, list) and len(steps) >= 2, "expected a list of at least two steps"
    )
    for number, step in enumerate(steps, start=1):
        _require(stage, isinstance(step, dict), f"step {number} is not an object")
        text = step.get("text")
        _require(stage, isinstance(text, str) and bool(text.strip()), f"step {number} has no text")
        status = step.get("status")
        _require(
            stage,
            status is None or status in STATUSES,
            f"step {number} has status {status!r} (expected present, absent, uncertain or null)",
        )
        for name in ("observation", "evidence"):
            value = step.get(name)
            _require(
                stage,
                value is None or isinstance(value, str),
                f"step {number}: {name} should be text or null",
            )
    return steps


def validate(stage: str, data: Any, case: MinedCase) -> Any:
    """The stage's payload, or LLMError naming what is wrong with it."""
    if stage == "plan":
        _require(
            stage,
            isinstance(data, dict) and isinstance(data.get("plans"), list) and data["plans"],
            'expected {"plans": [...]} with at least one plan',
        )
        for number, item in enumerate(data["plans"], start=1):
            _require(
                stage,
                isinstance(item, dict)
                and isinstance(item.get("plan"), str)
                and item["plan"].strip()
                and isinstance(item.get("option"), str),
                f"plan {number} needs text fields option and plan",
            )
        return data["plans"]
    steps = _check_steps(stage, data)
    if stage == "steps":
        answer = data.get("answer")
        _require(stage, isinstance(answer, str) and bool(answer.strip()), "no answer given")
        _check_answer(stage, answer, case)
    else:
        for number, step in enumerate(steps, start=1):
            words = _REPORT_WORDS.search(step["text"])
            _require(
                stage,
                words is None,
                f"step {number} still refers to the report ({words.group(0) if words else ''!r})",
            )
        if case.options:
            last = steps[-1]["text"]
            names_answer = (
                any(re.search(rf"\b{letter}\b", last) for letter in case.answer)
                or case.answer_content.lower() in last.lower()
            )
            _require(stage, names_answer, "the last step does not name the answer")
    return steps


def _check_answer(stage: str, answer: str, case: MinedCase) -> None:
    if case.task == OPEN:
        given = _finding_set(answer)
        wanted = _finding_set(case.answer_content)
        _require(
            stage,
            given == wanted,
            f"the model answered {answer!r}, but the labels say {case.answer_content!r}",
        )
        return
    options = [Option(o["key"], o["text"]) for o in case.options]
    try:
        letters = parse_answer(answer, options)
    except ValueError as exc:
        raise LLMError(stage, str(exc)) from None
    _require(
        stage,
        letters == sorted(case.answer),
        f"the model answered {', '.join(letters)}, but the labels say {', '.join(case.answer)}",
    )


def _finding_set(text: str) -> set[str]:
    names = set()
    for part in re.split(r"\s*(?:,|;|\band\b)\s*", text.strip().rstrip(".")):
        if part:
            try:
                names.add(canonical(part))
            except KeyError:
                names.add(part.lower())
    return names


# --- evidence --------------------------------------------------------------------------------


def locate(report: str, quote: str, which: str) -> Evidence | None:
    """The report sentence holding `quote` (case and spacing ignored), or None."""
    wanted = " ".join(quote.lower().split()).strip(" .\"'")
    if len(wanted) < 4:
        return None
    folded, where = [], []  # the report with runs of spaces collapsed, and each char's offset
    previous_space = False
    for index, char in enumerate(report):
        if char.isspace():
            if previous_space:
                continue
            char, previous_space = " ", True
        else:
            previous_space = False
        folded.append(char.lower())
        where.append(index)
    found = "".join(folded).find(wanted)
    if found < 0:
        return None
    start, end = where[found], where[found + len(wanted) - 1] + 1
    for s_start, s_end in sentence_spans(report):
        if s_start <= start and end <= s_end:
            start, end = s_start, s_end
            break
    return Evidence(which, start, end, report[start:end])


def _finding(step: dict[str, Any]) -> dict[str, Any] | None:
    observation, status = step.get("observation"), step.get("status")
    if not observation or not status:
        return None
    try:
        observation = canonical(observation)
    except KeyError:
        observation = observation.strip()
    return {"observation": observation, "status": status}


def to_steps(raw: Sequence[dict[str, Any]], case: MinedCase) -> list[MinedStep]:
    steps = []
    for index, item in enumerate(raw):
        finding = _finding(item)
        evidence = None
        quote = item.get("evidence")
        if quote:
            evidence = locate(case.report, quote, CURRENT)
            if evidence is None and case.prior_report:
                evidence = locate(case.prior_report, quote, PRIOR)
        if evidence is None and finding is not None and quote:
            evidence = case.evidence_for(finding["observation"])  # the labeler's sentence
        kind = "plan" if index == 0 else "conclusion" if index == len(raw) - 1 else "finding"
        steps.append(MinedStep(" ".join(item["text"].split()), kind, finding, evidence))
    return steps


# --- the client ----------------------------------------------------------------------------


@dataclass
class LLMOutcome:
    case: MinedCase
    steps: list[MinedStep] | None = None
    plan: dict[str, str] = field(default_factory=dict)
    error: str = ""


class LLMMiner:
    """One endpoint, one cache, shared by the threads that mine cases concurrently."""

    def __init__(self, config: LLMConfig, *, sleep: Callable[[float], None] = time.sleep) -> None:
        config.check()
        self.config = config
        self.client = openai.OpenAI(
            base_url=config.base_url,
            api_key=config.api_key or "none",
            max_retries=0,
            timeout=config.timeout,  # retries are ours: counted, logged, tested
        )
        self._sleep = sleep
        self._lock = threading.Lock()
        self._schema = config.json_schema
        self.requests = 0
        self.cache_hits = 0
        self.retries = 0

    # one case, three stages
    def mine(self, case: MinedCase) -> LLMOutcome:
        outcome = LLMOutcome(case)
        try:
            plans = self.ask("plan", case)
            outcome.plan = {p["option"]: p["plan"] for p in plans}
            steps = self.ask("steps", case, plans)
            refined = self.ask("refine", case, steps)
            outcome.steps = to_steps(refined, case)
        except LLMError as exc:
            outcome.error = str(exc)
        return outcome

    def mine_many(
        self, cases: Sequence[MinedCase], on_done: Callable[[LLMOutcome], None] | None = None
    ) -> list[LLMOutcome]:
        """Mine cases with at most `concurrency` in flight; outcomes in the order of `cases`."""
        with ThreadPoolExecutor(
            max_workers=self.config.concurrency, thread_name_prefix="llm"
        ) as pool:
            futures = [pool.submit(self.mine, case) for case in cases]
            outcomes = []
            for future in futures:
                outcome = future.result()
                if on_done:
                    on_done(outcome)
                outcomes.append(outcome)
        return outcomes

    def ask(self, stage: str, case: MinedCase, previous: Any = None) -> Any:
        messages = messages_for(stage, case, previous)
        key = self._key(stage, messages)
        cached = self._cached(key)
        if cached is not None:
            try:
                result = validate(stage, parse_json(stage, cached), case)
            except LLMError:
                pass  # a stale or hand-edited entry: ask again
            else:
                with self._lock:
                    self.cache_hits += 1
                return result
        content = self._complete(stage, messages)
        result = validate(stage, parse_json(stage, content), case)
        self._store(key, stage, content)  # only valid replies: garbage is asked again next time
        return result

    def _key(self, stage: str, messages: list[dict[str, str]]) -> str:
        payload = {
            "version": PROMPT_VERSION,
            "stage": stage,
            "model": self.config.model,
            "temperature": self.config.temperature,
            "messages": messages,
        }
        return hashlib.sha256(
            json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()
        ).hexdigest()

    def _path(self, key: str) -> Path | None:
        if self.config.cache_dir is None:
            return None
        return Path(self.config.cache_dir) / key[:2] / f"{key}.json"

    def _cached(self, key: str) -> str | None:
        path = self._path(key)
        if path is None or not path.is_file():
            return None
        try:
            return str(json.loads(path.read_text(encoding="utf-8"))["content"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _store(self, key: str, stage: str, content: str) -> None:
        path = self._path(key)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{threading.get_ident()}.part")
        temporary.write_text(
            json.dumps(
                {"stage": stage, "model": self.config.model, "content": content}, ensure_ascii=False
            ),
            encoding="utf-8",
        )
        temporary.replace(path)  # atomic: a concurrent reader never sees half an entry

    def _complete(self, stage: str, messages: list[dict[str, str]]) -> str:
        attempt = 0
        while True:
            kwargs: dict[str, Any] = {
                "model": self.config.model,
                "messages": messages,
                "temperature": self.config.temperature,
            }
            with_schema = self._schema
            if with_schema:
                kwargs["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {
                        "name": f"chain_{stage}",
                        "schema": SCHEMAS[stage],
                        "strict": True,
                    },
                }
            with self._lock:
                self.requests += 1
            try:
                response = self.client.chat.completions.create(**kwargs)
            except openai.BadRequestError as exc:
                if with_schema:
                    with self._lock:
                        self._schema = False  # this server takes no JSON schema: ask in words only
                    continue
                raise LLMError(
                    stage, f"the server refused the request ({exc.status_code}): {_message(exc)}"
                ) from None
            except (openai.APIConnectionError, openai.APIStatusError) as exc:
                status = getattr(exc, "status_code", None)
                if status in FATAL_STATUSES:
                    raise LLMEndpointError(
                        f"{self.config.base_url} (model {self.config.model}): HTTP {status}: {_message(exc)}"
                    ) from None
                retryable = status is None or status in RETRY_STATUSES or status >= 500
                if status is None and attempt >= self.config.max_retries:
                    raise LLMEndpointError(
                        f"{self.config.base_url}: no connection after {attempt + 1} attempts: {_message(exc)}"
                    ) from None
                if not retryable or attempt >= self.config.max_retries:
                    what = f"HTTP {status}" if status else "no connection"
                    tries = f" after {attempt + 1} attempts" if retryable else ""
                    raise LLMError(stage, f"{what}{tries}: {_message(exc)}") from None
                self._sleep(self._delay(exc, attempt))
                attempt += 1
                with self._lock:
                    self.retries += 1
                continue
            if not response.choices:
                raise LLMError(stage, "the server returned no choices")
            return response.choices[0].message.content or ""

    def _delay(self, exc: Exception, attempt: int) -> float:
        response = getattr(exc, "response", None)
        headers = getattr(response, "headers", None) or {}
        for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
            value = headers.get(name)
            if value is not None:
                try:
                    return min(max(float(value) * scale, 0.0), MAX_RETRY_AFTER)
                except ValueError:
                    break
        return self.config.backoff * (2**attempt)


def _message(exc: Exception) -> str:
    return " ".join(str(getattr(exc, "message", exc)).split())[:200]
