"""Model outputs back into the workbench: import, send to review, leaderboard, side by side.

`import_predictions` reads a predictions file (``python -m inference generate`` or ``score``
output, or any rows with a case id and ``pred``), creates the model run, one Prediction per case
with its scores, and one Chain of origin ``model`` per prediction whose steps are the parsed
reasoning (each step's finding read by the `cxr` labeler). Rows already scored keep their scores;
the others are scored here with the offline judge (`cxr.radrscore`) against the case's reference
chain and report. The whole file is validated first and written in one transaction; a bad row is
reported with its line, field and reason and imports nothing, and a file with no row to import
creates no run. Re-importing creates nothing new: a run has one prediction per case.

The management command, the API upload and the researcher pages all call these functions.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Count, Exists, F, Max, Min, OuterRef, Q, QuerySet
from django.utils import timezone

from annotation import services
from annotation.importing import content_hash, shown, unstorable
from annotation.models import (
    Assignment,
    Case,
    Chain,
    ExportSnapshot,
    ModelRun,
    Prediction,
    Step,
)
from cxr.output import ParsedOutput, is_correct, parse_output
from cxr.questions import Option
from cxr.radrscore import (
    KeyFinding,
    answer_findings,
    compatible,
    findings_from_steps,
    findings_from_text,
    judge_output,
)

METRICS = ("accuracy", "factuality", "completeness", "effectiveness", "radrscore")
COMPONENTS = METRICS[1:]
UUID_FIELDS = ("case_uuid", "case_id", "case_key", "uuid")
ITEM_FIELDS = ("item_id", "external_id")
_STRENGTH = {"present": 2, "uncertain": 1, "absent": 0}


class RunError(ValueError):
    """The run named cannot take this import (another checkpoint, an unknown snapshot)."""


@dataclass
class RowProblem:
    line: int
    field: str
    reason: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f" [{self.field}]" if self.field else "")
        return f"{where}: {self.reason}"


@dataclass
class PredictionImport:
    run: ModelRun | None = None  # None when no row could be imported into a new run
    run_name: str = ""
    created: int = 0
    duplicates: int = 0  # already in the run (or twice in the file): nothing created
    problems: list[RowProblem] = field(default_factory=list)
    report_path: Path | None = None
    # The report is a file on the server: the command names it; the API lists the problems.
    show_report_path: bool = True

    @property
    def rejected(self) -> int:
        return len(self.problems)

    def summary(self) -> str:
        run = self.run.name if self.run else self.run_name or "?"
        text = f"Imported {self.created} predictions into run {run}, {self.rejected} rejected"
        if self.duplicates:
            text += f" ({self.duplicates} already present)"
        if self.run is None:
            text += " (run not created: no row to import)"
        if self.report_path is not None and self.show_report_path:
            text += f": see {self.report_path}"
        return text


@dataclass
class _Row:
    line: int
    case: Case
    raw: dict[str, Any]
    parsed: ParsedOutput
    answer: list[str]
    scores: dict[str, float | None]
    details: dict[str, Any]
    measures: dict[str, Any]  # latency_ms, prompt_tokens, completion_tokens as stored


class _Rejected(ValueError):
    def __init__(self, field_name: str, reason: str) -> None:
        self.field = field_name
        super().__init__(reason)


# --- reading -----------------------------------------------------------------------------------


def _read(path: Path) -> list[tuple[int, dict[str, Any] | None, str | None]]:
    rows: list[tuple[int, dict[str, Any] | None, str | None]] = []
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                rows.append((number, None, f"not UTF-8 text: {exc.reason}"))
                continue
            except json.JSONDecodeError as exc:
                rows.append((number, None, f"unreadable JSON: {exc.msg} at column {exc.colno}"))
                continue
            except ValueError as exc:  # an integer of thousands of digits
                reason = str(exc).split(";")[0]  # not Python's advice after it
                rows.append((number, None, f"unreadable JSON: {reason}"))
                continue
            except RecursionError:
                rows.append((number, None, "unreadable JSON: nested too deeply"))
                continue
            if not isinstance(record, dict):
                rows.append(
                    (number, None, f"a row must be a JSON object, not {type(record).__name__}")
                )
                continue
            rows.append((number, record, None))
    return rows


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError):
        return None


class _CaseIndex:
    """Every case the file's rows name, fetched in one query.

    A row names its case by uuid (``case_id``/``case_uuid``/``case_key``, as exports write
    it), else by the case's own fields (rows from `inference generate` carry them: the same
    content hash as `import_cases` keys the case with), else by ``item_id``.
    """

    def __init__(self, records: Iterable[dict[str, Any]], source: str | None) -> None:
        records = list(records)
        uuids = {u for r in records for name in UUID_FIELDS if (u := _uuid(r.get(name)))}
        items = {str(r[name]) for r in records for name in ITEM_FIELDS if r.get(name)}
        hashes = {content_hash(r) for r in records if r.get("question")}
        cases = Case.objects.select_related("report").filter(
            Q(uuid__in=uuids) | Q(external_id__in=items) | Q(content_hash__in=hashes)
        )
        if source:
            cases = cases.filter(source=source)
        self.by_uuid: dict[uuid.UUID, Case] = {}
        self.by_item: dict[str, list[Case]] = defaultdict(list)
        self.by_hash: dict[str, list[Case]] = defaultdict(list)
        for case in cases:
            self.by_uuid[case.uuid] = case
            if case.external_id in items:
                self.by_item[case.external_id].append(case)
            if case.content_hash in hashes:
                self.by_hash[case.content_hash].append(case)

    def find(self, record: dict[str, Any]) -> Case:
        for name in UUID_FIELDS:
            key = _uuid(record.get(name))
            if key is not None and key in self.by_uuid:
                return self.by_uuid[key]
        candidates: list[tuple[str, str, list[Case]]] = []
        if record.get("question"):
            same = self.by_hash.get(content_hash(record), [])
            candidates.append(("case", "these case fields", same))
        for name in ITEM_FIELDS:
            item = record.get(name)
            if item:
                found = self.by_item.get(str(item), [])
                if len(found) > 1 and record.get("question"):  # the same item asked two ways
                    found = [c for c in found if c.question == record["question"]]
                candidates.append((name, f"{name} {shown(item)}", found))
        for field_name, what, found in candidates:
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise _Rejected(
                    field_name,
                    f"{what} match {len(found)} cases: name the cases' source "
                    "(--source, or the upload's source field)",
                )
        named = ", ".join(
            f"{n}={shown(record[n])}" for n in (*UUID_FIELDS, *ITEM_FIELDS) if record.get(n)
        )
        if not named and not record.get("question"):
            raise _Rejected("case", "no case id (case_id, item_id...) and no case fields")
        raise _Rejected("case", f"no case with {named or 'these case fields'}")


def _options(case: Case) -> list[Option]:
    return [Option(str(o["key"]), str(o["text"])) for o in case.options or []]


def reference_chain(case: Case) -> Chain | None:
    """The chain a model is compared with: a verified one first, else the case's reference."""
    chains = (
        case.chains.exclude(origin=Chain.Origin.MODEL)
        .exclude(purpose=Chain.Purpose.READING)
        .exclude(services.settled_by_adjudication())  # its adjudicated chain stands for it
    )
    return (
        chains.filter(status=Chain.Status.VERIFIED).order_by("-purpose", "-decided_at").first()
        or chains.exclude(status=Chain.Status.REJECTED).order_by("created_at").first()
    )


