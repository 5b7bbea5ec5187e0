"""`python -m inference score`: accuracy and RadRScore for every row of a predictions file.

Rows are predictions in the paper's evaluation shape (``pred`` beside the case's ``question``,
``answer``, ``reason_steps``, ``original_report``), such as `generate`'s output. With
``--cases``, rows that carry only an id and ``pred`` (the paper's released predictions) are joined
with their case on ``case_key``/``case_id``/``item_id`` first. Each output row repeats its input
row and adds the scores (see `inference.scoring`). Prints a mean per model and task.

A row is not scored, and is reported as ``FILE:LINE: reason`` (the command then exits 1), when
its line is not UTF-8 or not a JSON object, its ``pred`` is missing or not text, its case cannot
be found in ``--cases`` (no id, an unknown id, an id naming several cases), or it lacks a case
field the judge needs. ``"pred": ""`` is a model's empty output: it is scored (accuracy 0).
"""

from __future__ import annotations

import json
import os
import sys
from collections import defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from statistics import mean
from typing import Any, TextIO

from inference.config import ConfigError, check_ranges, var_dir
from inference.records import ID_FIELDS, case_id, kind_of, read_jsonl
from inference.scoring import SCORE_FIELDS, Judge, OfflineJudge, case_key, score_row

# Rows per task handed to a worker process: whole cases, so that the predictions of one case
# share its reference reading (`inference.scoring`) in the same process.
CHUNK_ROWS = 64
PARALLEL_ROWS = 256  # by default, smaller files are scored in this process (a start costs ~0.5 s)

Problem = tuple[Path, int, str]  # a line that is not scored: file, line number, what is wrong


@dataclass
class ScoreConfig:
    predictions: Path = field(metadata={"help": "JSON Lines of predictions (rows with `pred`)"})
    out: Path = field(metadata={"help": "where the scored rows go (JSON Lines)"})
    cases: Path | None = field(
        default=None,
        metadata={"help": "case file to join rows with, on case_key / case_id / item_id"},
    )
    judge: str = field(
        default="offline",
        metadata={"help": "offline (cxr findings) or llm", "choices": ("offline", "llm")},
    )
    jobs: int | None = field(
        default=None,
        metadata={
            "help": "offline: worker processes, 1 for none "
            f"(default: one per CPU for {PARALLEL_ROWS}+ rows)",
            "min": 1,
        },
    )
    workers: int = field(default=1, metadata={"help": "llm: requests in flight", "min": 1})
    judge_base_url: str | None = field(
        default=None,
        metadata={"help": "llm: endpoint (default: $JUDGE_BASE_URL, else $OPENAI_BASE_URL)"},
    )
    judge_model: str | None = field(
        default=None,
        metadata={
            "help": "llm: model (default: $JUDGE_MODEL, else $OPENAI_MODEL, else the first listed)"
        },
    )
    judge_api_key: str | None = field(
        default=None, metadata={"help": "llm: key (default: $JUDGE_API_KEY, else $OPENAI_API_KEY)"}
    )
    cache_dir: Path | None = field(
        default=None,
        metadata={
            "help": "llm: answers cached here by prompt hash (default: $WORKBENCH_VAR_DIR/"
            "judge-cache, else var/judge-cache at the repository root)"
        },
    )
    max_retries: int = field(
        default=5, metadata={"help": "llm: retries on 429/5xx/timeouts", "min": 0}
    )

    def __post_init__(self) -> None:
        check_ranges(self)


@dataclass
class ScoreResult:
    scored: int = 0
    failed: int = 0  # rows whose judge failed (scores null, judge_error set)
    bad_lines: list[str] = field(default_factory=list)
    means: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)

    def summary(self, out: Path) -> str:
        text = f"Scored {self.scored} predictions into {out}, {self.failed} failed"
        if self.bad_lines:
            text += f", {len(self.bad_lines)} bad lines not scored (listed above)"
        return text

    def table(self) -> str:
        lines = [
            f"{'model':<28} {'task':<26} {'n':>5} " + " ".join(f"{f:>13}" for f in SCORE_FIELDS)
        ]
        for (model, task), figures in sorted(self.means.items()):
            lines.append(
                f"{model[:28]:<28} {task[:26]:<26} {int(figures['n']):>5} "
                + " ".join(f"{figures[f]:>13.3f}" for f in SCORE_FIELDS)
            )
        return "\n".join(lines)


