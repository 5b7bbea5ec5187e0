"""Mine questions and reasoning chains from reports into the workbench (services).

    result = mine(Path("reports.jsonl"), labels_csv=Path("labels.csv"), tasks=("binary", "single"))
    print(result.summary())

The same function serves `manage.py mine` and the curator's Mining page (through a background
job, `run_mining_job`). Input is a JSONL or CSV file of reports (`report` or `original_report`,
optional `study_id`, `patient_id`, `image_path`, `prior_study_id`) or a MIMIC-CXR-style folder of
`pNN/pNNNNNNNN/sNNNNNNNN.txt` reports. Labels come from the findings labeler or from a labels CSV
(`cxr.mining.labels_from_row`); cases and chains from `cxr.mining.build_cases`, and with
`llm=True` chains from an OpenAI-compatible endpoint (`annotation.llm_mining`), falling back to
the rule-based chain, with the error reported, when the model's reply is unusable.

Mined chains arrive as `mined_rule` or `mined_llm`, pending and unassigned. Reruns create
nothing new: a case is keyed by source + external id (pseudonymous study key + question key) +
a hash of its content; a rerun with the LLM adds an LLM chain to a case mined by rules only.
Rejected inputs are listed with file, line, field and reason (and written to a report file).
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import shutil
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from annotation import imaging, jobs
from annotation.importing import (
    Problem,
    ProblemCounts,
    RecordError,
    extract_zip,
    patient_and_study,
    pseudonym,
    read_records,
    resolve_image,
    store_image,
)
from annotation.llm_mining import LLMConfig, LLMMiner
from annotation.models import Case, CaseImage, Chain, Image, Job, Report, Step, Study
from cxr import mining as rules
from cxr.mining import MinedCase, MinedStep, ReportLabels
from cxr.sections import split_sections

Progress = Callable[[int, int, str], None]

REPORT_FIELDS = ("report", "original_report")
IMAGE_SUFFIXES = (".dcm", ".dicom", ".png", ".jpg", ".jpeg")
CHUNK = 200  # reports per transaction
LLM_CHUNK = 32  # reports per batch when an LLM writes the chains: progress stays lively
PRIOR_FIELDS = ("prior_study_id", "previous_study_id")
_DATASET_PATH = re.compile(r"/p\d{2}/p\d+/s\d+/|patient\d+/study\d+")
_MIMIC_REPORT = re.compile(r"s\d+\.txt")


# A bad input names its field, exactly as an imported record's error does.
InputError = RecordError


# --- results ---------------------------------------------------------------------------------


@dataclass
class MiningResult(ProblemCounts):
    reports: int = 0  # reports read and labelled
    cases: Counter[str] = field(default_factory=Counter)  # new cases per task type
    chains: Counter[str] = field(default_factory=Counter)  # new chains per origin
    duplicates: int = 0  # cases (with a chain of the wanted origin) already present
    skipped: Counter[str] = field(default_factory=Counter)  # "task: reason" -> reports
    problems: list[Problem] = field(default_factory=list)  # rejected inputs and warnings
    llm_errors: list[Problem] = field(default_factory=list)  # cases kept with the rule chain
    llm_requests: int = 0
    llm_cache_hits: int = 0
    report_path: Path | None = None

    def summary(self) -> str:
        created = sum(self.cases.values())
        text = f"Mined {created} cases from {self.reports} reports"
        if self.cases:
            text += " (" + ", ".join(f"{task} {n}" for task, n in sorted(self.cases.items())) + ")"
        text += f", {self.rejected} rejected"
        extras = []
        if self.duplicates:
            extras.append(f"{self.duplicates} already present")
        if self.llm_errors:
            extras.append(f"{len(self.llm_errors)} LLM chains fell back to rules")
        return text + self._summary_tail(extras)

    def as_dict(self) -> dict[str, Any]:
        """What a job keeps (JSON), for the Mining page: it lists the problems, so its summary
        does not name the report file on the server."""
        shown, self.show_report_path = self.show_report_path, False
        try:
            summary = self.summary()
        finally:
            self.show_report_path = shown
        return {
            "summary": summary,
            "reports": self.reports,
            "cases": dict(self.cases),
            "chains": dict(self.chains),
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "warnings": self.warnings,
            "skipped": dict(self.skipped.most_common(50)),
            "problems": [p.__dict__ for p in self.problems[:2000]],
            "llm_errors": [p.__dict__ for p in self.llm_errors[:2000]],
            "llm_requests": self.llm_requests,
            "llm_cache_hits": self.llm_cache_hits,
            "report_path": str(self.report_path or ""),
        }


# --- reading ---------------------------------------------------------------------------------


@dataclass
class ReportInput:
    file: str
    line: int
    study_id: str = ""  # normalised ("s5001" and "5001" are one study)
    patient_id: str = ""
    prior_study_id: str = ""
    image_paths: list[str] = field(default_factory=list)
    hint: str = ""  # a dataset path naming patient and study (MIMIC-CXR p../p../s../)
    text: str | None = None
    path: Path | None = None  # folder inputs are read when their turn comes

    def load(self) -> str:
        if self.text is None:
            assert self.path is not None
            try:
                self.text = self.path.read_text(encoding="utf-8")
            except UnicodeDecodeError as exc:
                raise InputError("", f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None
        report = rules.clean_report(self.text)
        if not report:
            raise InputError("report", "empty report")
        return report


def study_id(value: Any) -> str:
    """One spelling per study id: "s50414267", "50414267" and "50414267.0" are the same."""
    text = str(value or "").strip()
    if re.fullmatch(r"\d+\.0", text):
        text = text[:-2]
    if re.fullmatch(r"[sS]\d+", text):
        text = text[1:]
    return text


def _text(record: dict[str, Any], name: str) -> str:
    value = record.get(name)
    if value is None:
        return ""
    if not isinstance(value, (str, int, float)):
        raise InputError(name, f"{name!r} should be text, not {type(value).__name__}")
    return str(value).strip()


def _from_record(record: Any, file: str, line: int) -> ReportInput:
    if not isinstance(record, dict):
        raise InputError("", f"a record must be a JSON object, not {type(record).__name__}")
    text = next((record[f] for f in REPORT_FIELDS if isinstance(record.get(f), str) and record[f].strip()), None)
    if text is None:
        given = [f for f in REPORT_FIELDS if f in record]
        if given:
            raise InputError(given[0], f"'{given[0]}' is empty or not text: a report is needed")
        raise InputError("report", "missing field 'report' (or 'original_report')")
    paths = record.get("image_path") or []
    if isinstance(paths, str):
        paths = [p for p in re.split(r"[;|]", paths) if p.strip()] if paths.strip() else []
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise InputError("image_path", "image_path must be a path or a list of paths")
    hint = next((p for p in paths if _DATASET_PATH.search(p)), "")
    return ReportInput(
        file, line, study_id(_text(record, "study_id")), _text(record, "patient_id"),
        study_id(next((_text(record, f) for f in PRIOR_FIELDS if record.get(f)), "")),
        [p.strip() for p in paths], hint, text,
    )


def _csv_rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    csv.field_size_limit(min(sys.maxsize, 1 << 30))  # reports can be long
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        for row in reader:
            yield reader.line_num, {(k or "").strip(): (v or "") for k, v in row.items()}


def read_inputs(path: Path, name: str, problems: list[Problem]) -> list[ReportInput]:
    """Every report of a JSONL/JSON/CSV file or a MIMIC-CXR-style folder, in order."""
    if path.is_dir():
        return _read_folder(path)
    inputs: list[ReportInput] = []
    try:
        if path.suffix.lower() == ".csv":
            records: Iterable[tuple[int, Any, str | None]] = ((n, r, None) for n, r in _csv_rows(path))
        else:
            records = read_records(path)
        for line, record, error in records:
            if error:
                problems.append(Problem(name, line, "", error))
                continue
            try:
                inputs.append(_from_record(record, name, line))
            except InputError as exc:
                problems.append(Problem(name, line, exc.field, str(exc)))
    except UnicodeDecodeError as exc:
        problems.append(Problem(name, 0, "", f"not UTF-8 text: {exc.reason} at byte {exc.start}"))
    except csv.Error as exc:
        problems.append(Problem(name, 0, "", f"unreadable CSV: {exc}"))
    seen: dict[str, int] = {}
    unique = []
    for item in inputs:
        if item.study_id and item.study_id in seen:
            problems.append(Problem(name, item.line, "study_id",
                                    f"study {item.study_id} already given on line {seen[item.study_id]}"))
            continue
        if item.study_id:
            seen[item.study_id] = item.line
        unique.append(item)
    return unique


def _read_folder(root: Path) -> list[ReportInput]:
    inputs = []
    for path in sorted(root.rglob("*.txt")):
        if not _MIMIC_REPORT.fullmatch(path.name):
            continue
        relative = path.relative_to(root)
        patients = [p for p in relative.parts[:-1] if re.fullmatch(r"p\d+", p)]
        study = path.stem
        hint = ""
        if len(patients) >= 2:  # files/p10/p10000032/s50414267.txt: the importer's keys
            hint = f"/{patients[-2]}/{patients[-1]}/{study}/"
        inputs.append(
            ReportInput(str(relative), 0, study_id(study), patients[-1] if patients else "", hint=hint, path=path)
        )
    return inputs


@dataclass
class LabelRows:
    rows: dict[str, dict[str, str]] = field(default_factory=dict)  # study id -> cells
    progression: bool = False  # the file has progression columns


def read_labels(path: Path, name: str, problems: list[Problem]) -> LabelRows:
    """A labels CSV keyed by study_id; bad cells reject their row (listed), never the file."""
    labels = LabelRows()
    try:
        rows = list(_csv_rows(path))
    except (UnicodeDecodeError, csv.Error) as exc:
        problems.append(Problem(name, 0, "", f"unreadable labels file: {exc}"))
        return labels
    if not rows:
        problems.append(Problem(name, 0, "", "the labels file has no rows"))
        return labels
    columns = list(rows[0][1])
    labels.progression = bool(rules.progression_columns(columns))
    if "study_id" not in columns:
        problems.append(Problem(name, 1, "study_id", "the labels file has no study_id column"))
        return labels
    if not rules.observation_columns(columns) and not labels.progression:
        problems.append(Problem(name, 1, "", "no label columns (CheXpert observation names, or <observation>_progression)"))
        return labels
    for line, row in rows:
        key = study_id(row.get("study_id"))
        if not key:
            problems.append(Problem(name, line, "study_id", "missing study_id"))
            continue
        try:
            rules.labels_from_row("", row)
            rules.progression_from_row(row)
        except rules.LabelError as exc:
            problems.append(Problem(name, line, exc.column, str(exc)))
            continue
        if key in labels.rows:  # MS-CXR-T has a row per image pair: merge what they add
            merged = labels.rows[key]
            for column, value in row.items():
                if value.strip() and not merged.get(column, "").strip():
                    merged[column] = value
        else:
            labels.rows[key] = dict(row, _line=str(line))
    return labels


# --- building --------------------------------------------------------------------------------


@dataclass
class Pending:
    input: ReportInput
    prior: ReportInput | None
    mined: MinedCase
    external_id: str
    content_hash: str
    case: Case | None = None
    llm_steps: list[MinedStep] | None = None
    llm_error: str = ""


def study_keys(item: ReportInput, source: str) -> tuple[str, str]:
    """(study external id, patient key): pseudonyms, never the raw identifiers."""
    if item.hint:
        patient, study = patient_and_study(source, item.hint, "")
        return study, patient
    patient = pseudonym(source, f"patient:{item.patient_id}") if item.patient_id else ""
    if item.study_id:
        return pseudonym(source, f"study:{item.study_id}"), patient
    digest = hashlib.sha256((item.text or "").encode()).hexdigest()
    return pseudonym(source, f"report:{digest}"), patient


def content_hash(mined: MinedCase) -> str:
    """The case's identity: question, options, answer and reports (not the chain's wording)."""
    payload = {
        "task": mined.task, "key": mined.key, "question": mined.question, "options": mined.options,
        "answer": mined.answer, "report": mined.report, "prior_report": mined.prior_report,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class _Miner:
    def __init__(
        self, *, source: str, tasks: tuple[str, ...], seed: int, labels: LabelRows | None,
        images_dir: Path | None, llm: LLMMiner | None, name: str, result: MiningResult,
    ) -> None:
        self.source, self.tasks, self.seed = source, tasks, seed
        self.labels, self.images_dir, self.llm, self.name = labels, images_dir, llm, name
        self.result = result
        self.by_study: dict[str, ReportInput] = {}
        self.images: dict[int, list[Image]] = {}  # id(ReportInput) -> stored images

    # labels and cases for one report
    def build(self, item: ReportInput) -> list[Pending]:
        text = item.load()
        row = self.labels.rows.get(item.study_id) if self.labels else None
        if self.labels is not None and row is None:
            self._warn(item, "labels", "no row in the labels file: labelled by the findings labeler")
        current = self._labels(text, row, rules.CURRENT)
        prior_item, prior_labels, progression = None, None, None
        prior_id = item.prior_study_id or study_id(
            next((row[f] for f in PRIOR_FIELDS if row and row.get(f, "").strip()), "")
        )
        if rules.TEMPORAL in self.tasks and prior_id:
            prior_item = self.by_study.get(prior_id)
            if prior_item is None:
                self._warn(item, "prior_study_id", f"prior study {prior_id} is not among the reports: no temporal case")
            else:
                prior_row = self.labels.rows.get(prior_id) if self.labels else None
                try:
                    prior_labels = self._labels(prior_item.load(), prior_row, rules.PRIOR)
                except (InputError, OSError) as exc:
                    self._warn(item, "prior_study_id", f"prior study {prior_id} unusable ({exc}): no temporal case")
                    prior_item = None
                if prior_labels is not None and self.labels is not None and self.labels.progression:
                    progression = rules.progression_from_row(row) if row else {}
        study_ext, _ = study_keys(item, self.source)
        # The choices are seeded by the input itself, not by the source name: same input, same cases.
        seed_key = item.study_id or hashlib.sha256(text.encode()).hexdigest()
        built = rules.build_cases(
            current, tasks=self.tasks, seed=self.seed, key=seed_key, prior=prior_labels,
            progression=progression,
        )
        for task, reason in built.skipped.items():
            self.result.skipped[f"{task}: {reason}"] += 1
        return [
            Pending(item, prior_item if mined.task == rules.TEMPORAL else None, mined,
                    f"{study_ext}:{mined.key}"[:200], content_hash(mined))
            for mined in built.cases
        ]

    def _labels(self, text: str, row: dict[str, str] | None, which: str) -> ReportLabels:
        if row is not None:
            return rules.labels_from_row(text, row, which)
        return rules.labels_from_report(text, which)

    def _warn(self, item: ReportInput, field_name: str, reason: str) -> None:
        self.result.problems.append(Problem(item.file, item.line, field_name, reason, "warning"))

    # the database
    def write(self, pending: list[Pending], progress: Callable[[int], None]) -> None:
        if not pending:
            return
        existing = {
            (c.external_id, c.content_hash): c
            for c in Case.objects.filter(source=self.source, content_hash__in={p.content_hash for p in pending})
        }
        origins = set(
            Chain.objects.filter(case__in=list(existing.values()), purpose=Chain.Purpose.REFERENCE)
            .values_list("case_id", "origin")
        )
        wanted = Chain.Origin.MINED_LLM if self.llm else Chain.Origin.MINED_RULE
        todo: list[Pending] = []
        seen: set[tuple[str, str]] = set()
        for item in pending:
            key = (item.external_id, item.content_hash)
            item.case = existing.get(key)
            if key in seen or (item.case is not None and (item.case.pk, wanted) in origins):
                self.result.duplicates += 1
                continue
            seen.add(key)
            todo.append(item)
        if self.llm is not None and todo:
            done = [0]

            def on_done(_: Any) -> None:
                done[0] += 1
                progress(done[0])

            for item, outcome in zip(todo, self.llm.mine_many([p.mined for p in todo], on_done)):
                item.llm_steps, item.llm_error = outcome.steps, outcome.error
                if outcome.error:
                    self.result.llm_errors.append(
                        Problem(item.input.file, item.input.line, "llm",
                                f"{item.mined.key}: {outcome.error}; kept the rule-based chain", "llm")
                    )
        writable = []
        for item in todo:
            fallback = self.llm is not None and item.llm_steps is None
            if fallback and item.case is not None and (item.case.pk, Chain.Origin.MINED_RULE) in origins:
                self.result.duplicates += 1  # the rule chain from an earlier run stands
                continue
            writable.append(item)
        for item in writable:
            if item.case is None:
                self._attach_images(item)
        with transaction.atomic():
            self._write(writable)

    def _attach_images(self, item: Pending) -> None:
        for report_input in (item.prior, item.input):
            if report_input is not None and id(report_input) not in self.images:
                self.images[id(report_input)] = self._store_images(report_input)

    def _store_images(self, item: ReportInput) -> list[Image]:
        if self.images_dir is None:
            return []
        locations: list[tuple[str, Path | None]] = []
        for name in item.image_paths:
            locations.append((name, resolve_image(self.images_dir, name)))
        if not item.image_paths and item.hint:  # a MIMIC-CXR folder: the study's image files
            relative = item.hint.strip("/")
            for base in (self.images_dir / relative, self.images_dir / "files" / relative):
                if base.is_dir():
                    locations += [(str(p), p) for p in sorted(base.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
                    break
        stored = []
        for name, location in locations:
            if location is None:
                self._warn(item, "image_path", f"image {Path(name).name!r} not found under {self.images_dir}: mined without it")
                continue
            try:
                stored.append(store_image(location))
            except imaging.ImageError as exc:
                self._warn(item, "image_path", f"image {Path(name).name!r} unusable ({exc}): mined without it")
        return stored

    def _write(self, items: list[Pending]) -> None:
        if not items:
            return
        studies = self._studies(items)
        reports = self._reports(items, studies)
        new_cases = []
        for item in items:
            if item.case is not None:
                continue
            study = studies[study_keys(item.input, self.source)[0]]
            prior = (
                reports[(studies[study_keys(item.prior, self.source)[0]].pk, item.mined.prior_report)]
                if item.prior is not None else None
            )
            mined = item.mined
            item.case = Case(
                source=self.source, external_id=item.external_id, content_hash=item.content_hash,
                task_type=mined.task, question=mined.question, options=mined.options,
                answer=mined.answer, answer_content=mined.answer_content,
                report=reports[(study.pk, mined.report)], prior_report=prior,
            )
            new_cases.append(item)
        Case.objects.bulk_create([item.case for item in new_cases])  # type: ignore[misc]
        for item in new_cases:
            self.result.cases[item.mined.task] += 1
        chains, steps = [], []
        for item in items:
            use_llm = item.llm_steps is not None
            chain = Chain(
                case=item.case, status=Chain.Status.PENDING,
                origin=Chain.Origin.MINED_LLM if use_llm else Chain.Origin.MINED_RULE,
                note=f"LLM mining failed ({item.llm_error}); this is the rule-based chain."[:2000]
                if item.llm_error else "",
            )
            chains.append(chain)
            self.result.chains[str(chain.origin)] += 1
            for position, step in enumerate(item.llm_steps or item.mined.steps, start=1):
                steps.append(
                    Step(chain=chain, position=position, text=step.text, original_text=step.text,
                         finding=step.finding, evidence=step.evidence.as_dict() if step.evidence else None)
                )
        Chain.objects.bulk_create(chains)
        Step.objects.bulk_create(steps, batch_size=5000)
        links = []
        for item in new_cases:
            sources = [(item.prior, "prior"), (item.input, "current")] if item.prior else [(item.input, "")]
            images = [(image, label) for who, label in sources for image in self.images.get(id(who), [])]
            links += [
                CaseImage(case=item.case, image=image, position=position, label=label)
                for position, (image, label) in enumerate(images)
            ]
        CaseImage.objects.bulk_create(links)

    def _studies(self, items: list[Pending]) -> dict[str, Study]:
        wanted: dict[str, str] = {}
        priors: dict[str, str] = {}
        for item in items:
            for who in (item.input, item.prior):
                if who is not None:
                    ext, patient = study_keys(who, self.source)
                    wanted.setdefault(ext, patient)
            if item.prior is not None:
                priors[study_keys(item.input, self.source)[0]] = study_keys(item.prior, self.source)[0]
        Study.objects.bulk_create(
            [Study(source=self.source, external_id=ext, patient_key=patient) for ext, patient in wanted.items()],
            ignore_conflicts=True,  # another run may have created it meanwhile
        )
        studies = {s.external_id: s for s in Study.objects.filter(source=self.source, external_id__in=list(wanted))}
        for current, prior in priors.items():
            Study.objects.filter(pk=studies[current].pk, prior__isnull=True).update(prior=studies[prior])
        for item in items:
            for who in (item.input, item.prior):
                if who is not None:
                    study = studies[study_keys(who, self.source)[0]]
                    ids = [image.pk for image in self.images.get(id(who), [])]
                    if ids:
                        Image.objects.filter(pk__in=ids, study__isnull=True).update(study=study)
        return studies

    def _reports(self, items: list[Pending], studies: dict[str, Study]) -> dict[tuple[int, str], Report]:
        texts: set[tuple[int, str]] = set()
        for item in items:
            if item.case is None:
                texts.add((studies[study_keys(item.input, self.source)[0]].pk, item.mined.report))
                if item.prior is not None:
                    texts.add((studies[study_keys(item.prior, self.source)[0]].pk, item.mined.prior_report))
        known = {
            (r.study_id, r.text): r
            for r in Report.objects.filter(study_id__in={pk for pk, _ in texts})
        }
        fresh = []
        for study_pk, text in texts:
            if (study_pk, text) not in known:
                sections = split_sections(text)
                known[(study_pk, text)] = Report(
                    study_id=study_pk, text=text, findings=sections.get("findings", ""),
                    impression=sections.get("impression", ""),
                )
                fresh.append(known[(study_pk, text)])
        Report.objects.bulk_create(fresh)
        return known  # type: ignore[return-value]


# --- the service -------------------------------------------------------------------------------


def parse_tasks(value: str | Iterable[str]) -> tuple[str, ...]:
    items = [t.strip().lower() for t in (value.split(",") if isinstance(value, str) else value) if t.strip()]
    unknown = [t for t in items if t not in rules.TASKS]
    if unknown or not items:
        raise ValueError(f"unknown task {unknown[0]!r}: choose from {', '.join(rules.TASKS)}" if unknown
                         else f"choose at least one task: {', '.join(rules.TASKS)}")
    return tuple(dict.fromkeys(items))


def mine(
    reports_path: Path,
    labels_csv: Path | None = None,
    images_dir: Path | None = None,
    tasks: Iterable[str] = rules.TASKS,
    llm: bool = False,
    limit: int | None = None,
    seed: int = 0,
    source: str = "mined",
    progress: Progress | None = None,
    *,
    llm_config: LLMConfig | None = None,
    display_name: str | None = None,
    labels_name: str | None = None,
) -> MiningResult:
    """Mine every report of `reports_path` into cases and chains; see the module docstring.

    `progress(done, total, message)` is called as reports are processed (total = reports).
    With `llm=True`, `llm_config` (default: from settings) names the endpoint.
    """
    tasks = parse_tasks(tasks)
    result = MiningResult()
    name = display_name or reports_path.name
    inputs = read_inputs(reports_path, name, result.problems)
    labels = read_labels(labels_csv, labels_name or labels_csv.name, result.problems) if labels_csv else None
    miner_llm = LLMMiner(llm_config or LLMConfig.from_settings()) if llm else None
    miner = _Miner(source=source, tasks=tasks, seed=seed, labels=labels, images_dir=images_dir,
                   llm=miner_llm, name=name, result=result)
    miner.by_study = {item.study_id: item for item in inputs if item.study_id}
    selected = inputs[:limit] if limit else inputs
    total = len(selected)
    report = progress or (lambda done, total, message: None)
    report(0, total, "Mining reports")
    chunk = LLM_CHUNK if miner_llm else CHUNK
    done = 0
    for start in range(0, total, chunk):
        pending: list[Pending] = []
        for item in selected[start : start + chunk]:
            try:
                pending += miner.build(item)
                result.reports += 1
            except InputError as exc:
                result.problems.append(Problem(item.file, item.line, exc.field, str(exc)))
            except OSError as exc:
                result.problems.append(Problem(item.file, item.line, "", f"unreadable: {exc.strerror or exc}"))
        base = done

        def llm_progress(cases: int, base: int = base, count: int = len(pending)) -> None:
            report(base, total, f"LLM chains: {cases} of {count} cases in this batch")

        miner.write(pending, llm_progress)
        done = min(total, start + chunk)
        report(done, total, "Mining reports")
    if miner_llm is not None:
        result.llm_requests, result.llm_cache_hits = miner_llm.requests, miner_llm.cache_hits
    if result.problems or result.llm_errors:
        result.report_path = write_report(result, name)
    return result


def write_report(result: MiningResult, name: str) -> Path:
    folder = settings.IMPORT_REPORTS
    folder.mkdir(parents=True, exist_ok=True)
    stamp = timezone.now().strftime("%Y%m%dT%H%M%S%f")
    path = folder / f"{stamp}-mine-{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.txt"
    lines = [f"{p.kind.upper()}\t{p}" for p in [*result.problems, *result.llm_errors]]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- background jobs (the curator's Mining page) -------------------------------------------------


def _save(upload: Any, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    return target


def start_mining_job(
    user: Any, reports: Any, labels: Any | None, *, tasks: Iterable[str], llm: bool,
    limit: int | None, seed: int, source: str,
) -> Job:
    """Keep the uploads where the worker can read them, then queue the job."""
    folder = settings.MEDIA_ROOT / "mining-uploads" / uuid.uuid4().hex
    reports_name = Path(reports.name).name
    suffix = Path(reports_name).suffix.lower() or ".jsonl"
    params: dict[str, Any] = {
        "folder": str(folder),
        "reports": str(_save(reports, folder / f"reports{suffix}")),
        "reports_name": reports_name,
        "labels": str(_save(labels, folder / "labels.csv")) if labels else "",
        "labels_name": Path(labels.name).name if labels else "",
        "tasks": list(tasks), "llm": llm, "limit": limit, "seed": seed, "source": source,
    }
    return jobs.start("mining", user, params=params, runner="annotation.mining.run_mining_job")


def run_mining_job(job: Job, report: Progress) -> dict[str, Any]:
    params = job.params
    folder = Path(params["folder"])
    try:
        reports = Path(params["reports"])
        if reports.suffix == ".zip":  # a zipped MIMIC-CXR-style folder of sNNN.txt reports
            unpacked = folder / "reports"
            unpacked.mkdir(exist_ok=True)
            extract_zip(reports, unpacked, max_bytes=settings.MAX_UPLOAD_BYTES)
            reports = unpacked
        result = mine(
            reports, labels_csv=Path(params["labels"]) if params.get("labels") else None,
            tasks=params["tasks"], llm=params["llm"], limit=params.get("limit"),
            seed=params.get("seed", 0), source=params["source"], progress=report,
            display_name=params.get("reports_name"), labels_name=params.get("labels_name") or None,
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # reports are sensitive: keep no copies
    return result.as_dict()