@dataclass(frozen=True)
class _Reference:
    steps: list[str]  # the reference chain's live step texts
    findings: list[KeyFinding]  # theirs, with those the gold answer states


def _reference(case: Case, cache: dict[int, _Reference]) -> _Reference:
    if case.pk not in cache:
        chain = reference_chain(case)
        steps = [s.text for s in chain.live_steps()] if chain else []
        found = findings_from_steps(steps)
        gold = case.answer if case.options else ", ".join(case.answer)
        found += [f for f in answer_findings(case.question, gold) if f not in found]
        cache[case.pk] = _Reference(steps, found)
    return cache[case.pk]


def _given_scores(record: dict[str, Any]) -> dict[str, float | None] | None:
    """The row's own scores when it carries all components, checked to lie in [0, 1]."""
    if not all(name in record for name in COMPONENTS):
        return None
    scores: dict[str, float | None] = {}
    for name in METRICS:
        value = record.get(name)
        if value is None:
            scores[name] = None
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise _Rejected(name, f"{name} must be a number from 0 to 1, not {shown(value)}")
        scores[name] = float(value)
    return scores


def _number(record: dict[str, Any], name: str, *, integer: bool = False) -> Any:
    """The row's `name` as Prediction's column of that name stores it, or the row is refused."""
    value = record.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Rejected(name, f"{name} must be a non-negative number, not {shown(value)}")
    try:
        number = float(value)
    except OverflowError:  # an integer past 1e308
        raise _Rejected(name, f"{name} is too large ({len(str(value))} digits)") from None
    if not math.isfinite(number):  # JSON's 1e400 reads as infinity
        raise _Rejected(name, f"{name} must be a finite number, not {shown(value)}")
    if number < 0:
        raise _Rejected(name, f"{name} must be a non-negative number, not {shown(value)}")
    if not integer:
        return number
    if not number.is_integer():
        raise _Rejected(name, f"{name} must be a whole number, not {shown(value)}")
    column = Prediction._meta.get_field(name)
    _, high = connection.ops.integer_field_range(column.get_internal_type())
    if high is not None and number > high:
        raise _Rejected(name, f"{name} must be at most {high}, not {shown(value)}")
    return int(value)


