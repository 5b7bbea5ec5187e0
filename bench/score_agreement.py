"""How well the offline RadRScore judge agrees with the paper's GPT-4o judge; print figures.

On the real RadRBench-CXR dev records (predictions of gpt-4o, chestx-reasoner-7b and
qwen2-vl-72b joined with their cases), for each component (factuality, completeness,
effectiveness, RadRScore, accuracy):

- the per-prediction Spearman correlation between the offline judge and the paper's judge, whose
  components are computed as the paper's evaluation code does: completeness = recalled_count /
  len(gt_key_finding), factuality = correct_count / len(pred_key_finding), effectiveness =
  effective_count / (effective_count + ineffective_count) (a prediction whose denominator is 0
  counts as 0 there, as in the paper's averages; malformed judge records are left out);
- per task, whether both judges rank the three models in the same order by their mean;
- the same per-prediction Spearman on two halves of the cases (split by a hash of case_key): the
  weights `cxr.radrscore` gives the wording were chosen on the first ("tuning") half, so the
  second ("held-out") half is the honest figure;
- how consistent the paper's judge is with itself (its key findings for the same reference,
  read once per prediction): a ceiling on any agreement with it;
- predictions scored per second on one core (parse + score, cold caches: every report and
  reference chain labelled once, as `python -m inference score` does on a fresh file).

Reads ../shared/data/radrbench-dev/{cases,predictions}.jsonl; exits 0 with a note when absent.

    python bench/score_agreement.py [--data DIR] [--worst N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from statistics import mean
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from inference.scoring import score_row  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "radrbench-dev"
COMPONENTS = ("factuality", "completeness", "effectiveness", "radrscore", "accuracy")
MODELS = ("gpt-4o", "chestx-reasoner-7b", "qwen2-vl-72b")
TARGET_SPEARMAN = 0.5
TARGET_RATE = 1000.0


def paper_scores(prediction: dict[str, Any]) -> dict[str, float] | None:
    """The paper judge's components for one prediction, or None for a malformed judge record."""
    try:
        gt = prediction["judge_gt_key_finding"]
        gt_findings = gt.get("key_conclusion", gt.get("key_conclusions"))
        pred_findings = prediction["judge_pred_key_finding"].get("key_conclusion")
        recalled = prediction["judge_recall_res"]["recalled_count"]
        correct = prediction["judge_precision_res"]["correct_count"]
        effective = prediction["judge_efficiency"]["effective_count"]
        ineffective = prediction["judge_efficiency"]["ineffective_count"]
        if not isinstance(gt_findings, list) or not isinstance(pred_findings, list):
            return None
        completeness = recalled / len(gt_findings) if gt_findings else 0.0
        factuality = correct / len(pred_findings) if pred_findings else 0.0
        total = effective + ineffective
        effectiveness = effective / total if total else 0.0
    except (KeyError, TypeError, AttributeError):
        return None
    return {
        "factuality": min(factuality, 1.0),
        "completeness": min(completeness, 1.0),
        "effectiveness": min(effectiveness, 1.0),
        "radrscore": (min(factuality, 1.0) + min(completeness, 1.0) + min(effectiveness, 1.0)) / 3,
        "accuracy": 1.0
        if str(prediction.get("judge_correct", "")).lower().startswith("y")
        else 0.0,
    }


def ranks(values: list[float]) -> list[float]:
    """1-based ranks, ties sharing their average rank."""
    order = sorted(range(len(values)), key=values.__getitem__)
    result = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for index in order[start : end + 1]:
            result[index] = (start + end) / 2 + 1
        start = end + 1
    return result


