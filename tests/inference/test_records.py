"""`inference.records.read_jsonl`: every line read or reported, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

from inference.records import case_problems, read_jsonl


def test_it_reads_a_byte_order_mark_and_a_line_separator_inside_a_string(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    # U+2028 is legal inside a JSON string; str.splitlines would cut the line there.
    path.write_bytes(
        b"\xef\xbb\xbf" + json.dumps({"pred": "a\u2028b"}, ensure_ascii=False).encode() + b"\n"
    )
    assert list(read_jsonl(path)) == [(1, {"pred": "a\u2028b"}, None)]


def test_it_reports_each_bad_line_and_reads_on(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    lines = [
        b'{"a": 1}',
        b'{"a": "\xff"}',  # not UTF-8
        b'{"a": ' + b"9" * 5000 + b"}",  # a number Python refuses to read
        b"[" * 100000 + b"]" * 100000,  # nested too deeply
        b"[1]",
        b'{"a": 2}\r',  # a Windows line end
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    results = list(read_jsonl(path))
    assert results[0] == (1, {"a": 1}, None)
    assert results[1][:2] == (2, None) and results[1][2].startswith("not UTF-8 text")
    assert results[2][:2] == (3, None) and results[2][2].startswith("unreadable JSON: Exceeds")
    assert results[3] == (4, None, "unreadable JSON: nested too deeply")
    assert results[4] == (5, None, "a record must be a JSON object, not a list")
    assert results[5] == (6, {"a": 2}, None)


def test_it_reports_an_array_file_that_is_not_utf8_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "rows.json"
    path.write_bytes(b'[\n{"a": 1},\n{"a": "\xff"}\n]\n')
    assert list(read_jsonl(path)) == [(3, None, "not UTF-8 text: invalid start byte at byte 7")]


def test_case_problems_name_what_is_missing() -> None:
    case = {"question": "Effusion? A) Yes B) No", "answer": "A", "reason_steps": ["No effusion."]}
    assert case_problems(case) == []
    assert case_problems({**case, "reason_steps": 5}) == [
        "reason_steps: reasoning chain must be text or a list of steps, not int"
    ]
    assert case_problems(case, judge_reads_text=True) == ["missing original_report (or report)"]
    assert case_problems({}) == [
        "missing question, answer, reason_steps (or reference_steps, reference_findings)"
    ]