def _measures(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "latency_ms": _number(record, "latency_ms"),
        "prompt_tokens": _number(record, "prompt_tokens", integer=True),
        "completion_tokens": _number(record, "completion_tokens", integer=True),
    }


def _finding_dicts(value: Any) -> list[dict[str, str]]:
    return [
        {"observation": str(f.get("observation", "")), "status": str(f.get("status", ""))}
        for f in value or []
        if isinstance(f, dict)
    ]


def _prepare(
    line: int, record: dict[str, Any], case: Case, cache: dict[int, _Reference]
) -> _Row:
    if record.get("error"):
        raise _Rejected("error", f"generation failed for this case: {str(record['error'])[:200]}")
    text = record.get("pred", record.get("raw_text"))
    if not isinstance(text, str):
        raise _Rejected("pred", "missing field 'pred' (the model's raw output)")
    measures = _measures(record)  # checked here, before anything is written
    options = _options(case)
    parsed = parse_output(text, options)
    answer = parsed.letters if options else ([parsed.answer_text] if parsed.answer_text else [])
    gold = case.answer if options else ", ".join(case.answer)
    try:
        correct: bool | None = is_correct(parsed, gold, options)
    except ValueError:
        correct = None
    details: dict[str, Any] = {
        "answer_text": parsed.answer_text,
        "well_formed": parsed.well_formed,
        "line": line,
    }
    scores = _given_scores(record)
    if scores is not None:
        details["judge"] = str(record.get("judge") or "given")
        for name in ("matched", "missed", "contradicted", "invented"):
            details[name] = _finding_dicts(record.get(name))
        if scores.get("accuracy") is None and correct is not None:
            scores["accuracy"] = float(correct)
    else:
        reference = _reference(case, cache)
        score = judge_output(
            parsed.steps,
            reference.findings,
            question=case.question,
            letters=parsed.letters if options else (),
            answer_text=parsed.answer_text,
            report=case.report.text if case.report else None,
            reference_steps=reference.steps,
        )
        scores = {
            "accuracy": None if correct is None else float(correct),
            **{name: getattr(score, name) for name in COMPONENTS},
        }
        details["judge"] = "offline"
        for name in ("matched", "missed", "contradicted", "invented"):
            details[name] = [f.as_dict() for f in getattr(score, name)]
        details["effective_steps"] = score.effective_steps
        details["parts"] = score.parts  # what each component is made of
    if isinstance(record.get("settings"), dict):
        details["settings"] = record["settings"]
    details["case_ref"] = {n: record[n] for n in (*UUID_FIELDS, *ITEM_FIELDS) if record.get(n)}
    return _Row(line, case, record, parsed, answer, scores, details, measures)


# --- the import ----------------------------------------------------------------------------------