def spearman(xs: list[float], ys: list[float]) -> float:
    """Spearman's rho: Pearson's correlation of the ranks (ties averaged)."""
    rx, ry = ranks(xs), ranks(ys)
    mx, my = mean(rx), mean(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    vx = sum((a - mx) ** 2 for a in rx)
    vy = sum((b - my) ** 2 for b in ry)
    return cov / (vx * vy) ** 0.5 if vx and vy else 0.0


def held_out(case_key: str) -> bool:
    """The half of the cases that no scoring choice was tuned on (a fixed hash of case_key)."""
    return int(hashlib.md5(case_key.encode()).hexdigest(), 16) % 2 == 1


def load(data: Path) -> list[dict[str, Any]]:
    cases = {}
    with (data / "cases.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                case = json.loads(line)
                cases[case["case_key"]] = case
    rows = []
    with (data / "predictions.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                prediction = json.loads(line)
                rows.append({**cases[prediction["case_key"]], **prediction})
    return rows


def judge_self_agreement(rows: list[dict[str, Any]]) -> None:
    """How consistent the paper's judge is with itself: a ceiling on agreeing with it.

    The judge extracts the reference chain's key findings anew for every prediction, so cases
    answered by several models show how often it reads the same reference differently.
    """
    by_case: dict[str, list[list[Any]]] = defaultdict(list)
    for row in rows:
        gt = row.get("judge_gt_key_finding")
        findings = (
            gt.get("key_conclusion", gt.get("key_conclusions")) if isinstance(gt, dict) else None
        )
        if isinstance(findings, list):
            by_case[row["case_key"]].append(findings)
    repeated = [readings for readings in by_case.values() if len(readings) > 1]
    if not repeated:
        return
    differing = sum(
        len({json.dumps(r, sort_keys=True) for r in readings}) > 1 for readings in repeated
    )
    first = [len(readings[0]) for readings in repeated]
    second = [len(readings[1]) for readings in repeated]
    print(
        f"\nThe paper's judge against itself: of {len(repeated)} cases it judged more than once, it "
        f"read the same reference chain into different key findings {differing} times; the "
        f"number of reference findings it found agrees between two readings with Spearman "
        f"{spearman(first, second):.2f} (completeness is recalled / that number)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder of the radrbench-dev files")
    parser.add_argument("--worst", type=int, default=0, help="print the N largest disagreements")
    args = parser.parse_args(argv)
    if not (args.data / "predictions.jsonl").exists():
        print(f"skipped: {args.data} has no predictions.jsonl")
        return 0
    rows = load(args.data)

    started = time.perf_counter()
    scored = [score_row(row) for row in rows]
    elapsed = time.perf_counter() - started
    rate = len(rows) / elapsed

    pairs = [(ours, paper_scores(row)) for ours, row in zip(scored, rows)]
    pairs = [(ours, paper) for ours, paper in pairs if paper is not None]
    print(f"{len(rows)} predictions, {len(pairs)} with a well-formed paper judgment")
    print(
        f"\nPer-prediction Spearman, offline judge vs the paper's GPT-4o judge (target {TARGET_SPEARMAN}+)"
    )
    print(f"{'component':<14} {'all':>6}  " + "  ".join(f"{m:>18}" for m in MODELS))
    for component in COMPONENTS:
        usable = [(o, p) for o, p in pairs if o[component] is not None]
        overall = spearman([o[component] for o, _ in usable], [p[component] for _, p in usable])
        per_model = []
        for model in MODELS:
            subset = [(o, p) for o, p in usable if o["model"] == model]
            per_model.append(
                spearman([o[component] for o, _ in subset], [p[component] for _, p in subset])
            )
        print(f"{component:<14} {overall:6.3f}  " + "  ".join(f"{v:18.3f}" for v in per_model))

    print(f"\n{'component':<14} {'tuning':>7} {'held-out':>9}  (halves of the cases by case_key)")
    for component in COMPONENTS[:4]:
        halves = []
        for side in (False, True):
            subset = [(o, p) for o, p in pairs if held_out(o["case_key"]) == side]
            halves.append(
                spearman([o[component] for o, _ in subset], [p[component] for _, p in subset])
            )
        print(f"{component:<14} {halves[0]:7.3f} {halves[1]:9.3f}")

    print("\nModel ranking per task (mean per model; '>' best first)")
    tasks = sorted({o["task"] for o, _ in pairs})
    agreements: dict[str, int] = defaultdict(int)
    for task in tasks:
        for component in ("radrscore", "factuality", "completeness", "effectiveness"):
            means = {}
            for model in MODELS:
                subset = [(o, p) for o, p in pairs if o["task"] == task and o["model"] == model]
                means[model] = (
                    mean(o[component] for o, _ in subset),
                    mean(p[component] for _, p in subset),
                )
            ours = sorted(MODELS, key=lambda m: -means[m][0])
            paper = sorted(MODELS, key=lambda m: -means[m][1])
            same = ours == paper
            agreements[component] += same
            if component == "radrscore":
                figures = ", ".join(f"{m} {means[m][0]:.3f}/{means[m][1]:.3f}" for m in MODELS)
                print(
                    f"  {task:<26} ours {' > '.join(ours)} | paper {' > '.join(paper)} "
                    f"{'SAME' if same else 'DIFFERENT'}  (ours/paper: {figures})"
                )
    for component, same in agreements.items():
        print(f"  {component:<14} same ranking on {same} of {len(tasks)} tasks")

    judge_self_agreement(rows)

    print(
        f"\nSpeed: {rate:,.0f} predictions/s on one core (parse + score, cold caches; "
        f"target {TARGET_RATE:,.0f}+)"
    )
    if args.worst:
        worst = sorted(pairs, key=lambda pair: -abs(pair[0]["radrscore"] - pair[1]["radrscore"]))
        for ours, paper in worst[: args.worst]:
            print(
                f"\n--- {ours['case_key']} {ours['model']} ours {ours['radrscore']:.2f} paper {paper['radrscore']:.2f}"
            )
            for component in COMPONENTS[:3]:
                print(f"  {component}: ours {ours[component]:.2f} paper {paper[component]:.2f}")
            print(
                "  missed:",
                ours["missed"],
                "\n  contradicted:",
                ours["contradicted"],
                "\n  invented:",
                ours["invented"],
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
