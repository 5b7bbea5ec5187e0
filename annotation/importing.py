"""Import RadRBench-style case records (JSONL or a JSON array) with their images.

The whole file is parsed and validated first; then every valid record is written in one
transaction, so a crash never leaves half a file behind. Records that cannot be imported are
listed in a report (file, line, field, reason), and so are warnings such as a missing image.
Re-importing the same file creates nothing new: cases are keyed by source + item id + the
hash of their content.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import tempfile
import uuid
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from psycopg.types.json import Jsonb

from annotation import imaging
from annotation.models import (
    Case,
    CaseImage,
    Chain,
    Image,
    ImportRun,
    Report,
    Step,
    Study,
    TaskType,
)
from cxr.questions import parse_answer, parse_question
from cxr.text import split_steps

TASK_ALIASES = {
    "chexpert_binary": TaskType.BINARY,
    "chexpert_single": TaskType.SINGLE,
    "chexpert_multi": TaskType.MULTI,
    "chexpert_multi_no_option": TaskType.OPEN,
    **{t.value: t for t in TaskType},
}
BATCH = 2000


@dataclass
class Problem:
    file: str
    line: int
    field: str
    reason: str
    kind: str = "rejected"  # or "warning": imported, with something missing

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" + (f" [{self.field}]" if self.field else "")
        return f"{where}: {self.reason}"


class ProblemCounts:
    """Counts of a result's `problems` by kind (imports and mining runs report alike)."""

    problems: list[Problem]
    report_path: Path | None
    # The report is a file on the server: worth naming on the command line, not on a web page
    # or in an API answer (those list the problems themselves).
    show_report_path = True

    @property
    def rejected(self) -> int:
        return sum(1 for p in self.problems if p.kind == "rejected")

    @property
    def warnings(self) -> int:
        return sum(1 for p in self.problems if p.kind == "warning")

    def _summary_tail(self, extras: list[str]) -> str:
        """`extras` and the warnings count in brackets, then where the full report is."""
        if self.warnings:
            extras = [*extras, f"{self.warnings} warnings"]
        text = f" ({', '.join(extras)})" if extras else ""
        if self.report_path is not None and self.show_report_path:
            text += f": see {self.report_path}"
        return text


@dataclass
class ImportResult(ProblemCounts):
    imported: int = 0
    duplicates: int = 0
    problems: list[Problem] = field(default_factory=list)
    report_path: Path | None = None
    run: ImportRun | None = None
    cache: dict[Any, Any] = field(default_factory=dict, repr=False)  # per import: paths, hashes

    def summary(self) -> str:
        cases = "case" if self.imported == 1 else "cases"
        text = f"Imported {self.imported} {cases}, {self.rejected} rejected"
        extras = [f"{self.duplicates} already present"] if self.duplicates else []
        return text + self._summary_tail(extras)


class RecordError(ValueError):
    def __init__(self, field_name: str, reason: str) -> None:
        self.field = field_name
        super().__init__(reason)