def _snapshot(ref: str | None) -> tuple[ExportSnapshot | None, str]:
    """An export snapshot named "v7", "7" or by uuid; an unknown name is kept as a reference."""
    if not ref:
        return None, ""
    number = re.fullmatch(r"v?(\d+)", ref.strip())
    snapshot = None
    if number:
        snapshot = ExportSnapshot.objects.filter(number=int(number.group(1))).first()
    elif _uuid(ref):
        snapshot = ExportSnapshot.objects.filter(uuid=_uuid(ref)).first()
    return snapshot, ref.strip()


def _check_run_fields(name: str, checkpoint: str, snapshot: str | None) -> None:
    """Refuse what the run's columns cannot store, before anything is looked up or written."""
    if not name.strip():
        raise RunError("a run needs a name")
    for label, value, column in (
        ("run name", name.strip(), "name"),
        ("checkpoint", checkpoint, "checkpoint"),
        ("snapshot", (snapshot or "").strip(), "snapshot_ref"),
    ):
        bad = unstorable(value)
        if bad is not None:
            raise RunError(f"{label} {bad[1]}")
        limit = ModelRun._meta.get_field(column).max_length
        if limit is not None and len(value) > limit:
            raise RunError(f"{label} is longer than {limit} characters ({len(value)})")


def find_run(name: str, *, checkpoint: str = "", snapshot: str | None = None) -> ModelRun | None:
    """The run called `name` if there is one; refuses a different checkpoint or snapshot."""
    _check_run_fields(name, checkpoint, snapshot)
    name = name.strip()
    run = ModelRun.objects.filter(name=name).first()
    if run is None:
        return None
    snapshot_ref = (snapshot or "").strip()
    if checkpoint and run.checkpoint and checkpoint != run.checkpoint:
        raise RunError(
            f"run {name!r} is checkpoint {run.checkpoint!r}, not {checkpoint!r}: name a new run"
        )
    if snapshot_ref and run.snapshot_ref and snapshot_ref != run.snapshot_ref:
        raise RunError(
            f"run {name!r} was made from snapshot {run.snapshot_ref!r}, not {snapshot_ref!r}"
        )
    return run


def get_run(
    name: str,
    *,
    checkpoint: str = "",
    snapshot: str | None = None,
    config: dict[str, Any] | None = None,
    user: Any = None,
) -> ModelRun:
    """The run called `name`, created on first use; refuses a different checkpoint or snapshot."""
    run = find_run(name, checkpoint=checkpoint, snapshot=snapshot)
    name = name.strip()
    snapshot_obj, snapshot_ref = _snapshot(snapshot)
    if run is None:
        return ModelRun.objects.create(
            name=name,
            checkpoint=checkpoint,
            config=config or {},
            snapshot=snapshot_obj,
            snapshot_ref=snapshot_ref,
            created_by=user if user is not None and user.pk else None,
        )
    changed = []
    if checkpoint and not run.checkpoint:
        run.checkpoint = checkpoint
        changed.append("checkpoint")
    if snapshot_ref and not run.snapshot_ref:
        run.snapshot, run.snapshot_ref = snapshot_obj, snapshot_ref
        changed += ["snapshot", "snapshot_ref"]
    if config and not run.config:
        run.config = config
        changed.append("config")
    if changed:
        run.save(update_fields=changed)
    return run


def _step_finding(text: str) -> dict[str, str] | None:
    """The step's strongest asserted finding, as the review page and the exports keep it."""
    found = findings_from_steps([text])
    if not found:
        return None
    best = max(found, key=lambda f: _STRENGTH.get(f.status, 0))
    return best.as_dict()


