"""`python -m inference score`: accuracy and RadRScore for every row of a predictions file.

Rows are predictions in the paper's evaluation shape (``pred`` beside the case's ``question``,
``answer``, ``reason_steps``, ``original_report``), such as `generate`'s output. With
``--cases``, rows that carry only an id and ``pred`` (the paper's released predictions) are joined
with their case on ``case_key``/``case_id``/``item_id`` first. Each output row repeats its input
row and adds the scores (see `inference.scoring`). Prints a mean per model and task.
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

from inference.records import ID_FIELDS, read_jsonl
from inference.scoring import SCORE_FIELDS, Judge, OfflineJudge, case_key, score_row

# Rows per task handed to a worker process: whole cases, so that the predictions of one case
# share its reference reading (`inference.scoring`) in the same process.
CHUNK_ROWS = 64
PARALLEL_ROWS = 256  # by default, smaller files are scored in this process (a start costs ~0.5 s)


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
            f"(default: one per CPU for {PARALLEL_ROWS}+ rows)"
        },
    )
    workers: int = field(default=1, metadata={"help": "llm: requests in flight"})
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
    cache_dir: Path = field(
        default=Path("var/judge-cache"),
        metadata={"help": "llm: answers cached here by prompt hash"},
    )
    max_retries: int = field(default=5, metadata={"help": "llm: retries on 429/5xx/timeouts"})


@dataclass
class ScoreResult:
    scored: int = 0
    failed: int = 0  # rows whose judge failed (scores null, judge_error set)
    bad_lines: list[str] = field(default_factory=list)
    means: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)

    def summary(self, out: Path) -> str:
        text = f"Scored {self.scored} predictions into {out}, {self.failed} failed"
        if self.bad_lines:
            text += f", {len(self.bad_lines)} unreadable lines"
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
    if config.judge == "offline":
        return OfflineJudge()
    if config.judge != "llm":
        raise ValueError(f"unknown judge {config.judge!r}: offline or llm")
    import os

    from inference.llm_judge import LLMJudge
    from inference.openai_client import ChatClient

    client = ChatClient(
        base_url=config.judge_base_url or os.environ.get("JUDGE_BASE_URL") or None,
        api_key=config.judge_api_key or os.environ.get("JUDGE_API_KEY") or None,
        model=config.judge_model or os.environ.get("JUDGE_MODEL") or None,
        max_retries=config.max_retries,
    )
    return LLMJudge(client, config.cache_dir)


def _joined(
    rows: list[dict[str, Any]], cases_path: Path, errors: list[str]
) -> list[dict[str, Any]]:
    cases: dict[str, dict[str, Any]] = {}
    for line, case, error in read_jsonl(cases_path):
        if case is None:
            errors.append(f"{cases_path}:{line}: {error}")
            continue
        for name in ID_FIELDS:
            if case.get(name) not in (None, ""):
                cases.setdefault(f"{name}:{case[name]}", case)
    joined = []
    for row in rows:
        case = next(
            (cases[f"{n}:{row[n]}"] for n in ID_FIELDS if f"{n}:{row.get(n)}" in cases), None
        )
        joined.append({**case, **row} if case else row)
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
    config: ScoreConfig, judge: Judge | None = None, errors: TextIO = sys.stderr
) -> ScoreResult:
    result = ScoreResult()
    rows: list[dict[str, Any]] = []
    for line, row, error in read_jsonl(config.predictions):
        if row is None:
            result.bad_lines.append(f"{config.predictions}:{line}: {error}")
        elif "pred" not in row:
            result.bad_lines.append(f"{config.predictions}:{line}: no `pred` field")
        else:
            rows.append(row)
    if config.cases is not None:
        rows = _joined(rows, config.cases, result.bad_lines)
    for message in result.bad_lines:
        print(message, file=errors)
    judge = judge or make_judge(config)
    workers = max(1, config.workers)
    if config.jobs is not None:
        jobs = max(1, min(config.jobs, len(rows)))
    else:  # one per CPU, where the file is big enough to repay starting them
        jobs = (os.cpu_count() or 1) if len(rows) >= PARALLEL_ROWS else 1
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    config.out.parent.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack, config.out.open("w", encoding="utf-8") as out:
        scored: Iterable[dict[str, Any]]
        if isinstance(judge, OfflineJudge) and jobs > 1:
            scored = _in_processes(rows, jobs)
        elif workers > 1:
            pool = stack.enter_context(ThreadPoolExecutor(max_workers=workers))
            scored = pool.map(lambda r: score_row(r, judge), rows)
        else:
            scored = (score_row(r, judge) for r in rows)
        _write(_progress(scored, len(rows)), out, result, groups, errors)
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