def shown(value: Any, limit: int = 80) -> str:
    """`value` as a message quotes it (its repr), cut to `limit` characters: a problem report
    points at the bad value, it does not copy a 100 kB one."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _bad_text(text: str) -> str | None:
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "contains a NUL character"
    return f"contains half a surrogate pair ({found.group()!r}): not valid Unicode"


def unstorable(value: Any, where: str = "", *, finite: bool = False) -> tuple[str, str] | None:
    """The first value in `value` (walked through objects and lists) PostgreSQL cannot store,
    as (where it is, what is wrong), else None.

    JSON escapes allow text no text or jsonb column takes: a NUL character (``\\u0000``), or
    half a UTF-16 surrogate pair (``\\ud800``), which is not Unicode. With `finite`, also a
    number JSON reads as infinity (``1e400``) or NaN, which no jsonb column takes either.
    `where` reads like ``reason_steps[1]`` or ``settings.stop[0]``.
    """
    stack: list[tuple[str, Any]] = [(where, value)]
    while stack:  # no recursion: JSON may nest deeper than Python's stack allows
        path, item = stack.pop()
        if isinstance(item, str):
            why = _bad_text(item)
            if why:
                return path, why
        elif finite and isinstance(item, float) and not math.isfinite(item):
            return path, f"{path or 'a number'} must be a finite number, not {item!r}"
        elif isinstance(item, dict):
            inner: list[tuple[str, Any]] = []
            for key, member in item.items():
                why = _bad_text(str(key))
                if why:
                    return path, f"a key {why}"
                inner.append((f"{path}.{key}" if path else str(key), member))
            stack.extend(reversed(inner))  # the first bad value in the file's order is named
        elif isinstance(item, list):
            stack.extend(reversed([(f"{path}[{i}]", member) for i, member in enumerate(item)]))
    return None


def _fits(value: str, name: str, model_field: str) -> str:
    """`value` when it fits the Case column it is stored in, else the record is refused."""
    limit = Case._meta.get_field(model_field).max_length
    if limit is not None and len(value) > limit:
        raise RecordError(name, f"longer than {limit} characters ({len(value)})")
    return value


@dataclass
class ParsedCase:
    line: int
    key: tuple[str, str, str]
    task_type: str
    question: str
    options: list[dict[str, str]]
    answer: list[str]
    answer_content: str
    dataset_name: str
    steps: list[str]
    report: str
    prior_report: str
    image_paths: list[str]
    patient_hint: str
    origin: str
    split: str


# --- reading ---------------------------------------------------------------------------------


_BOM = b"\xef\xbb\xbf"


_ARCHIVES = ((b"PK\x03\x04", "zip"), (b"\x1f\x8b", "gzip"), (b"7z\xbc\xaf", "7z"))


def read_records(path: Path) -> Iterator[tuple[int, Any, str | None]]:
    """Yield (line number, record or None, error). A `.json` file may hold one array.

    A UTF-8 byte order mark at the start (as Windows editors write one) is skipped.
    """
    with path.open("rb") as handle:
        head = handle.read(1 << 16).removeprefix(_BOM).lstrip()
    archive = next((name for magic, name in _ARCHIVES if head.startswith(magic)), None)
    if archive is not None:
        # Read as lines, an archive's stored members would come out as a few stray records
        # and thousands of unreadable ones: refuse it whole.
        yield 1, None, (
            f"this is a {archive} archive, not JSON Lines: give the cases file itself "
            "(the images go in a zip of their own)"
        )
        return
    if head[:1] == b"[":
        try:
            records = json.loads(path.read_text(encoding="utf-8-sig"))
        except (ValueError, RecursionError) as exc:  # bad UTF-8 or JSON, a 5000-digit number
            yield getattr(exc, "lineno", 1), None, f"unreadable JSON: {_reason(exc)}"
            return
        for index, record in enumerate(records, start=1):
            yield index, record, None
        return
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1:
                raw = raw.removeprefix(_BOM)
            if not raw.strip():
                continue
            try:
                yield number, json.loads(raw.decode("utf-8")), None
            except UnicodeDecodeError as exc:
                yield number, None, f"not UTF-8 text: {exc.reason} at byte {exc.start}"
            except json.JSONDecodeError as exc:
                yield number, None, f"unreadable JSON: {exc.msg} at column {exc.colno}"
            except (ValueError, RecursionError) as exc:
                yield number, None, f"unreadable JSON: {_reason(exc)}"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc).split(";")[0]  # Python's advice after it (set_int_max_str_digits) is not theirs


def _text(record: dict[str, Any], name: str, *, required: bool = False) -> str:
    value = record.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise RecordError(name, f"missing field {name!r}")
        return ""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ", ".join(value)
    if not isinstance(value, (str, int, float)):
        raise RecordError(name, f"{name!r} should be text, not {type(value).__name__}")
    return str(value).strip()


def _steps(value: Any) -> list[str]:
    """reason_steps comes as a list, one string, or an object holding either."""
    if isinstance(value, dict):
        for name in ("steps", "reason_steps", "reasoning", "chain", "text"):
            if name in value:
                return _steps(value[name])
        if len(value) == 1:
            return _steps(next(iter(value.values())))
        raise RecordError("reason_steps", f"object with keys {shown(sorted(value))} holds no steps")
    if isinstance(value, str):
        steps = split_steps(value)
    elif isinstance(value, list):
        steps = []
        for index, item in enumerate(value):
            if isinstance(item, dict):
                item = item.get("text") or item.get("step") or ""
            if not isinstance(item, str):
                raise RecordError("reason_steps", f"step {index + 1} is {type(item).__name__}")
            steps.append(" ".join(item.split()))
    else:
        raise RecordError("reason_steps", f"missing or not a list/string ({type(value).__name__})")
    steps = [s for s in steps if s]
    if not steps:
        raise RecordError("reason_steps", "no steps")
    return steps


def _task_type(record: dict[str, Any], options: list[Any], answer: list[str]) -> str:
    given = record.get("task") or record.get("task_type")
    if given:
        if not isinstance(given, str) or given not in TASK_ALIASES:
            raise RecordError("task", f"unknown task type {shown(given)}")
        return str(TASK_ALIASES[given])
    if record.get("original_report1") or record.get("original_report2"):
        return TaskType.TEMPORAL
    if not options:
        return TaskType.OPEN
    texts = {o.text.strip().lower() for o in options}
    if texts == {"yes", "no"}:
        return TaskType.BINARY
    return TaskType.MULTI if len(answer) > 1 else TaskType.SINGLE


# Task types whose answer is one option (a multi-choice answer is the other kind of question).
_ONE_ANSWER = {TaskType.BINARY: "yes/no", TaskType.SINGLE: "single-choice"}


def content_hash(record: dict[str, Any]) -> str:
    keys = (
        "question", "answer", "reason_steps", "original_report", "original_report1",
        "original_report2", "image_path", "task", "dataset_name",
    )
    canonical = json.dumps({k: record.get(k) for k in keys}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def parse_record(record: Any, line: int, *, source: str, origin: str) -> ParsedCase:
    if not isinstance(record, dict):
        raise RecordError("", f"a record must be a JSON object, not {type(record).__name__}")
    bad = unstorable(record)
    if bad is not None:
        raise RecordError(*bad)
    question = record.get("question")
    if question is not None and not isinstance(question, str):  # a list is no question
        raise RecordError("question", f"'question' should be text, not {type(question).__name__}")
    question_text = _text(record, "question", required=True)
    parsed = parse_question(question_text)
    raw_answer = record.get("answer")
    if raw_answer is None or raw_answer == "" or raw_answer == []:
        raise RecordError("answer", "missing field 'answer'")
    if not isinstance(raw_answer, (str, list)):
        raise RecordError(
            "answer", f"'answer' should be text or a list, not {type(raw_answer).__name__}"
        )
    try:
        answer = parse_answer(raw_answer, parsed.options)
    except ValueError as exc:
        raise RecordError("answer", str(exc)) from None
    steps = _steps(record.get("reason_steps"))
    temporal = bool(record.get("original_report1") or record.get("original_report2"))
    if temporal:
        report, prior = _text(record, "original_report2"), _text(record, "original_report1")
    else:
        report, prior = _text(record, "original_report"), ""
    paths = record.get("image_path") or []
    if isinstance(paths, str):
        paths = [paths]
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise RecordError("image_path", "image_path must be a list of paths")
    item_id = _fits(_text(record, "item_id"), "item_id", "external_id")
    origin = record.get("origin") or origin
    if origin not in Chain.Origin.values:
        raise RecordError("origin", f"unknown origin {shown(origin)}")
    task_type = _task_type(record, parsed.options, answer)
    if task_type in _ONE_ANSWER and len(answer) != 1:
        raise RecordError(
            "answer",
            f"a {_ONE_ANSWER[task_type]} question takes exactly one answer, "
            f"not {len(answer)} ({', '.join(answer)})",
        )
    return ParsedCase(
        line=line,
        key=(source, item_id, content_hash(record)),
        task_type=task_type,
        question=question_text,
        options=[{"key": o.key, "text": o.text} for o in parsed.options],
        answer=answer,
        answer_content=_text(record, "answer_content"),
        dataset_name=_fits(_text(record, "dataset_name"), "dataset_name", "dataset_name"),
        steps=steps,
        report=report,
        prior_report=prior,
        image_paths=paths,
        patient_hint=_text(record, "patient_id") or " ".join(paths) or item_id,
        origin=origin,
        split=_fits(_text(record, "split"), "split", "split"),
    )


# --- images ----------------------------------------------------------------------------------


_PATIENT_PATTERNS = (
    re.compile(r"/p\d{2}/p(\d+)/s(\d+)/"),  # MIMIC-CXR: files/p12/p12185775/s56614076/
    re.compile(r"(patient\d+)/(study\d+)"),  # CheXpert
)


def pseudonym(source: str, text: str) -> str:
    """A stable pseudonymous key: never the raw identifier, which may be PHI."""
    return hashlib.sha256(f"{source}\x00{text}".encode()).hexdigest()[:16]


def patient_and_study(source: str, hint: str, fallback: str) -> tuple[str, str]:
    for pattern in _PATIENT_PATTERNS:
        match = pattern.search(hint)
        if match:
            return pseudonym(source, match.group(1)), pseudonym(source, match.group(0))
    return pseudonym(source, hint or fallback), pseudonym(source, hint or fallback)


def resolve_image(image_dir: Path | None, name: str) -> Path | None:
    """Find `name` under `image_dir`: the full relative path, then ever shorter tails of it."""
    if image_dir is None:
        return None
    parts = [p for p in Path(name).parts if p not in ("/", "..", ".")]
    root = image_dir.resolve()
    for start in range(len(parts)):
        candidate = (root / Path(*parts[start:])).resolve()
        if candidate.is_relative_to(root) and candidate.is_file():
            return candidate
    return None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def store_image(path: Path) -> Image:
    """Validate, then copy into the content-addressed store (idempotent by sha256)."""
    digest = sha256_file(path)
    existing = Image.objects.filter(sha256=digest).first()
    if existing is not None:
        return existing
    image = _new_image(path, digest)
    image.save()
    return image


def _new_image(path: Path, digest: str) -> Image:
    """Inspect and copy a file into the store; the row is returned unsaved."""
    info = imaging.inspect_image(path, max_pixels=settings.MAX_IMAGE_PIXELS)
    center, width = info.window_center, info.window_width
    if center is None or width is None:
        center, width = info.default_window()
    image = Image(
        sha256=digest, kind=info.kind, width=info.width, height=info.height,
        bits_stored=info.bits_stored, photometric=info.photometric or "",
        modality=info.modality or "", view_position=info.view_position or "",
        window_center=center, window_width=width,
        transfer_syntax=info.transfer_syntax or "", size_bytes=path.stat().st_size,
    )
    target = settings.IMAGE_STORE / image.relative_path
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        temporary = target.with_suffix(".part")
        shutil.copyfile(path, temporary)
        temporary.replace(target)  # atomic: a reader never sees half a file
    return image


# --- the import ------------------------------------------------------------------------------


def import_cases(
    path: Path,
    *,
    source: str,
    image_dir: Path | None = None,
    origin: str = Chain.Origin.MINED_LLM,
    user: Any = None,
    display_name: str | None = None,
    progress: Callable[[int], None] | None = None,
    images_label: str | None = None,
) -> ImportResult:
    """Import every valid record of `path`; report the rest. See the module docstring.

    `images_label` names where the images come from in warnings (default: `image_dir`).
    Raises ValueError for a source name no case can be stored under.
    """
    limit = Case._meta.get_field("source").max_length
    if len(source) > limit:
        raise ValueError(f"source {source[:40]!r}... is longer than {limit} characters")
    if (bad := unstorable(source)) is not None:
        raise ValueError(f"source {shown(source)} {bad[1]}")
    # A file name the system gave as bytes that are not UTF-8 cannot be stored or reported.
    name = (display_name or path.name).encode("utf-8", "replace").decode("utf-8")
    result = ImportResult()
    missing = _missing_image(image_dir, images_label)
    parsed: list[ParsedCase] = []
    seen: set[tuple[str, str, str]] = set()
    for line, record, error in read_records(path):
        if progress:
            progress(1)
        if error:
            result.problems.append(Problem(name, line, "", error))
            continue
        try:
            case = parse_record(record, line, source=source, origin=origin)
        except RecordError as exc:
            result.problems.append(Problem(name, line, exc.field, str(exc)))
            continue
        if case.key in seen:
            result.duplicates += 1
            continue
        seen.add(case.key)
        parsed.append(case)

    with transaction.atomic():
        for start in range(0, len(parsed), BATCH):
            _write_batch(parsed[start : start + BATCH], name, image_dir, result, missing)
        result.run = ImportRun.objects.create(
            source=source, filename=name[:255], started_by=user if user and user.pk else None,
            imported=result.imported, duplicates=result.duplicates, rejected=result.rejected,
            warnings=result.warnings,
            problems=[p.__dict__ for p in result.problems[:5000]],
        )
    if result.problems:
        result.report_path = write_report(result, name)
        ImportRun.objects.filter(pk=result.run.pk).update(report_path=str(result.report_path))
    return result


def _write_batch(
    batch: list[ParsedCase], name: str, image_dir: Path | None, result: ImportResult,
    missing: str,
) -> None:
    existing = set(
        Case.objects.filter(
            source=batch[0].key[0], content_hash__in=[c.key[2] for c in batch]
        ).values_list("source", "external_id", "content_hash")
    )
    fresh = [c for c in batch if c.key not in existing]
    result.duplicates += len(batch) - len(fresh)
    images: dict[int, list[Image]] = {}
    accepted: list[ParsedCase] = []
    store = _ImageBatch(image_dir, [p for c in fresh for p in c.image_paths], result.cache)
    for case in fresh:
        try:
            images[case.line] = _case_images(case, name, image_dir, result, store, missing)
        except RecordError as exc:
            result.problems.append(Problem(name, case.line, exc.field, str(exc)))
            continue
        accepted.append(case)
    store.save()
    if not accepted:
        return
    studies = _studies(accepted)
    # Reports, cases, chains, steps and image links go in with COPY under keys taken from the
    # tables' own sequences: at RadRBench size bulk_create spends most of its time building SQL.
    reports: dict[tuple[str, str], tuple[Any, ...]] = {}
    keys = []
    for parsed in accepted:
        study = studies[parsed.line]
        keys.append((_report(reports, study, parsed.report), _report(reports, None, parsed.prior_report)))
    report_ids = dict(zip(reports, _allocate(Report, len(reports))))
    _copy(Report, ("id", "uuid", "study_id", "text", "findings", "impression"),
          ((report_ids[key], uuid.uuid4(), *row) for key, row in reports.items()))
    case_ids = _allocate(Case, len(accepted))
    chain_ids = _allocate(Chain, len(accepted))
    now = timezone.now()
    _copy(
        Case,
        ("id", "uuid", "source", "external_id", "content_hash", "dataset_name", "task_type",
         "question", "options", "answer", "answer_content", "split", "report_id",
         "prior_report_id", "created_at"),
        (
            (case_id, uuid.uuid4(), p.key[0], p.key[1], p.key[2], p.dataset_name, p.task_type,
             p.question, Jsonb(p.options), Jsonb(p.answer), p.answer_content, p.split,
             report_ids.get(report), report_ids.get(prior), now)
            for case_id, p, (report, prior) in zip(case_ids, accepted, keys)
        ),
    )
    _copy(
        Chain,
        ("id", "uuid", "case_id", "origin", "purpose", "status", "version", "note", "created_at",
         "updated_at"),
        (
            (chain_id, uuid.uuid4(), case_id, p.origin, Chain.Purpose.REFERENCE,
             Chain.Status.PENDING, 1, "", now, now)
            for chain_id, case_id, p in zip(chain_ids, case_ids, accepted)
        ),
    )
    _copy(  # the bulk of the rows: about five steps a case
        Step,
        ("uuid", "chain_id", "position", "text", "original_text", "verdict", "note",
         "added_by_reader", "deleted", "version", "updated_at"),
        (
            (uuid.uuid4(), chain_id, i, text, text, Step.Verdict.UNREVIEWED, "", False, False, 1, now)
            for chain_id, parsed in zip(chain_ids, accepted)
            for i, text in enumerate(parsed.steps, start=1)
        ),
    )
    links = []
    for case_id, parsed in zip(case_ids, accepted):
        found = images[parsed.line]
        labels = ["prior", "current"] if parsed.task_type == TaskType.TEMPORAL and len(found) == 2 else [""] * len(found)
        links += [
            (case_id, image.pk, i, label) for i, (image, label) in enumerate(zip(found, labels))
        ]
    _copy(CaseImage, ("case_id", "image_id", "position", "label"), links)
    result.imported += len(accepted)


class _ImageBatch:
    """store_image for a batch of records: each file resolved and hashed once per import, one
    query for the images already stored, new rows bulk-created (the files copied as before)."""

    def __init__(self, image_dir: Path | None, names: list[str], cache: dict[str, Any]) -> None:
        self.cache = cache  # lives for the whole import: name -> path, path -> sha256
        self.new: list[Image] = []
        paths = {self.resolve(image_dir, n) for n in names} - {None}
        wanted = {self.sha(p) for p in paths if p is not None}
        known = cache.setdefault("by_sha", {})
        missing = wanted - known.keys()
        if missing:
            known.update((i.sha256, i) for i in Image.objects.filter(sha256__in=missing))

    def resolve(self, image_dir: Path | None, name: str) -> Path | None:
        key = ("path", name)
        if key not in self.cache:
            self.cache[key] = resolve_image(image_dir, name)
        return self.cache[key]

    def sha(self, path: Path) -> str:
        key = ("sha", path)
        if key not in self.cache:
            self.cache[key] = sha256_file(path)
        return self.cache[key]

    def get(self, path: Path) -> Image:
        digest = self.sha(path)
        known = self.cache["by_sha"]
        if digest in known:
            return known[digest]
        image = _new_image(path, digest)  # raises ImageError for a file that is no image
        known[digest] = image
        self.new.append(image)
        return image

    def save(self) -> None:
        Image.objects.bulk_create(self.new)
        self.new = []


def _allocate(model: type[Any], count: int) -> list[int]:
    """`count` fresh primary keys from the table's own sequence (rows are then COPYed in)."""
    if not count:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [model._meta.db_table, count],
        )
        return [row[0] for row in cursor.fetchall()]