def import_predictions(
    path: Path,
    *,
    run: str,
    checkpoint: str = "",
    snapshot: str | None = None,
    source: str | None = None,
    user: Any = None,
    display_name: str | None = None,
) -> PredictionImport:
    """Import every valid row of `path` into run `run`; report the rest. See the module docstring."""
    _check_run_fields(run, checkpoint, snapshot)
    name = (display_name or path.name).encode("utf-8", "replace").decode("utf-8")
    result = PredictionImport(run_name=run.strip())
    storable: list[tuple[int, dict[str, Any]]] = []
    for line, record, error in _read(path):
        if record is None:
            result.problems.append(RowProblem(line, "", str(error)))
            continue
        # Any value may be stored (text, settings, case refs in jsonb) or looked up: a row that
        # holds one PostgreSQL refuses is reported before the case index queries with it.
        bad = unstorable(record, finite=True)
        if bad is not None:
            result.problems.append(RowProblem(line, *bad))
            continue
        storable.append((line, record))
    index = _CaseIndex((r for _, r in storable), source)
    cache: dict[int, _Reference] = {}
    prepared: list[_Row] = []
    seen: dict[int, int] = {}  # case -> the line of its first row
    settings_seen: dict[str, Any] | None = None
    for line, record in storable:
        try:
            case = index.find(record)
            row = _prepare(line, record, case, cache)
        except _Rejected as exc:
            result.problems.append(RowProblem(line, exc.field, str(exc)))
            continue
        if case.pk in seen:
            # A run holds one prediction per case: a second row is another model's or sample's,
            # never silently dropped as if it were a re-import.
            result.problems.append(
                RowProblem(
                    line,
                    "case",
                    f"a second prediction for the case of line {seen[case.pk]}: a run holds one "
                    "prediction per case (import each model or sample as its own run)",
                )
            )
            continue
        seen[case.pk] = line
        if settings_seen is None and isinstance(record.get("settings"), dict):
            settings_seen = record["settings"]
        prepared.append(row)

    result.problems.sort(key=lambda problem: problem.line)
    with transaction.atomic():
        if not prepared:  # a run with nothing in it would only clutter the Models and Compare pages
            result.run = find_run(run, checkpoint=checkpoint, snapshot=snapshot)
            return _finish(result, name)
        model = str((settings_seen or {}).get("model") or "")
        if model and not checkpoint:
            try:
                _check_run_fields(run, model, snapshot)
            except RunError as exc:
                raise RunError(f"{exc}, taken from the rows' settings.model: name one") from None
        result.run = get_run(
            run,
            checkpoint=checkpoint or model,
            snapshot=snapshot,
            config=settings_seen,
            user=user,
        )
        present = set(
            Prediction.objects.filter(
                run=result.run, case_id__in=[r.case.pk for r in prepared]
            ).values_list("case_id", flat=True)
        )
        fresh = [r for r in prepared if r.case.pk not in present]
        result.duplicates += len(prepared) - len(fresh)
        _write(result.run, fresh)
        result.created = len(fresh)
    return _finish(result, name)


def _finish(result: PredictionImport, name: str) -> PredictionImport:
    if result.problems:
        result.report_path = _write_report(result, name)
    return result


def _write(run: ModelRun, rows: Sequence[_Row]) -> None:
    chains = Chain.objects.bulk_create(
        [Chain(case=row.case, origin=Chain.Origin.MODEL) for row in rows]
    )
    steps = [
        Step(
            chain=chain,
            position=position,
            text=text,
            original_text=text,
            finding=_step_finding(text),
        )
        for chain, row in zip(chains, rows)
        for position, text in enumerate(row.parsed.steps, start=1)
    ]
    Step.objects.bulk_create(steps, batch_size=5000)
    Prediction.objects.bulk_create(
        [
            Prediction(
                run=run,
                case=row.case,
                chain=chain,
                raw_text=str(row.raw.get("pred", row.raw.get("raw_text", ""))),
                answer=row.answer,
                correct=None if row.scores["accuracy"] is None else row.scores["accuracy"] == 1.0,
                **row.measures,
                details=row.details,
                **row.scores,
            )
            for chain, row in zip(chains, rows)
        ],
        batch_size=2000,
    )


def _write_report(result: PredictionImport, name: str) -> Path:
    folder = Path(settings.IMPORT_REPORTS)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = timezone.now().strftime("%Y%m%dT%H%M%S%f")
    # A file name has at most 255 bytes: an uploaded file's name may take them all.
    path = folder / f"{stamp}-predictions-{re.sub(r'[^A-Za-z0-9_.-]', '_', name)[:100]}.txt"
    path.write_text(
        "".join(f"REJECTED\t{name}:{problem}\n" for problem in result.problems), encoding="utf-8"
    )
    return path


