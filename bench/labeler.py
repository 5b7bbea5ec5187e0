"""Benchmark the findings labeler against labels implied by real RadRBench cases; print figures.

Labels come from the questions themselves: "Does this chest X-ray show X?" answered Yes/No says
whether X is in the report; a single-choice question says its answer's observation is present and
the other options' are absent. The labeler agrees when it calls the observation present (or
uncertain, see --uncertain) exactly when the label says so. Also prints the speed on one core:
reports and sentences per second, and model outputs (predictions.jsonl `pred`) per second, each
cold (sentence cache emptied before every pass: every text new) and warm (texts seen before).
Reads ../shared/data/radrbench-dev/cases.jsonl and skips cleanly when it is absent.

    python bench/labeler.py [--cases PATH] [--uncertain positive|negative] [--errors N]
"""

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from cxr.labeler import ABSENT, PRESENT, UNCERTAIN, clear_cache, label_report  # noqa: E402
from cxr.questions import parse_answer, parse_question  # noqa: E402
from cxr.sections import FINDINGS, IMPRESSION, section_spans  # noqa: E402
from cxr.text import sentence_spans  # noqa: E402
from cxr.vocabulary import canonical  # noqa: E402

CASES = Path(__file__).resolve().parents[1].parent / "shared/data/radrbench-dev/cases.jsonl"
PREDICTIONS_NAME = "predictions.jsonl"  # beside the cases: real model outputs in `pred`
BINARY_PREFIX = "does this chest x-ray show "
# Seconds of repeated labeling for the speed figure: long enough to be stable, short to wait.
SPEED_SECONDS = 2.0


def implied_labels(records: list[dict[str, object]]) -> dict[tuple[str, str], bool]:
    """(report, observation) -> present? from binary and single-choice questions.

    A pair that two questions label differently is dropped (and counted on stderr).
    """
    votes: dict[tuple[str, str], set[bool]] = defaultdict(set)
    for record in records:
        task, report = str(record["task"]), str(record["original_report"])
        question = parse_question(str(record["question"]))
        letters = parse_answer(record["answer"], question.options)  # type: ignore[arg-type]
        chosen = {option.text for option in question.options if option.key in letters}
        if task == "chexpert_binary":
            stem = question.stem.split("\n")[0].lower()
            observation = canonical(stem.removeprefix(BINARY_PREFIX).rstrip("?"))
            votes[(report, observation)].add(chosen == {"Yes"})
        elif task == "chexpert_single":
            for option in question.options:
                votes[(report, canonical(option.text))].add(option.text in chosen)
    conflicts = sum(len(v) > 1 for v in votes.values())
    if conflicts:
        print(f"dropped {conflicts} pairs that questions label both ways", file=sys.stderr)
    return {key: next(iter(v)) for key, v in votes.items() if len(v) == 1}


def texts_per_second(texts: list[str], cold: bool) -> float:
    """Texts labelled per CPU second of this process (per core, honest on a busy machine)."""
    labelled, started = 0, time.process_time()
    while time.process_time() - started < SPEED_SECONDS:
        if cold:
            clear_cache()
        for text in texts:
            label_report(text)
        labelled += len(texts)
    return labelled / (time.process_time() - started)


def labelled_sentences(text: str) -> int:
    """How many sentences the labeler reads in `text` (findings and impression only)."""
    return sum(
        len(sentence_spans(text[start:end]))
        for section, start, end in section_spans(text)
        if section in (FINDINGS, IMPRESSION)
    )


def print_speed(name: str, texts: list[str]) -> None:
    cold, warm = texts_per_second(texts, cold=True), texts_per_second(texts, cold=False)
    per_text = sum(map(labelled_sentences, texts)) / len(texts)
    mean_chars = sum(map(len, texts)) / len(texts)
    print(
        f"speed, {name}: {cold:.0f}/s cold ({cold * per_text:.0f} sentences/s), "
        f"{warm:.0f}/s warm; {len(texts)} texts, mean {mean_chars:.0f} characters"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=Path, default=CASES, help="RadRBench cases.jsonl")
    parser.add_argument(
        "--uncertain",
        choices=("positive", "negative"),
        default="positive",
        help="how an uncertain finding counts against a yes/no label",
    )
    parser.add_argument("--errors", type=int, default=0, help="print this many disagreements")
    args = parser.parse_args(argv)
    if not args.cases.exists():
        print(f"skipped: {args.cases} is absent")
        return 0
    with args.cases.open(encoding="utf-8") as lines:
        records = [json.loads(line) for line in lines if line.strip()]
    labels = implied_labels(records)
    reports = sorted({report for report, _ in labels})
    statuses = {report: {f.observation: f for f in label_report(report)} for report in reports}
    positive = {PRESENT, UNCERTAIN} if args.uncertain == "positive" else {PRESENT}

    agree: Counter[str] = Counter()
    total: Counter[str] = Counter()
    errors: list[str] = []
    for (report, observation), expected in sorted(labels.items()):
        finding = statuses[report].get(observation)
        status = finding.status if finding else "not mentioned"
        predicted = status in positive
        total[observation] += 1
        if predicted == expected:
            agree[observation] += 1
        else:
            evidence = finding.evidence if finding else report
            errors.append(f"{observation}: label {expected}, labeler {status}: {evidence}")

    print(f"labels: {sum(total.values())} (report, observation) pairs from {len(reports)} reports")
    print(f"uncertain counts as {args.uncertain}")
    for observation in sorted(total):
        share = agree[observation] / total[observation]
        print(f"  {observation:<28} {share:6.3f}  ({agree[observation]}/{total[observation]})")
    overall = sum(agree.values()) / max(1, sum(total.values()))
    print(f"overall agreement: {overall:.3f}")
    # Single-choice "No Finding" answers often mean "none of the other three options" while the
    # report names other abnormalities, so the figure without it is printed too.
    rest = [name for name in total if name != "No Finding"]
    without = sum(agree[n] for n in rest) / max(1, sum(total[n] for n in rest))
    print(f"overall without No Finding: {without:.3f}")
    counts = Counter(f.status for found in statuses.values() for f in found.values())
    print(f"statuses: {', '.join(f'{s} {counts[s]}' for s in (PRESENT, UNCERTAIN, ABSENT))}")

    print_speed("reports", sorted({str(record["original_report"]) for record in records}))
    predictions = args.cases.with_name(PREDICTIONS_NAME)
    if predictions.exists():
        with predictions.open(encoding="utf-8") as lines:
            outputs = [str(json.loads(line)["pred"]) for line in lines if line.strip()]
        print_speed("model outputs", outputs)
    for line in errors[: args.errors]:
        print("  x " + line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