def _copy(model: type[Any], columns: tuple[str, ...], rows: Iterable[tuple[Any, ...]]) -> None:
    """Insert rows with PostgreSQL's COPY: several times faster than bulk_create at this size.

    `columns` must name every column without a database default (a new NOT NULL field
    on one of these models has to be added here too: COPY fails loudly if it is not).
    """
    table = connection.ops.quote_name(model._meta.db_table)
    by_attname = {f.attname: f.column for f in model._meta.concrete_fields}
    names = ", ".join(connection.ops.quote_name(by_attname[c]) for c in columns)
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def _missing_image(image_dir: Path | None, label: str | None = None) -> str:
    """Why a named image is not there, in words that suit the command line and the upload page."""
    if image_dir is None:
        return "no image folder or zip given"
    return f"not found in {label or image_dir}"


def _case_images(
    case: ParsedCase, name: str, image_dir: Path | None, result: ImportResult,
    store: _ImageBatch | None = None, missing: str = "",
) -> list[Image]:
    found: list[Image] = []
    for index, image_name in enumerate(case.image_paths):
        location = store.resolve(image_dir, image_name) if store else resolve_image(image_dir, image_name)
        if location is None:
            where = missing or _missing_image(image_dir)
            result.problems.append(
                Problem(name, case.line, f"image_path[{index}]",
                        f"image {shown(Path(image_name).name)} {where}: imported without it", "warning")
            )
            continue
        try:
            found.append(store.get(location) if store else store_image(location))
        except imaging.ImageError as exc:
            raise RecordError(f"image_path[{index}]", str(exc)) from None
    return found