def make_judge(config: ScoreConfig) -> Judge:
    """The configured judge; raises ConfigError for an LLM judge with no endpoint configured."""
    if config.judge == "offline":
        return OfflineJudge()
    if config.judge != "llm":
        raise ConfigError(f"unknown judge {config.judge!r}: offline or llm")
    # Fail closed: never the openai package's default (the public OpenAI service).
    base_url = (
        config.judge_base_url
        or os.environ.get("JUDGE_BASE_URL")
        or os.environ.get("OPENAI_BASE_URL")
    )
    if not base_url or not base_url.strip():
        raise ConfigError(
            "--judge llm needs --judge-base-url or JUDGE_BASE_URL (or OPENAI_BASE_URL)"
        )
    cache_dir = config.cache_dir or var_dir() / "judge-cache"

    from inference.llm_judge import LLMJudge
    from inference.openai_client import ChatClient

    client = ChatClient(
        base_url=base_url,
        api_key=config.judge_api_key or os.environ.get("JUDGE_API_KEY") or None,
        model=config.judge_model or os.environ.get("JUDGE_MODEL") or None,
        max_retries=config.max_retries,
    )
    return LLMJudge(client, cache_dir)


def _joined(
    rows: list[tuple[int, dict[str, Any]]], config: ScoreConfig, errors: list[Problem]
) -> list[tuple[int, dict[str, Any]]]:
    """Each row merged with its case (the row's fields win); a row whose case cannot be found,
    or is ambiguous, is reported in `errors` and left out."""
    cases_path = config.cases
    assert cases_path is not None
    index: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    count = 0
    for line, case, error in read_jsonl(cases_path):
        if case is None:
            errors.append((cases_path, line, str(error)))
            continue
        count += 1
        keys = {f"{name}:{case[name]}" for name in ID_FIELDS if case.get(name) not in (None, "")}
        keys.add(f"case_id:{case_id(case)}")  # what `generate` writes for a case without an id
        for key in keys:
            index[key].append((line, case))
    joined = []
    for line, row in rows:
        ids = [(name, row[name]) for name in ID_FIELDS if row.get(name) not in (None, "")]
        if not ids:
            fields = ", ".join(ID_FIELDS)
            errors.append((config.predictions, line, f"no id to join with --cases on ({fields})"))
            continue
        found = None
        ambiguous = None
        for name, value in ids:
            matches = index.get(f"{name}:{value}", [])
            if len(matches) == 1:
                found = matches[0][1]
                break
            if matches and ambiguous is None:
                lines = ", ".join(str(number) for number, _ in matches[:5])
                ambiguous = f"{name} {value!r} names {len(matches)} cases (lines {lines})"
        if found is not None:
            joined.append((line, {**found, **row}))
        elif ambiguous is not None:
            errors.append((config.predictions, line, f"{ambiguous} in {cases_path}"))
        else:
            name, value = ids[0]
            empty = "" if count else " (it holds no cases)"
            reason = f"no case with {name} {value!r} in {cases_path}{empty}"
            errors.append((config.predictions, line, reason))
    return joined


