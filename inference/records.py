"""Reading case and prediction files in the shapes the project meets.

- `radrbench` export and the benchmark's own files: ``question``, ``answer``, ``reason_steps``,
  ``original_report`` (or ``original_report1``/``original_report2``), ``image_path``;
- `grpo` export: a conversational ``prompt`` (system + user turn with image placeholders and the
  question), ``images``, ``answer``, ``reference_steps``, ``reference_findings``;
- predictions: any of the above plus the model's ``pred``.

Records are JSON Lines (a ``.json`` file may hold one array). Every function here takes a plain
dict and never raises on a missing optional field.
"""

from __future__ import annotations

import codecs
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cxr.text import steps_from

# Where a record keeps its identity, in order of preference.
ID_FIELDS = ("case_uuid", "case_id", "uuid", "id", "case_key", "item_id")


class RecordError(ValueError):
    """A record that cannot be used, with the reason (reported with its line number)."""


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """Yield (line number, record, error) for each non-blank line (or array item).

    The file is UTF-8 (a byte-order mark at the start is allowed); a line that is not UTF-8,
    not JSON or not an object is yielded with its error, and the lines after it are still read.
    Raises OSError when the file cannot be read at all.
    """
    data = path.read_bytes()
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    if data.lstrip().startswith(b"["):
        yield from _read_array(data)
        return
    # Bytes split only at \n, \r and \r\n: a JSON string may hold U+2028, which str.splitlines
    # would take for a line end.
    for number, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield number, None, f"not UTF-8 text: {exc.reason} at byte {exc.start}"
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, None, f"unreadable JSON: {exc.msg} at column {exc.colno}"
            continue
        except (ValueError, RecursionError) as exc:  # a 5000-digit number, nesting too deep
            yield number, None, f"unreadable JSON: {_reason(exc)}"
            continue
        if not isinstance(record, dict):
            yield number, None, f"a record must be a JSON object, not {kind_of(record)}"
            continue
        yield number, record, None


def _read_array(data: bytes) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """A file holding one JSON array: its items, numbered from 1."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1)
        yield line, None, f"not UTF-8 text: {exc.reason} at byte {column}"
        return
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        yield exc.lineno, None, f"unreadable JSON: {exc.msg}"
        return
    except (ValueError, RecursionError) as exc:
        yield 1, None, f"unreadable JSON: {_reason(exc)}"
        return
    for index, item in enumerate(items, start=1):
        if isinstance(item, dict):
            yield index, item, None
        else:
            yield index, None, f"a record must be a JSON object, not {kind_of(item)}"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc).split(";")[0]  # Python's advice after it (set_int_max_str_digits) is not theirs


def kind_of(value: Any) -> str:
    """A JSON value's type in JSON's words: for messages about a field of the wrong type."""
    names = {type(None): "null", bool: "true/false", int: "a number", float: "a number"}
    names.update({str: "text", list: "a list", dict: "an object"})
    return names.get(type(value), type(value).__name__)


def case_id(record: dict[str, Any]) -> str:
    """The record's case identity: its first id field, else a hash of question and images."""
    for name in ID_FIELDS:
        value = record.get(name)
        if value not in (None, ""):
            return str(value)
    basis = json.dumps([question_of(record), image_paths(record)], ensure_ascii=False)
    return hashlib.sha256(basis.encode()).hexdigest()[:16]


def question_of(record: dict[str, Any]) -> str:
    """The question: the ``question`` field, or the text of the last user turn of ``prompt``."""
    question = record.get("question")
    if isinstance(question, str) and question.strip():
        return question
    prompt = record.get("prompt")
    if isinstance(prompt, list):
        for message in reversed(prompt):
            if isinstance(message, dict) and message.get("role") == "user":
                content = message.get("content")
                if isinstance(content, str):
                    return content
                if isinstance(content, list):
                    texts = [
                        part.get("text", "")
                        for part in content
                        if isinstance(part, dict) and part.get("type") == "text"
                    ]
                    return "\n".join(t for t in texts if t)
    if isinstance(prompt, str):
        return prompt
    return ""


def image_paths(record: dict[str, Any]) -> list[str]:
    value = record.get("images", record.get("image_path"))
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value if isinstance(v, str)]
    return []


def resolve_images(record: dict[str, Any], base: Path) -> list[Path]:
    """Image files of a record. A relative path is looked up from the case file's folder, then
    from the folders above it (an export's ``radrbench/test.jsonl`` names ``images/<sha>.png``
    relative to the snapshot folder); a file found nowhere keeps the first candidate's path."""
    paths = []
    for name in image_paths(record):
        path = Path(name)
        if path.is_absolute():
            paths.append(path)
            continue
        candidates = [folder / path for folder in (base, *list(base.parents)[:2])]
        paths.append(next((c for c in candidates if c.is_file()), candidates[0]))
    return paths


def reference_steps(record: dict[str, Any]) -> list[str]:
    """The reference chain: ``reason_steps`` or ``reference_steps`` (list, text or object)."""
    for name in ("reason_steps", "reference_steps"):
        if record.get(name) not in (None, "", []):
            return steps_from(record[name])
    return []


def report_of(record: dict[str, Any]) -> str:
    """The current report (for a temporal pair, the second one)."""
    for name in ("original_report", "report", "original_report2"):
        value = record.get(name)
        if isinstance(value, str) and value.strip():
            return value
    return ""


def answer_of(record: dict[str, Any]) -> Any:
    return record.get("answer")


def case_problems(record: dict[str, Any], *, judge_reads_text: bool = False) -> list[str]:
    """What keeps a record from being scored, one message per problem; empty when it can be.

    Scoring needs the question (``question`` or ``prompt``), the gold ``answer`` and a reference:
    ``reason_steps``/``reference_steps`` or ``reference_findings``. A judge that reads the texts
    (`judge_reads_text`, the LLM judge) needs the reference chain itself and the report too.

    >>> case_problems({"question": "Effusion? A) Yes B) No", "answer": "A"})
    ['missing reason_steps (or reference_steps, reference_findings)']
    """
    problems: list[str] = []
    missing: list[str] = []
    if not question_of(record).strip():
        missing.append("question")
    answer = record.get("answer")
    if answer is None or answer == "" or answer == []:
        missing.append("answer")
    elif not isinstance(answer, str) and not (
        isinstance(answer, list) and all(isinstance(item, str) for item in answer)
    ):
        problems.append(f"answer should be text, not {kind_of(answer)}")
    steps: list[str] = []
    for name in ("reason_steps", "reference_steps"):
        if record.get(name) in (None, "", []):
            continue
        try:
            steps = steps_from(record[name])
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
            steps = ["(unreadable)"]  # reported above: not missing as well
        break
    findings = record.get("reference_findings")
    if findings not in (None, []) and not (
        isinstance(findings, list) and all(isinstance(item, dict) for item in findings)
    ):
        problems.append("reference_findings should be a list of objects")
        findings = ["(unreadable)"]
    if judge_reads_text:
        if not steps:
            missing.append("reason_steps (or reference_steps)")
        if not report_of(record):
            missing.append("original_report (or report)")
    elif not steps and not findings:
        missing.append("reason_steps (or reference_steps, reference_findings)")
    if missing:
        problems.insert(0, "missing " + ", ".join(missing))
    return problems
