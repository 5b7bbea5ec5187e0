"""Label reports in a JSON Lines file: ``python -m cxr.label IN.jsonl OUT.jsonl``.

Each input line is a JSON object with a ``report`` (or ``original_report``) field; the output has
the same objects plus ``findings``: ``[{"observation", "status", "laterality", "location",
"evidence", "span"}, ...]``. Lines that are not JSON objects with a report are skipped and named
on stderr with their line number; the exit status is then 1. ``-`` reads stdin or writes stdout.
"""

import argparse
import json
import sys
from collections.abc import Iterable
from contextlib import ExitStack
from typing import TextIO

from cxr.labeler import label_report

REPORT_FIELDS = ("report", "original_report")


def label_lines(lines: Iterable[str], out: TextIO, errors: TextIO) -> tuple[int, int]:
    """Label each JSON line of `lines` into `out`; returns (records written, bad lines)."""
    written = bad = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            print(f"line {number}: not JSON: {error}", file=errors)
            bad += 1
            continue
        report = _report(record)
        if report is None:
            print(f"line {number}: no text field {' or '.join(REPORT_FIELDS)}", file=errors)
            bad += 1
            continue
        record["findings"] = [finding.as_dict() for finding in label_report(report)]
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        written += 1
    return written, bad


def _report(record: object) -> str | None:
    if not isinstance(record, dict):
        return None
    for field in REPORT_FIELDS:
        if isinstance(record.get(field), str):
            return record[field]
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cxr.label", description=__doc__.splitlines()[0]
    )
    parser.add_argument("input", help="JSON Lines file of records with a report ('-' for stdin)")
    parser.add_argument("output", help="where the labelled records go ('-' for stdout)")
    args = parser.parse_args(argv)
    with ExitStack() as stack:
        try:
            source = (
                sys.stdin
                if args.input == "-"
                else stack.enter_context(open(args.input, encoding="utf-8"))
            )
            target = (
                sys.stdout
                if args.output == "-"
                else stack.enter_context(open(args.output, "w", encoding="utf-8"))
            )
        except OSError as error:
            parser.error(str(error))
        written, bad = label_lines(source, target, sys.stderr)
    print(f"Labelled {written} records, {bad} bad lines", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