def _score_chunk(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [score_row(row) for row in rows]


def _chunks(rows: list[dict[str, Any]], size: int) -> list[list[int]]:
    """Row indices in chunks of about `size`, each case's rows kept in one chunk."""
    by_case: dict[str, list[int]] = defaultdict(list)
    for index, row in enumerate(rows):
        by_case[case_key(row)].append(index)
    chunks: list[list[int]] = [[]]
    for indices in by_case.values():
        if len(chunks[-1]) >= size:
            chunks.append([])
        chunks[-1].extend(indices)
    return [chunk for chunk in chunks if chunk]


def _in_processes(rows: list[dict[str, Any]], jobs: int) -> Iterator[dict[str, Any]]:
    """Rows scored by the offline judge in `jobs` processes, in their input order."""
    chunks = _chunks(rows, max(1, min(CHUNK_ROWS, len(rows) // (4 * jobs))))
    scored: list[dict[str, Any] | None] = [None] * len(rows)
    written = 0
    with get_context("spawn").Pool(jobs) as pool:
        work = pool.imap(_score_chunk, [[rows[i] for i in chunk] for chunk in chunks])
        for chunk, results in zip(chunks, work):
            for index, result in zip(chunk, results):
                scored[index] = result
            while written < len(rows) and scored[written] is not None:
                yield scored[written]  # type: ignore[misc]
                scored[written] = None  # written out: let it go
                written += 1


def _progress(rows: Iterable[dict[str, Any]], total: int) -> Iterator[dict[str, Any]]:
    """A progress bar on stderr when it is a terminal (tqdm decides), else nothing."""
    from tqdm import tqdm

    yield from tqdm(rows, total=total, unit="row", desc="Scoring", disable=None, leave=False)


def run(
    config: ScoreConfig, judge: Judge | None = None, errors: TextIO | None = None
) -> ScoreResult:
    """Score every readable row of `config.predictions` into `config.out`.

    Bad lines are listed on `errors` and in the result, and are not scored. Raises ConfigError
    for a judge that is not configured, EndpointUnavailable when the LLM judge's endpoint fails
    past its retries, OSError for a file that cannot be read or written.
    """
    errors = errors or sys.stderr  # looked up now: a test may have replaced it
    result = ScoreResult()
    judge = judge or make_judge(config)
    problems: list[Problem] = []
    rows: list[tuple[int, dict[str, Any]]] = []
    for line, row, error in read_jsonl(config.predictions):
        if row is None:
            problems.append((config.predictions, line, str(error)))
        elif "pred" not in row:
            problems.append((config.predictions, line, "no `pred` field"))
        elif not isinstance(row["pred"], str):  # "" is an empty output, scored; null is not one
            reason = f"`pred` should be text, not {kind_of(row['pred'])}"
            problems.append((config.predictions, line, reason))
        else:
            rows.append((line, row))
    if config.cases is not None:
        rows = _joined(rows, config, problems)
    hint = "" if config.cases is not None else " (pass --cases to join rows with their cases)"
    usable: list[dict[str, Any]] = []
    for line, row in rows:
        missing = judge.problems(row)
        if missing:
            problems.append((config.predictions, line, "; ".join(missing) + hint))
        else:
            usable.append(row)
    # The predictions file's lines in order, then the case file's.
    problems.sort(key=lambda p: (p[0] != config.predictions, p[1]))
    result.bad_lines = [f"{path}:{line}: {reason}" for path, line, reason in problems]
    for message in result.bad_lines:
        print(message, file=errors)
    if config.jobs is not None:
        jobs = max(1, min(config.jobs, len(usable)))
    else:  # one per CPU, where the file is big enough to repay starting them
        jobs = (os.cpu_count() or 1) if len(usable) >= PARALLEL_ROWS else 1
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    config.out.parent.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack, config.out.open("w", encoding="utf-8") as out:
        scored: Iterable[dict[str, Any]]
        if isinstance(judge, OfflineJudge) and jobs > 1:
            scored = _in_processes(usable, jobs)
        elif config.workers > 1:
            pool = ThreadPoolExecutor(max_workers=config.workers)
            # On an error, the rows not yet started are dropped rather than run to the end.
            stack.callback(pool.shutdown, wait=True, cancel_futures=True)
            scored = pool.map(lambda r: score_row(r, judge), usable)
        else:
            scored = (score_row(r, judge) for r in usable)
        _write(_progress(scored, len(usable)), out, result, groups, errors)
    for key, members in groups.items():
        figures: dict[str, float] = {"n": float(len(members))}
        for name in SCORE_FIELDS:
            values = [m[name] for m in members if m.get(name) is not None]
            figures[name] = mean(values) if values else float("nan")
        result.means[key] = figures
    return result


def _write(
    scored: Any,
    out: TextIO,
    result: ScoreResult,
    groups: dict[tuple[str, str], list[dict[str, Any]]],
    errors: TextIO,
) -> None:
    for row in scored:
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
        result.scored += 1
        if row.get("judge_error"):
            result.failed += 1
            print(
                f"row {row.get('case_id') or row.get('case_key')}: {row['judge_error']}",
                file=errors,
            )
        key = (str(row.get("model") or "?"), str(row.get("task") or row.get("task_type") or "?"))
        groups[key].append(row)