# --- sending a run's chains to review -----------------------------------------------------------

SEND_MODES = ("all", "sample", "lowest")


def send_to_review(
    run: ModelRun,
    reader: Any,
    *,
    by: Any,
    mode: str = "all",
    count: int | None = None,
    seed: int = 0,
) -> services.Assigned:
    """Assign the run's open model chains to `reader`: all, a seeded random sample of `count`, or
    the `count` with the lowest RadRScore, chosen among those no other reader has open or in
    progress (`Assigned.taken` counts those passed over)."""
    if mode not in SEND_MODES:
        raise ValueError(f"mode must be one of {', '.join(SEND_MODES)}")
    if mode != "all" and (count is None or count < 1):
        raise ValueError("give how many chains to send (a positive count)")
    open_chains = run.predictions.filter(
        chain__isnull=False, chain__status__in=[Chain.Status.PENDING, Chain.Status.IN_REVIEW]
    )
    elsewhere = Assignment.objects.filter(
        chain=OuterRef("chain"),
        status__in=[Assignment.Status.OPEN, Assignment.Status.IN_PROGRESS],
    ).exclude(reader=reader)
    predictions = open_chains.exclude(Exists(elsewhere))
    taken = open_chains.count() - predictions.count()
    if mode == "lowest":
        chosen = list(
            predictions.order_by(F("radrscore").asc(nulls_last=True), "id").values_list(
                "chain_id", flat=True
            )[:count]
        )
    else:
        chosen = list(predictions.order_by("id").values_list("chain_id", flat=True))
        if mode == "sample":
            chosen = random.Random(seed).sample(chosen, min(count or 0, len(chosen)))
    done = services.assign_chains(Chain.objects.filter(pk__in=chosen).order_by("pk"), reader, by=by)
    return services.Assigned(done.created, done.finished, done.taken + taken, done.double_read)


# --- the leaderboard ------------------------------------------------------------------------------

BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 20250601  # fixed: the same data always shows the same intervals


@dataclass(frozen=True)
class Estimate:
    mean: float | None
    low: float | None
    high: float | None
    n: int


@dataclass
class LeaderRow:
    run: ModelRun
    task: str  # a TaskType value, or "all"
    n: int
    metrics: dict[str, Estimate]


