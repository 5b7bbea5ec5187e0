"""How fast the offline RadRScore judge scores the real dev predictions, on one core and on all.

Scores the RadRBench-CXR dev records (predictions joined with their cases, as
bench/score_agreement.py loads them) twice, from empty caches each time: in this process, then
in one worker process per CPU as ``python -m inference score --jobs N`` does (process starts
included). Sharing a case's reference reading between its predictions is part of both figures,
as in any scoring run over a file. Exits 0 with a note when the data is absent.

    python bench/score_speed.py [--data DIR] [--jobs N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from bench.score_agreement import DATA, load  # noqa: E402
from inference.score import _in_processes  # noqa: E402
from inference.scoring import clear_caches, score_row  # noqa: E402

TARGET_RATE = 1000.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder of the radrbench-dev files")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes")
    args = parser.parse_args(argv)
    if not (args.data / "predictions.jsonl").exists():
        print(f"skipped: {args.data} has no predictions.jsonl")
        return 0
    rows = load(args.data)

    clear_caches()
    started = time.perf_counter()
    single = [score_row(row) for row in rows]
    one_core = len(rows) / (time.perf_counter() - started)

    started = time.perf_counter()
    parallel = list(_in_processes(rows, args.jobs))
    all_cores = len(rows) / (time.perf_counter() - started)
    assert parallel == single, "scores differ between one process and several"

    print(f"{len(rows)} predictions (target {TARGET_RATE:,.0f}+ predictions/s)")
    print(f"one core:  {one_core:8,.0f} predictions/s (parse + score, cold caches)")
    print(f"{args.jobs} processes: {all_cores:6,.0f} predictions/s (process starts included)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