def _studies(cases: list[ParsedCase]) -> dict[int, Study]:
    keys = {}
    for case in cases:
        patient, study = patient_and_study(case.key[0], case.patient_hint, case.key[2])
        keys[case.line] = (case.key[0], study, patient)
    wanted = {(source, study) for source, study, _ in keys.values()}
    known = {
        (s.source, s.external_id): s
        for s in Study.objects.filter(external_id__in=[k[1] for k in wanted])
    }
    new = []
    for source, study, patient in keys.values():
        if (source, study) not in known:
            known[(source, study)] = Study(source=source, external_id=study, patient_key=patient)
            new.append(known[(source, study)])
    Study.objects.bulk_create(new)
    return {line: known[(source, study)] for line, (source, study, _) in keys.items()}


def _report(
    cache: dict[tuple[str, str], tuple[Any, ...]], study: Study | None, text: str
) -> tuple[str, str] | None:
    """The key of the report row for `text` (one per study and text in a batch), or None."""
    if not text:
        return None
    key = (study.external_id if study else "", text)
    if key not in cache:
        findings, impression = _sections(text)
        cache[key] = (study.pk if study else None, text, findings, impression)
    return key


def _sections(text: str) -> tuple[str, str]:
    try:
        from cxr.sections import split_sections
    except ImportError:  # sectioning arrives with the mining work; plain text still imports
        return "", ""
    sections = split_sections(text)
    return sections.get("findings", ""), sections.get("impression", "")


