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
    """Yield (line number, record, error) for each non-blank line (or array item)."""
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            yield exc.lineno, None, f"unreadable JSON: {exc.msg}"
            return
        for index, item in enumerate(items, start=1):
            yield (index, item, None) if isinstance(item, dict) else (index, None, "not an object")
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, None, f"unreadable JSON: {exc.msg} at column {exc.colno}"
            continue
        if not isinstance(record, dict):
            yield number, None, f"a record must be a JSON object, not {type(record).__name__}"
            continue
        yield number, record, None


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
