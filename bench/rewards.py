"""Benchmark the GRPO reward functions: completions per second for each, and each process judge.

Completions are the real model outputs of ``../shared/data/radrbench-dev/predictions.jsonl``
(gpt-4o, chestx-reasoner-7b, qwen2-vl-72b), scored against their case's reference chain
(``cases.jsonl``: answer, options, reasoning steps, whose findings stand in for the exported
``reference_findings``). Without that folder, synthetic completions stand in (said in the output).

- format, accuracy, process/offline: pure Python, one core. The offline judge caches its reading
  of each text, so it is timed cold (caches cleared, every completion new, as in training) and
  warm (the same completions again).
- process/prm: the tiny PRM from `training.tiny` on the CPU (architecture cost only: 2 layers, 64
  wide), or a trained one with ``--prm PATH``.
- process/llm: a loopback OpenAI-compatible stand-in that answers at once (client, HTTP and
  parsing overhead only), or a real endpoint with ``--llm-base-url URL --llm-model NAME``.

    python bench/rewards.py [--limit N] [--prm PATH] [--llm-base-url URL --llm-model NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core, for every judge alike

from cxr import radrscore  # noqa: E402
from cxr.prompts import conversation  # noqa: E402
from cxr.questions import parse_question  # noqa: E402
from cxr.text import steps_from  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared/data/radrbench-dev"
# Seconds of repeated work per timed figure: long enough to be stable, short enough to wait for.
MIN_SECONDS = 1.0


def load_batch(limit: int) -> tuple[list[str], dict[str, list[Any]], str]:
    """(completions, reward columns, where they came from)."""
    cases_path, predictions_path = DATA / "cases.jsonl", DATA / "predictions.jsonl"
    if cases_path.is_file() and predictions_path.is_file():
        cases = {}
        for line in cases_path.open(encoding="utf-8"):
            case = json.loads(line)
            cases[case["case_key"]] = case
        completions: list[str] = []
        columns: dict[str, list[Any]] = {
            k: [] for k in ("prompts", "answer", "options", "reference_steps", "reference_findings")
        }
        for line in predictions_path.open(encoding="utf-8"):
            prediction = json.loads(line)
            case = cases.get(prediction["case_key"])
            if case is None or not isinstance(prediction.get("pred"), str):
                continue
            question = parse_question(case["question"])
            try:
                steps = steps_from(case["reason_steps"])
            except ValueError:
                continue
            completions.append(prediction["pred"])
            columns["prompts"].append(conversation(case["question"], 1))
            columns["answer"].append(str(case["answer"]))
            columns["options"].append([{"key": o.key, "text": o.text} for o in question.options])
            columns["reference_steps"].append(steps)
            columns["reference_findings"].append(
                [f.as_dict() for f in radrscore.findings_from_steps(steps)]
            )
            if len(completions) >= limit:
                break
        return completions, columns, f"{len(completions)} real predictions from {DATA}"
    return _synthetic(limit)


_SIZES = ("small", "moderate", "large", "mild", "trace")
_SIDES = ("left", "right", "bilateral")
_POSITIVE = (
    "There is a {size} {side} pleural effusion.",
    "There is {size} pulmonary edema.",
    "The heart is enlarged, consistent with cardiomegaly.",
    "There is a {size} {side} pneumothorax.",
    "There is {side} lower lobe consolidation.",
)
_NEGATIVE = (
    "There is no pneumothorax.",
    "No pleural effusion is seen.",
    "There is no focal consolidation.",
    "No fracture is identified.",
    "The heart size is normal.",
)


def _synthetic(limit: int) -> tuple[list[str], dict[str, list[Any]], str]:
    """Short chains like the verified ones (4-5 steps), every step text unique, so that nothing is
    read from a cache: as in training, where each completion is new."""
    import random

    rng = random.Random(0)
    completions: list[str] = []
    references: list[list[str]] = []
    for index in range(limit):
        steps = [
            rng.choice(_POSITIVE).format(size=rng.choice(_SIZES), side=rng.choice(_SIDES)),
            rng.choice(_NEGATIVE),
            rng.choice(_POSITIVE).format(size=rng.choice(_SIZES), side=rng.choice(_SIDES)),
            rng.choice(_NEGATIVE),
        ]
        steps = [f"{step[:-1]} (image {index}, step {n})." for n, step in enumerate(steps)]
        completions.append("<think>\n" + "\n".join(steps) + "\n</think>\n<answer>A</answer>")
        references.append(steps[:3])
    question = "Does this chest X-ray show pleural effusion? Options:\nA) Yes\nB) No"
    columns = {
        "prompts": [conversation(question, 1)] * limit,
        "answer": ["A"] * limit,
        "options": [[{"key": "A", "text": "Yes"}, {"key": "B", "text": "No"}]] * limit,
        "reference_steps": references,
        "reference_findings": [
            [f.as_dict() for f in radrscore.findings_from_steps(r)] for r in references
        ],
    }
    return completions, columns, f"{limit} short generated chains (4 steps, all different)"


def rate(function: Callable[[], Any], count: int, *, once: bool = False) -> float:
    """Completions per second: `function` scores `count` completions per call."""
    start = time.perf_counter()
    calls = 0
    while True:
        function()
        calls += 1
        elapsed = time.perf_counter() - start
        if once or elapsed >= MIN_SECONDS:
            return calls * count / elapsed


def clear_caches() -> None:
    """Forget every text read so far: the next figure is cold."""
    from training.rewards import parsed_output

    # Every memo of cxr.radrscore (whatever its names), and the rewards' parse cache.
    memos = [value for value in vars(radrscore).values() if hasattr(value, "cache_clear")]
    for cached in (*memos, parsed_output):
        cached.cache_clear()


class _InstantJudge(BaseHTTPRequestHandler):
    """Answers every chat completion at once with a fixed verdict (measures our side only)."""

    reply = json.dumps({"steps": [{"step": 1, "verdict": "correct"}], "recalled_findings": [1]})

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps(
            {
                "id": "b",
                "object": "chat.completion",
                "created": 0,
                "model": "bench",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": self.reply},
                        "finish_reason": "stop",
                    }
                ],
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def cpu_figures(completions: list[str], columns: dict[str, list[Any]]) -> dict[str, float]:
    """Completions per second of the pure-Python rewards, each timed cold (nothing cached)."""
    from training.rewards import OfflineJudge, ProcessReward, accuracy_reward, format_reward

    count = len(completions)
    offline = ProcessReward(OfflineJudge())
    figures = {}
    for name, call in (
        ("format", lambda: format_reward(completions)),
        ("accuracy", lambda: accuracy_reward(completions, **columns)),
        ("process/offline", lambda: offline(completions=completions, **columns)),
    ):
        clear_caches()
        figures[name] = rate(call, count, once=True)
    clear_caches()

    def step() -> None:  # what one GRPO step asks: all three rewards on the same completions
        format_reward(completions)
        accuracy_reward(completions, **columns)
        offline(completions=completions, **columns)

    figures["all three, one step"] = rate(step, count, once=True)
    figures["process/offline, warm"] = rate(
        lambda: offline(completions=completions, **columns), count
    )
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--limit", type=int, default=1000, help="completions per corpus (default 1000)"
    )
    parser.add_argument("--prm", help="a trained PRM folder (default: the tiny one, built now)")
    parser.add_argument("--prm-limit", type=int, default=256, help="completions for the PRM figure")
    parser.add_argument(
        "--llm-base-url", help="a real OpenAI-compatible endpoint (default: loopback)"
    )
    parser.add_argument("--llm-model", default="bench", help="model name for --llm-base-url")
    parser.add_argument("--llm-limit", type=int, default=200, help="completions for the LLM figure")
    parser.add_argument("--llm-workers", type=int, default=8, help="requests in flight")
    args = parser.parse_args(argv)

    from training.rewards import LLMJudge, PRMJudge, ProcessReward

    corpora = [_synthetic(args.limit), load_batch(args.limit)]
    if corpora[1][2] == corpora[0][2] or "real" not in corpora[1][2]:
        corpora = corpora[:1]  # no real predictions here: the generated chains only
    print(f"One core (OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}); cold = nothing cached.")
    table = [
        (source, cpu_figures(completions, columns)) for completions, columns, source in corpora
    ]
    names = list(table[0][1])
    width = max(len(name) for name in names)
    for source, figures in table:
        print(f"\n{source}")
        for name in names:
            print(f"  {name:<{width}}  {figures[name]:>9,.0f} completions/s")

    completions, columns, source = corpora[-1]
    import torch

    torch.set_num_threads(1)
    print(f"\nModel judges on {source}:")
    with tempfile.TemporaryDirectory() as scratch:
        if args.prm:
            prm_path, prm_note = args.prm, args.prm
        else:
            from training.tiny import build_tiny

            prm_path = str(build_tiny(scratch).text)
            prm_note = "tiny text model (2 layers, 64 wide), CPU: architecture cost only"
        prm_reward = ProcessReward(PRMJudge(prm_path, device="cpu", batch_size=16))
        subset = {k: v[: args.prm_limit] for k, v in columns.items()}
        some = completions[: args.prm_limit]
        clear_caches()
        figure = rate(lambda: prm_reward(completions=some, **subset), len(some), once=True)
        print(f"  process/prm  {figure:>9,.0f} completions/s  {prm_note}")

    server = None
    if args.llm_base_url:
        base_url, llm_note = args.llm_base_url, args.llm_base_url
    else:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _InstantJudge)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        llm_note = "loopback stand-in answering at once: client, HTTP and parsing only"
    try:
        llm = ProcessReward(LLMJudge(base_url, args.llm_model, max_workers=args.llm_workers))
        subset = {k: v[: args.llm_limit] for k, v in columns.items()}
        some = completions[: args.llm_limit]
        clear_caches()
        figure = rate(lambda: llm(completions=some, **subset), len(some), once=True)
        print(f"  process/llm  {figure:>9,.0f} completions/s  {llm_note}")
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()

    target = 2000
    for source, figures in table:
        cold = figures["process/offline"]
        verdict = "meets" if cold >= target else "misses"
        print(f"Offline judge, cold, {source}: {cold:,.0f}/s {verdict} the {target:,}/s target.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