def write_report(result: ImportResult, name: str) -> Path:
    folder = settings.IMPORT_REPORTS
    folder.mkdir(parents=True, exist_ok=True)
    stamp = timezone.now().strftime("%Y%m%dT%H%M%S%f")
    # A file name has at most 255 bytes: an uploaded file's name may take them all.
    path = folder / f"{stamp}-{re.sub(r'[^A-Za-z0-9_.-]', '_', name)[:100]}.txt"
    lines = [f"{p.kind.upper()}\t{p}" for p in result.problems]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- uploads from the curator page -----------------------------------------------------------


class UnsafeArchive(ValueError):
    pass


def extract_zip(archive: Path, target: Path, *, max_bytes: int, max_files: int = 100_000) -> None:
    """Extract an uploaded zip of images, refusing path escapes and zip bombs."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            if len(members) > max_files:
                raise UnsafeArchive(f"{archive.name}: more than {max_files} files")
            total = sum(m.file_size for m in members)
            if total > max_bytes:
                raise UnsafeArchive(
                    f"{archive.name}: unpacks to {total:,} bytes, over the {max_bytes:,} limit"
                )
            root = target.resolve()
            for member in members:
                destination = (root / member.filename).resolve()
                if not destination.is_relative_to(root):
                    raise UnsafeArchive(f"{archive.name}: {member.filename!r} escapes the archive")
            zf.extractall(root)
    except zipfile.BadZipFile as exc:
        raise UnsafeArchive(f"{archive.name}: not a zip file ({exc})") from None


def import_upload(
    cases_file: Any, images_zip: Any | None, *, source: str, user: Any
) -> ImportResult:
    with tempfile.TemporaryDirectory(prefix="import-") as tmp:
        folder = Path(tmp)
        cases_path = folder / "cases.jsonl"
        with cases_path.open("wb") as out:
            for chunk in cases_file.chunks():
                out.write(chunk)
        image_dir = None
        if images_zip is not None:
            zip_path = folder / "images.zip"
            with zip_path.open("wb") as out:
                for chunk in images_zip.chunks():
                    out.write(chunk)
            image_dir = folder / "images"
            image_dir.mkdir()
            extract_zip(zip_path, image_dir, max_bytes=settings.MAX_UPLOAD_BYTES)
        result = import_cases(
            cases_path, source=source, image_dir=image_dir, user=user,
            display_name=Path(cases_file.name).name,
            images_label=Path(images_zip.name).name if images_zip is not None else None,
        )
    result.show_report_path = False  # the page lists the problems; the server path is no use
    return result