def bootstrap(
    values: Sequence[float | None],
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> Estimate:
    """The mean with a 95% percentile bootstrap interval (seeded, so reproducible).

    A resample draws n values with replacement: the same as drawing how many times each distinct
    value comes up from a multinomial. Scores take few distinct values (accuracy two), so the
    counts are drawn that way, in time independent of n: a 60,000-prediction run costs no more
    than a small one.
    """
    data = np.asarray([v for v in values if v is not None], dtype=float)
    if data.size == 0:
        return Estimate(None, None, None, 0)
    mean = float(data.mean())
    if data.size == 1:
        return Estimate(mean, mean, mean, 1)
    rng = np.random.default_rng(seed)
    distinct, counts = np.unique(data, return_counts=True)
    if distinct.size * 4 <= data.size:
        drawn = rng.multinomial(data.size, counts / data.size, size=resamples)
        means = drawn @ distinct / data.size
    else:
        means = np.empty(resamples)
        chunk = max(1, 2_000_000 // data.size)  # bound memory: a few rows of indices at a time
        for start in range(0, resamples, chunk):
            stop = min(resamples, start + chunk)
            picks = rng.integers(0, data.size, size=(stop - start, data.size))
            means[start:stop] = data[picks].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return Estimate(mean, float(low), float(high), int(data.size))


def leaderboard(runs: Iterable[ModelRun] | None = None) -> list[LeaderRow]:
    """Each run x task type (and all tasks together): every metric's mean with its 95% interval.

    Predictions never change once imported, so the figures are cached per set of runs until a
    prediction is added or removed.
    """
    run_list = list(runs) if runs is not None else list(ModelRun.objects.order_by("name"))
    chosen = Prediction.objects.filter(run__in=run_list)
    state = chosen.aggregate(n=Count("id"), last=Max("id"), at=Max("created_at"))
    key = (
        "leaderboard:"
        + hashlib.sha256(
            repr((sorted(r.pk for r in run_list), state["n"], state["last"], state["at"])).encode()
        ).hexdigest()
    )
    figures: list[tuple[int, str, int, dict[str, Estimate]]] | None = cache.get(key)
    if figures is None:
        figures = _leaderboard_figures(run_list, chosen)
        cache.set(key, figures, timeout=24 * 3600)
    by_pk = {run.pk: run for run in run_list}
    return [LeaderRow(by_pk[pk], task, n, metrics) for pk, task, n, metrics in figures]


def _leaderboard_figures(
    run_list: list[ModelRun], chosen: QuerySet[Prediction]
) -> list[tuple[int, str, int, dict[str, Estimate]]]:
    groups: dict[tuple[int, str], list[tuple[Any, ...]]] = defaultdict(list)
    for run_id, task, *scores in chosen.values_list("run_id", "case__task_type", *METRICS):
        groups[(run_id, task)].append(tuple(scores))
        groups[(run_id, "all")].append(tuple(scores))
    figures = []
    for run in run_list:
        tasks = sorted(t for r, t in groups if r == run.pk and t != "all")
        for task in [*tasks, "all"] if tasks else []:
            members = groups[(run.pk, task)]
            metrics = {
                name: bootstrap([m[i] for m in members], seed=BOOTSTRAP_SEED + i)
                for i, name in enumerate(METRICS)
            }
            figures.append((run.pk, task, len(members), metrics))
    return figures


# --- side by side ----------------------------------------------------------------------------------

FILTERS = {
    "all": "All cases",
    "disagree": "Models disagree",
    "split": "One right, another wrong",
    "lowest": "Lowest RadRScore first",
}


def compared_cases(
    runs: Sequence[ModelRun], *, filter_name: str = "all", task: str = ""
) -> list[int]:
    """Case ids the runs answered, in browsing order, narrowed by one of `FILTERS`."""
    rows = Prediction.objects.filter(run__in=runs)
    if task:
        rows = rows.filter(case__task_type=task)
    per_case = rows.values("case_id").annotate(
        n=Count("id"),
        answers=Count("answer", distinct=True),
        right=Count("id", filter=Q(correct=True)),
        wrong=Count("id", filter=Q(correct=False)),
        low=Min("radrscore"),
    )
    if filter_name == "disagree":
        per_case = per_case.filter(n__gte=2, answers__gte=2)
    elif filter_name == "split":
        per_case = per_case.filter(right__gte=1, wrong__gte=1)
    if filter_name == "lowest":
        per_case = per_case.order_by(F("low").asc(nulls_last=True), "case_id")
    else:
        per_case = per_case.order_by("case_id")
    return [row["case_id"] for row in per_case]


@dataclass
class Column:
    title: str
    kind: str  # reference | model
    chain: Chain | None
    steps: list[dict[str, Any]]
    prediction: Prediction | None = None
    findings: list[KeyFinding] = field(default_factory=list)

    @property
    def answer(self) -> str:
        """The model's answer as the reader wants it: "A) Yes", "B) Edema, D) Effusion"."""
        if self.prediction is None:
            return ""
        texts = {str(o["key"]): str(o["text"]) for o in self.chain.case.options or []} if self.chain else {}
        return ", ".join(
            f"{given}) {texts[given]}" if given in texts else str(given)
            for given in self.prediction.answer or []
        )


_FINISHED = (Chain.Status.VERIFIED, Chain.Status.REJECTED)


def _column_steps(
    chain: Chain | None, kind: str
) -> tuple[list[dict[str, Any]], list[KeyFinding]]:
    """A column's steps as the page shows them, and the findings they state.

    A verified reference is shown as verified (its live steps and their verdicts). Everything
    else shows what was first produced: a model's steps as it wrote them, a reference not yet
    verified as mined; a review still under way shows nothing of itself (no verdicts, no edits),
    a finished review of a model chain adds each step's verdict and what the reader corrected.
    """
    if chain is None:
        return [], []
    if kind == "reference" and chain.status == Chain.Status.VERIFIED:
        rows = [
            {"text": step.text, "verdict": step.verdict, "verdict_label": step.get_verdict_display()}
            for step in chain.live_steps()
        ]
    else:
        finished = kind == "model" and chain.status in _FINISHED
        rows = []
        for step in chain.steps.filter(added_by_reader=False).order_by("id"):
            row: dict[str, Any] = {"text": step.original_text or step.text, "verdict": ""}
            if finished:
                row["verdict"] = "deleted" if step.deleted else step.verdict
                row["verdict_label"] = (
                    "Deleted in review" if step.deleted else step.get_verdict_display()
                )
                if not step.deleted and step.text != row["text"]:
                    row["corrected"] = step.text
            rows.append(row)
    for position, row in enumerate(rows, start=1):
        row["position"] = position
        row["findings"] = findings_from_steps([row["text"]])
    return rows, findings_from_steps([row["text"] for row in rows])


def case_comparison(case: Case, runs: Sequence[ModelRun]) -> dict[str, Any]:
    """The reference chain and each run's chain for one case, with findings aligned across them."""
    reference = reference_chain(case)
    ref_steps, ref_findings = _column_steps(reference, "reference")
    verified = reference is not None and reference.status == Chain.Status.VERIFIED
    columns = [
        Column(
            "Reference" + (" (verified)" if verified else ""),
            "reference",
            reference,
            ref_steps,
            findings=ref_findings,
        )
    ]
    predictions = {
        p.run_id: p
        for p in Prediction.objects.filter(case=case, run__in=runs).select_related("run", "chain")
    }
    for run in runs:
        prediction = predictions.get(run.pk)
        steps, findings = _column_steps(prediction.chain if prediction else None, "model")
        columns.append(
            Column(
                run.name,
                "model",
                prediction.chain if prediction else None,
                steps,
                prediction,
                findings,
            )
        )
    report_findings = findings_from_text(case.report.text) if case.report else []
    return {
        "columns": columns,
        "alignment": align(columns, report_findings),
    }


def align(columns: Sequence[Column], report: Sequence[KeyFinding] = ()) -> list[dict[str, Any]]:
    """One row per observation any column states: each column's status and how it compares with
    the reference: matched, contradicted, missing (the reference states it, the model does not),
    extra (the model states it, the reference does not; "invented" when the report is silent)."""

    def statuses(findings: Iterable[KeyFinding]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = defaultdict(list)
        for f in findings:
            if f.status not in found[f.observation]:
                found[f.observation].append(f.status)
        return found

    per_column = [statuses(column.findings) for column in columns]
    reported = statuses(report)
    order: list[str] = []
    for found in per_column:
        order += [o for o in found if o not in order]
    rows = []
    for observation in order:
        reference = (
            per_column[0].get(observation, []) if columns and columns[0].kind == "reference" else []
        )
        cells = []
        for column, found in zip(columns, per_column):
            mine = found.get(observation, [])
            if column.kind == "reference":
                verdict = "reference" if mine else "absent-from-reference"
            elif not mine:
                verdict = "missing" if reference else "silent"
            elif not reference:
                positive = any(s != "absent" for s in mine)
                verdict = "invented" if positive and observation not in reported else "extra"
            elif any(compatible(a, b) for a in mine for b in reference):
                verdict = (
                    "matched"
                    if all(any(compatible(a, b) for b in reference) for a in mine)
                    else "contradicted"
                )
            else:
                verdict = "contradicted"
            cells.append({"statuses": mine, "verdict": verdict})
        rows.append({"observation": observation, "cells": cells})
    return rows


def runs_by_uuid(values: Iterable[str]) -> list[ModelRun]:
    """Runs named by uuid, in the order given, unknown or repeated ones left out."""
    wanted = [u for u in (_uuid(v) for v in values) if u is not None]
    found = {run.uuid: run for run in ModelRun.objects.filter(uuid__in=wanted)}
    ordered: list[ModelRun] = []
    for key in wanted:
        if key in found and found[key] not in ordered:
            ordered.append(found[key])
    return ordered


def comparison_queryset(runs: Sequence[ModelRun]) -> QuerySet[Prediction]:
    return Prediction.objects.filter(run__in=runs).select_related("run", "case")
