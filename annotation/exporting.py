"""Export snapshots: versioned, reproducible datasets in TRL's shapes (see DESIGN.md).

    snapshot = export(ExportOptions(formats=("sft", "prm")), Path("out/v7"), user=carol)

Layout of a snapshot folder (the training and inference readers rely on it):

    README.md                 dataset card: counts, verdicts, agreement, provenance
    manifest.json             snapshot uuid and number, options, counts, files with sha256,
                              code revision, and every chain's content hash (for comparisons)
    images/<sha256>.png       8-bit PNGs windowed like the viewer's default; named by the hash
                              of the PNG itself: no identifier in a name or in the metadata
    sft/ prm/ grpo/ radrbench/    {train,validation,test}.jsonl and .parquet

Which chains: never a reader's private copy; for a double-read case the adjudicated chain, not
its reference. Splits are by patient (sha256 of seed + pseudonymous patient key, 80/10/10), so a
patient is never in two splits. The same database state and options give byte-identical data
files: rows sorted by chain uuid, fixed key order, no timestamps, Parquet written from the JSONL
with a fixed schema.

Step labels (PRM): correct -> true, incorrect -> false, irrelevant -> left out (an irrelevant
step is neither right nor wrong reasoning, and a false label would teach "wrong"). A rewritten
step judged incorrect contributes its original text as false and its corrected text as true; a
step the reader added is true; a deleted step judged incorrect contributes its text as false;
unjudged steps are left out. The other formats use the chain as the reader left it: live steps,
corrected texts, without irrelevant steps and without incorrect steps that were not corrected.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from datetime import date
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, Max, OuterRef, QuerySet
from django.db.models.functions import Coalesce, TruncDate

from annotation import imaging
from annotation.models import (
    Case,
    CaseImage,
    Chain,
    ExportSnapshot,
    Job,
    Step,
    TaskType,
)
from cxr import prompts
from cxr.questions import lettered
from cxr.radrscore import answer_findings, findings_from_steps
from cxr.vocabulary import NO_FINDING, OBSERVATIONS

FORMATS = ("sft", "prm", "grpo", "radrbench")
SPLITS = ("train", "validation", "test")
SPLIT_BOUNDS = (0.8, 0.9)  # train below 0.8, validation below 0.9, test above: 80/10/10
FORMAT_VERSION = 1
CHUNK = 2000  # chains fetched per query round
Progress = Callable[[int, int, str], None]


class ExportError(ValueError):
    """Options or a target folder that an export cannot use."""


@dataclass(frozen=True)
class ExportOptions:
    formats: tuple[str, ...] = FORMATS
    status: tuple[str, ...] = (Chain.Status.VERIFIED,)
    tasks: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    origins: tuple[str, ...] = ()
    since: str = ""  # ISO date: chains decided (else last changed) on or after it
    min_agreement: float | None = None  # reader-pair kappa; keeps double-read chains only
    image_size: int = 512  # longest side of the exported PNGs
    seed: str = "0"  # split assignment: sha256(seed + patient key)

    def __post_init__(self) -> None:
        def check(values: tuple[str, ...], allowed: Iterable[str], name: str) -> None:
            unknown = sorted(set(values) - set(allowed))
            if unknown:
                raise ExportError(f"unknown {name} {', '.join(unknown)}: choose from {', '.join(allowed)}")

        if not self.formats:
            raise ExportError("choose at least one format")
        check(self.formats, FORMATS, "format")
        check(self.status, Chain.Status.values, "status")
        check(self.tasks, TaskType.values, "task")
        check(self.origins, Chain.Origin.values, "origin")
        if self.since:
            try:
                date.fromisoformat(self.since)
            except ValueError:
                raise ExportError(f"since must be a date like 2025-01-31, not {self.since!r}") from None
        if self.min_agreement is not None and not -1.0 <= self.min_agreement <= 1.0:
            raise ExportError("min agreement is a kappa, between -1 and 1")
        if not 16 <= self.image_size <= 4096:
            raise ExportError("image size must be between 16 and 4096 pixels")

    def as_dict(self) -> dict[str, Any]:
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExportOptions:
        known = {f.name for f in fields(cls)}
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in known}
        return cls(**values)


# --- which chains --------------------------------------------------------------------------------


def select_chains(options: ExportOptions) -> QuerySet[Chain]:
    """The chains an export with these options takes (also the API's `exportable` listing)."""
    settled = Chain.objects.filter(derived_from=OuterRef("pk"), purpose=Chain.Purpose.ADJUDICATED)
    chains = Chain.objects.exclude(purpose=Chain.Purpose.READING).exclude(
        Exists(settled), purpose=Chain.Purpose.REFERENCE
    )
    if options.status:
        chains = chains.filter(status__in=options.status)
    if options.tasks:
        chains = chains.filter(case__task_type__in=options.tasks)
    if options.sources:
        chains = chains.filter(case__source__in=options.sources)
    if options.origins:
        chains = chains.filter(origin__in=options.origins)
    if options.since:
        chains = chains.annotate(
            _day=TruncDate(Coalesce("decided_at", "updated_at"))
        ).filter(_day__gte=date.fromisoformat(options.since))
    if options.min_agreement is not None:
        chains = chains.filter(
            purpose=Chain.Purpose.ADJUDICATED,
            derived_from_id__in=_references_with_agreement(options.min_agreement),
        )
    return chains


def _references_with_agreement(minimum: float) -> list[int]:
    """Reference chains read by a pair of readers whose step-verdict kappa is at least `minimum`."""
    from annotation.agreement import agreement_report
    from annotation.reading import finished_pairs

    report = agreement_report()
    good = {(p.first, p.second) for p in report.pairs if p.kappa is not None and p.kappa >= minimum}
    return [pair.reference_id for pair in finished_pairs() if (pair.first.reader, pair.second.reader) in good]


# --- records ---------------------------------------------------------------------------------------


@dataclass
class StepRecord:
    position: int
    text: str
    original_text: str
    verdict: str
    deleted: bool
    added: bool
    finding: dict[str, Any] | None

    @property
    def rewritten(self) -> bool:
        return self.text != self.original_text


@dataclass
class ChainRecord:
    uuid: str
    reference_uuid: str
    origin: str
    purpose: str
    status: str
    case_uuid: str
    item_id: str
    source: str
    task_type: str
    question: str
    options: list[dict[str, str]]
    answer: list[str]
    report: str
    prior_report: str
    patient_key: str
    images: list[str]
    steps: list[StepRecord] = field(default_factory=list)

    @property
    def answer_text(self) -> str:
        return ", ".join(self.answer)


def final_steps(steps: list[StepRecord]) -> list[StepRecord]:
    """The chain as the reader left it: live steps, minus irrelevant and uncorrected wrong ones."""
    kept = []
    for step in steps:
        if step.deleted or step.verdict == Step.Verdict.IRRELEVANT:
            continue
        if step.verdict == Step.Verdict.INCORRECT and not step.rewritten:
            continue
        kept.append(step)
    return kept


def prm_steps(steps: list[StepRecord]) -> list[tuple[str, bool]]:
    """(text, label) pairs for stepwise supervision; the rules are in the module docstring."""
    labelled: list[tuple[str, bool]] = []
    for step in steps:
        if step.verdict == Step.Verdict.INCORRECT:
            if step.rewritten:
                labelled.append((step.original_text, False))
                if not step.deleted:
                    labelled.append((step.text, True))
            else:
                labelled.append((step.text, False))
        elif step.verdict == Step.Verdict.CORRECT and not step.deleted:
            labelled.append((step.text, True))
    return labelled


_STRENGTH = {"present": 2, "uncertain": 1, "absent": 0}
_ORDER = {name: index for index, name in enumerate(OBSERVATIONS)}


def reference_findings(
    steps: list[StepRecord], *, question: str = "", answer: Iterable[str] = ()
) -> list[dict[str, str]]:
    """{observation, status} for the reference chain, as GRPO rewards compare a model against it.

    A step's own finding where it has one (and was not rewritten), else what the step asserts
    as `cxr.radrscore` reads reasoning: "Look for cardiomegaly by measuring the CTR" plans a
    look and asserts nothing, "there is no pneumothorax" does. Per observation the strongest
    status wins (present > uncertain > absent), and the verified answer's findings
    (`answer_findings` of `question`) overrule them all: a "B) No" to "pneumothorax?" makes
    Pneumothorax absent whatever a step said on the way. No Finding is present exactly when no
    abnormal observation is present or uncertain. Rows come in vocabulary order.
    """
    merged: dict[str, str] = {}
    given: dict[str, str] = {}
    for step in steps:
        finding = step.finding if isinstance(step.finding, dict) else None
        if finding and finding.get("observation") and not step.rewritten:
            given.setdefault(str(finding["observation"]), str(finding.get("status", "present")))
            continue
        for read in findings_from_steps([step.text]):
            if _STRENGTH.get(read.status, 0) >= _STRENGTH.get(merged.get(read.observation, ""), -1):
                merged[read.observation] = read.status
    merged.update(given)
    answers = list(answer)
    if question and answers:
        merged.update((f.observation, f.status) for f in answer_findings(question, answers))
    abnormal = any(
        OBSERVATIONS[name].abnormal and status != "absent"
        for name, status in merged.items()
        if name in OBSERVATIONS
    )
    merged[NO_FINDING] = "absent" if abnormal else "present"
    return [
        {"observation": name, "status": merged[name]}
        for name in sorted(merged, key=lambda n: (_ORDER.get(n, len(_ORDER)), n))
    ]


def split_for(patient_key: str, seed: str) -> str:
    """train / validation / test from a hash of the patient: a patient is never in two splits."""
    digest = hashlib.sha256(f"{seed}\x00{patient_key}".encode()).digest()
    unit = int.from_bytes(digest[:8], "big") / 2**64
    return "train" if unit < SPLIT_BOUNDS[0] else "validation" if unit < SPLIT_BOUNDS[1] else "test"


# --- rows, one builder per format ------------------------------------------------------------


def sft_row(record: ChainRecord) -> dict[str, Any]:
    steps = [s.text for s in final_steps(record.steps)]
    assistant = {
        "role": "assistant",
        "content": [{"type": "text", "text": prompts.assistant_text(steps, record.answer_text)}],
    }
    return {
        "id": record.uuid,
        "case_id": record.case_uuid,
        "task_type": record.task_type,
        "messages": [*prompts.conversation(record.question, len(record.images)), assistant],
        "images": record.images,
    }


def prm_row(record: ChainRecord) -> dict[str, Any]:
    labelled = prm_steps(record.steps)
    return {
        "id": record.uuid,
        "case_id": record.case_uuid,
        "chain_id": record.reference_uuid,
        "task_type": record.task_type,
        "origin": record.origin,
        "source": record.source,
        "prompt": record.question,
        "completions": [text for text, _ in labelled],
        "labels": [label for _, label in labelled],
        "images": record.images,
    }


def grpo_row(record: ChainRecord) -> dict[str, Any]:
    steps = final_steps(record.steps)
    return {
        "id": record.uuid,
        "case_id": record.case_uuid,
        "task_type": record.task_type,
        "prompt": prompts.conversation(record.question, len(record.images)),
        "images": record.images,
        "answer": record.answer_text,
        "options": [{"key": o["key"], "text": o["text"]} for o in record.options],
        "reference_steps": [s.text for s in steps],
        "reference_findings": reference_findings(
            steps, question=record.question, answer=record.answer
        ),
    }


def radrbench_row(record: ChainRecord) -> dict[str, Any]:
    row: dict[str, Any] = {
        "case_key": record.case_uuid,
        "item_id": record.item_id,
        "task": record.task_type,
        "question": record.question,
        "answer": record.answer_text,
        "reason_steps": [s.text for s in final_steps(record.steps)],
        "original_report": record.report,
        "image_path": record.images,
        # prior and current report of a temporal case; empty otherwise, so that every row (and
        # every split) has the same columns and types, which datasets.load_dataset requires
        "original_report1": "",
        "original_report2": "",
    }
    if record.task_type == TaskType.TEMPORAL:
        row["original_report1"] = record.prior_report
        row["original_report2"] = record.report
    return row


BUILDERS: dict[str, Callable[[ChainRecord], dict[str, Any]]] = {
    "sft": sft_row, "prm": prm_row, "grpo": grpo_row, "radrbench": radrbench_row,
}


def content_hash(record: ChainRecord, split: str) -> str:
    """What a comparison of two snapshots calls "changed": anything exported about the chain."""
    data = {
        "status": record.status, "origin": record.origin, "purpose": record.purpose,
        "split": split, "question": record.question, "options": record.options,
        "answer": record.answer, "task": record.task_type, "report": record.report,
        "prior_report": record.prior_report, "images": record.images,
        "steps": [[s.position, s.text, s.original_text, s.verdict, s.deleted, s.added, s.finding]
                  for s in record.steps],
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


# --- reading the database in chunks ----------------------------------------------------------


def _records(chain_ids: list[int], images: dict[int, list[str]]) -> Iterator[ChainRecord]:
    """ChainRecords for the given chains, in the order given, a chunk of queries at a time."""
    for start in range(0, len(chain_ids), CHUNK):
        chunk = chain_ids[start : start + CHUNK]
        chains = {
            row[0]: row
            for row in Chain.objects.filter(pk__in=chunk).values_list(
                "pk", "uuid", "origin", "purpose", "status", "derived_from__uuid", "case_id"
            )
        }
        cases = {
            row[0]: row
            for row in Case.objects.filter(pk__in={c[6] for c in chains.values()}).values_list(
                "pk", "uuid", "external_id", "source", "task_type", "question", "options",
                "answer", "report__text", "prior_report__text", "report__study__patient_key",
            )
        }
        steps: dict[int, list[StepRecord]] = defaultdict(list)
        rows = (
            Step.objects.filter(chain_id__in=chunk)
            .order_by("chain_id", "position", "-deleted", "id")
            .values_list("chain_id", "position", "text", "original_text", "verdict", "deleted",
                         "added_by_reader", "finding")
        )
        for chain_id, *values in rows:
            steps[chain_id].append(StepRecord(*values))
        for pk in chunk:
            _, uuid, origin, purpose, status, reference, case_id = chains[pk]
            case = cases[case_id]
            yield ChainRecord(
                uuid=str(uuid), reference_uuid=str(reference or uuid), origin=origin,
                purpose=purpose, status=status, case_uuid=str(case[1]), item_id=case[2],
                source=case[3], task_type=case[4], question=lettered(case[5]), options=case[6] or [],
                answer=case[7] or [], report=case[8] or "", prior_report=case[9] or "",
                patient_key=case[10] or f"case:{case[1]}", images=images.get(case_id, []),
                steps=steps[pk],
            )


# --- images ------------------------------------------------------------------------------------


def _render_cached(image: tuple[int, str, str], size: int) -> bytes:
    """The export PNG of one stored image, rendered once per size and kept in the render cache."""
    _, sha, kind = image
    cache = settings.RENDER_CACHE / "export" / sha[:2] / f"{sha}-{size}.png"
    try:
        return cache.read_bytes()
    except FileNotFoundError:
        pass
    ext = {"dicom": "dcm", "png": "png", "jpeg": "jpg"}[kind]
    source = settings.IMAGE_STORE / sha[:2] / f"{sha}.{ext}"
    if not source.exists():
        raise ExportError(f"image {sha[:12]}… is missing from the image store ({source})")
    data = imaging.render(source, max_side=size, fmt="png")
    cache.parent.mkdir(parents=True, exist_ok=True)
    partial = cache.with_suffix(f".part{os.getpid()}-{id(data)}")
    partial.write_bytes(data)
    partial.replace(cache)
    return data


def _write_images(
    case_ids: QuerySet[Chain], out: Path, size: int, progress: Progress
) -> tuple[dict[int, list[str]], dict[str, tuple[str, int]]]:
    """Render every image the cases use into images/; case id -> relative paths in order."""
    links = list(
        CaseImage.objects.filter(case_id__in=case_ids)
        .order_by("case_id", "position", "id")
        .values_list("case_id", "image_id", "image__sha256", "image__kind")
    )
    unique = sorted({(image_id, sha, kind) for _, image_id, sha, kind in links}, key=lambda i: i[1])
    folder = out / "images"
    folder.mkdir(parents=True, exist_ok=True)
    names: dict[int, str] = {}
    files: dict[str, tuple[str, int]] = {}

    def one(image: tuple[int, str, str]) -> tuple[int, str, int]:
        data = _render_cached(image, size)
        digest = hashlib.sha256(data).hexdigest()
        target = folder / f"{digest}.png"
        if not target.exists():
            target.write_bytes(data)
        return image[0], digest, len(data)

    workers = min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for done, (image_id, digest, size_bytes) in enumerate(pool.map(one, unique), start=1):
            names[image_id] = f"images/{digest}.png"
            files[names[image_id]] = (digest, size_bytes)
            if done % 500 == 0 or done == len(unique):
                progress(done, len(unique), f"Rendered {done} of {len(unique)} images")
    by_case: dict[int, list[str]] = defaultdict(list)
    for case_id, image_id, _, _ in links:
        by_case[case_id].append(names[image_id])
    return by_case, files


# --- Parquet ------------------------------------------------------------------------------------


def _schemas() -> dict[str, Any]:
    import pyarrow as pa

    text = pa.string()
    part = pa.struct([("type", text), ("text", text)])
    message = pa.struct([("role", text), ("content", pa.list_(part))])
    strings = pa.list_(text)
    return {
        "sft": pa.schema([("id", text), ("case_id", text), ("task_type", text),
                          ("messages", pa.list_(message)), ("images", strings)]),
        "prm": pa.schema([("id", text), ("case_id", text), ("chain_id", text), ("task_type", text),
                          ("origin", text), ("source", text), ("prompt", text),
                          ("completions", strings), ("labels", pa.list_(pa.bool_())),
                          ("images", strings)]),
        "grpo": pa.schema([("id", text), ("case_id", text), ("task_type", text),
                           ("prompt", pa.list_(message)), ("images", strings), ("answer", text),
                           ("options", pa.list_(pa.struct([("key", text), ("text", text)]))),
                           ("reference_steps", strings),
                           ("reference_findings", pa.list_(pa.struct([("observation", text), ("status", text)])))]),
        "radrbench": pa.schema([("case_key", text), ("item_id", text), ("task", text),
                                ("question", text), ("answer", text), ("reason_steps", strings),
                                ("original_report", text), ("image_path", strings),
                                ("original_report1", text), ("original_report2", text)]),
    }


def write_parquet(jsonl: Path, target: Path, schema: Any) -> None:
    """Parquet from a JSONL file, streamed in blocks with a fixed schema: deterministic bytes."""
    import pyarrow.json as pj
    import pyarrow.parquet as pq

    options = {"compression": "zstd", "use_dictionary": True, "write_statistics": True}
    if jsonl.stat().st_size == 0:
        pq.write_table(schema.empty_table(), target, **options)
        return
    reader = pj.open_json(
        jsonl,
        read_options=pj.ReadOptions(block_size=8 << 20, use_threads=False),
        parse_options=pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="error"),
    )
    with pq.ParquetWriter(target, schema, **options) as writer:
        for batch in reader:
            writer.write_batch(batch.select(schema.names))


# --- the export ----------------------------------------------------------------------------------


def code_revision() -> str:
    """The git commit the code runs from, "+dirty" with uncommitted changes; "unknown" without git."""
    base = Path(settings.BASE_DIR)
    try:
        head = subprocess.run(["git", "-C", str(base), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(base), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}+dirty" if dirty else head


def create_snapshot(options: ExportOptions, *, user: Any = None, path: Path | None = None) -> ExportSnapshot:
    """A pending snapshot row with the next number (v1, v2, ...); none when no chain matches."""
    if not select_chains(options).exists():
        raise ExportError("no chain matches these options: nothing to export, no snapshot made")
    for _ in range(10):
        number = (ExportSnapshot.objects.aggregate(n=Max("number"))["n"] or 0) + 1
        try:
            with transaction.atomic():
                return ExportSnapshot.objects.create(
                    number=number, options=options.as_dict(), created_by=user if user and user.pk else None,
                    path=str(path) if path else "", code_revision=code_revision(),
                )
        except IntegrityError:
            continue  # another export took the number first
    raise ExportError("could not allocate a snapshot number")


def default_folder(snapshot: ExportSnapshot) -> Path:
    return Path(settings.MEDIA_ROOT) / "exports" / f"v{snapshot.number:04d}-{str(snapshot.uuid)[:8]}"


def export(
    options: ExportOptions, out: Path | None = None, *, user: Any = None,
    progress: Progress | None = None,
) -> ExportSnapshot:
    """Create a snapshot and write it to `out` (which must be new or empty)."""
    if out is not None and out.exists() and any(out.iterdir()):
        raise ExportError(f"{out} is not empty: a snapshot is written into a new folder")
    snapshot = create_snapshot(options, user=user, path=out)
    return run_snapshot(snapshot, progress=progress)


def run_snapshot(snapshot: ExportSnapshot, *, progress: Progress | None = None) -> ExportSnapshot:
    """Write a pending snapshot's files and record counts, hashes and the manifest."""
    options = ExportOptions.from_dict(snapshot.options)
    out = Path(snapshot.path) if snapshot.path else default_folder(snapshot)
    report = progress or (lambda done, total, message: None)
    try:
        result = _write(snapshot, options, out, report)
    except Exception as exc:
        ExportSnapshot.objects.filter(pk=snapshot.pk).update(
            status=ExportSnapshot.Status.FAILED, error=f"{type(exc).__name__}: {exc}", path=str(out)
        )
        raise
    ExportSnapshot.objects.filter(pk=snapshot.pk).update(status=ExportSnapshot.Status.DONE, path=str(out), **result)
    snapshot.refresh_from_db()
    return snapshot


def _write(snapshot: ExportSnapshot, options: ExportOptions, out: Path, report: Progress) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    chosen = select_chains(options)
    chain_ids = list(chosen.order_by("uuid").values_list("pk", flat=True))
    report(0, len(chain_ids), f"Rendering images for {len(chain_ids)} chains")
    images, image_files = _write_images(
        chosen.values("case_id"), out, options.image_size,
        lambda done, total, message: report(0, len(chain_ids), message),
    )
    handles = {}
    for fmt in options.formats:
        (out / fmt).mkdir(exist_ok=True)
        for split in SPLITS:
            handles[(fmt, split)] = (out / fmt / f"{split}.jsonl").open("w", encoding="utf-8", newline="\n")
    counts: dict[str, Any] = {
        "chains": 0, "rows": {f: dict.fromkeys(SPLITS, 0) for f in options.formats},
        "by_task": Counter(), "by_status": Counter(), "by_origin": Counter(), "by_purpose": Counter(),
        "verdicts": Counter(), "prm_labels": Counter(), "prm_unjudged": 0, "cases": set(),
        "patients": {s: set() for s in SPLITS},
    }
    manifest: dict[str, str] = {}
    try:
        for done, record in enumerate(_records(chain_ids, images), start=1):
            split = split_for(record.patient_key, options.seed)
            for fmt in options.formats:
                row = BUILDERS[fmt](record)
                if fmt == "prm" and not row["labels"]:
                    counts["prm_unjudged"] += 1  # no judged step: nothing a PRM can learn
                    continue
                handles[(fmt, split)].write(json.dumps(row, ensure_ascii=False) + "\n")
                counts["rows"][fmt][split] += 1
                if fmt == "prm":
                    counts["prm_labels"].update(str(label).lower() for label in row["labels"])
            manifest[record.uuid] = content_hash(record, split)
            counts["chains"] += 1
            counts["cases"].add(record.case_uuid)
            counts["patients"][split].add(record.patient_key)
            counts["by_task"][record.task_type] += 1
            counts["by_status"][record.status] += 1
            counts["by_origin"][record.origin] += 1
            counts["by_purpose"][record.purpose] += 1
            counts["verdicts"].update(s.verdict for s in record.steps if not s.deleted)
            if done % 1000 == 0 or done == len(chain_ids):
                report(done, len(chain_ids), f"Wrote {done} of {len(chain_ids)} chains")
    finally:
        for handle in handles.values():
            handle.close()
    schemas = _schemas()
    for fmt in options.formats:
        for split in SPLITS:
            write_parquet(out / fmt / f"{split}.jsonl", out / fmt / f"{split}.parquet", schemas[fmt])
    counts = _finish_counts(counts, len(image_files))
    (out / "README.md").write_text(dataset_card(snapshot, options, counts), encoding="utf-8")
    files = _file_list(out, image_files)
    (out / "manifest.json").write_text(
        json.dumps(
            {
                "snapshot": str(snapshot.uuid), "number": snapshot.number,
                "format_version": FORMAT_VERSION, "options": options.as_dict(), "counts": counts,
                "splits": {"by": "patient", "seed": options.seed, "bounds": list(SPLIT_BOUNDS)},
                "code_revision": snapshot.code_revision, "files": files,
                "chains": dict(sorted(manifest.items())),
            },
            indent=1, ensure_ascii=False,
        ) + "\n",
        encoding="utf-8",
    )
    return {"counts": counts, "files": files, "manifest": dict(sorted(manifest.items()))}


def _finish_counts(counts: dict[str, Any], images: int) -> dict[str, Any]:
    def plain(counter: Counter[str]) -> dict[str, int]:
        return dict(sorted(counter.items()))

    return {
        "chains": counts["chains"], "cases": len(counts["cases"]), "images": images,
        "patients": {s: len(v) for s, v in counts["patients"].items()},
        "rows": counts["rows"], "by_task": plain(counts["by_task"]),
        "by_status": plain(counts["by_status"]), "by_origin": plain(counts["by_origin"]),
        "by_purpose": plain(counts["by_purpose"]), "verdicts": plain(counts["verdicts"]),
        "prm_labels": plain(counts["prm_labels"]),
        "prm_chains_without_judged_steps": counts["prm_unjudged"],  # left out of prm/
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _file_list(out: Path, image_files: dict[str, tuple[str, int]]) -> list[dict[str, Any]]:
    """Every file but manifest.json, with its sha256 (an image's name is its hash already)."""
    files = []
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        relative = path.relative_to(out).as_posix()
        if relative == "manifest.json":
            continue
        if relative in image_files:
            digest, size = image_files[relative]
        else:
            digest, size = _sha256(path), path.stat().st_size
        files.append({"path": relative, "sha256": digest, "bytes": size})
    return files


def dataset_card(snapshot: ExportSnapshot, options: ExportOptions, counts: dict[str, Any]) -> str:
    """README.md of the snapshot: what is in it, how it was made, how to load it."""
    from annotation.agreement import agreement_report

    def table(title: str, values: dict[str, int]) -> list[str]:
        lines = [f"| {title} | chains |", "| --- | ---: |"]
        lines += [f"| {key} | {value} |" for key, value in values.items()] or ["| (none) | 0 |"]
        return lines + [""]

    agreement = agreement_report()
    filters = {k: v for k, v in options.as_dict().items() if v not in ((), [], "", None)}
    lines = [
        f"# ChestX reasoning chains, snapshot v{snapshot.number}", "",
        f"Snapshot `{snapshot.uuid}`, written by the workbench at code revision "
        f"`{snapshot.code_revision or 'unknown'}`.", "",
        "## Contents", "",
        f"{counts['chains']} chains over {counts['cases']} cases and {counts['images']} images. "
        "Chains verified by radiologists; for a double-read case the senior reader's settled "
        "chain. Splits are by patient (no patient in two splits): "
        + ", ".join(f"{split} {counts['patients'][split]} patients" for split in SPLITS) + ".", "",
        "| format | " + " | ".join(SPLITS) + " |", "| --- | " + " | ".join("---:" for _ in SPLITS) + " |",
        *[f"| {fmt} | " + " | ".join(str(counts["rows"][fmt][s]) for s in SPLITS) + " |" for fmt in options.formats],
        "",
        *table("task", counts["by_task"]), *table("status", counts["by_status"]),
        *table("origin", counts["by_origin"]), *table("purpose", counts["by_purpose"]),
        "| step verdict | steps |", "| --- | ---: |",
        *[f"| {k} | {v} |" for k, v in counts["verdicts"].items()], "",
        f"PRM labels: {counts['prm_labels'].get('true', 0)} true, {counts['prm_labels'].get('false', 0)} false"
        f" ({counts.get('prm_chains_without_judged_steps', 0)} chains with no judged step left out of prm/).", "",
        "## Agreement between readers (all double readings in the workbench)", "",
        "| readers | chains | steps | kappa (step verdicts) | chain decisions agree |",
        "| --- | ---: | ---: | ---: | ---: |",
        *[f"| {p.label} | {p.chains} | {p.steps} | {_fmt(p.kappa)} | {_fmt(p.decision_agreement, pct=True)} |"
          for p in [*agreement.pairs, agreement.overall]],
        "",
        "## Provenance", "",
        f"- filters and options: `{json.dumps(filters, sort_keys=True)}`",
        f"- format version {FORMAT_VERSION}; every file's sha256 is in `manifest.json`",
        "- images: 8-bit PNGs windowed like the viewer's default (the file's window or VOI LUT, "
        f"MONOCHROME1 inverted), longest side {options.image_size} px, named by their own sha256; "
        "no identifier in a name or in the metadata",
        "", "## Formats", "",
        "- `sft/`: `messages` (system, user with one image placeholder per image and the question, "
        "assistant `<think> steps </think><answer> X </answer>`) and `images`.",
        "- `prm/`: `prompt`, `completions` (step texts), `labels` (correct -> true, incorrect -> false; "
        "irrelevant steps are left out; a corrected step appears as its original text, false, then its "
        "corrected text, true; reader-added steps are true; a deleted step judged incorrect is false).",
        "- `grpo/`: conversational `prompt`, `images`, `answer`, `options`, `reference_steps`, "
        "`reference_findings` (`{observation, status}`).",
        "- `radrbench/`: `case_key`, `item_id`, `task`, `question`, `answer`, `reason_steps`, "
        "`original_report`, `image_path`, `original_report1`/`2` (prior and current report of a temporal case, else empty).",
        "", "```python",
        "from datasets import load_dataset",
        'sft = load_dataset("json", data_files={s: f"sft/{s}.jsonl" for s in ("train", "validation", "test")})',
        'prm = load_dataset("parquet", data_files={"train": "prm/train.parquet"})',
        "```", "",
    ]
    return "\n".join(lines)


def _fmt(value: float | None, *, pct: bool = False) -> str:
    if value is None:
        return "—"
    return f"{100 * value:.0f} %" if pct else f"{value:.2f}"


# --- background job and comparison ---------------------------------------------------------------


def start_export(options: ExportOptions, user: Any) -> ExportSnapshot:
    """The curator page and the API: a pending snapshot and a background job that writes it."""
    from annotation import jobs

    with transaction.atomic():
        snapshot = create_snapshot(options, user=user)
        snapshot.path = str(default_folder(snapshot))
        job = jobs.start("export", user, params={"snapshot": str(snapshot.uuid)},
                         runner="annotation.exporting.run_export_job")
        snapshot.job = job
        snapshot.save(update_fields=["path", "job"])
    return snapshot


def run_export_job(job: Job, report: Progress) -> dict[str, Any]:
    snapshot = ExportSnapshot.objects.get(uuid=job.params["snapshot"])
    snapshot = run_snapshot(snapshot, progress=report)
    return {"snapshot": str(snapshot.uuid), "number": snapshot.number, "chains": snapshot.counts.get("chains", 0)}


@dataclass
class Comparison:
    added: list[str]
    removed: list[str]
    changed: list[str]
    unchanged: int


def compare(old: ExportSnapshot, new: ExportSnapshot) -> Comparison:
    """Chains added, removed and changed from `old` to `new`, by their content hashes."""
    before, after = old.manifest or {}, new.manifest or {}
    return Comparison(
        added=sorted(set(after) - set(before)),
        removed=sorted(set(before) - set(after)),
        changed=sorted(k for k in set(before) & set(after) if before[k] != after[k]),
        unchanged=sum(1 for k in set(before) & set(after) if before[k] == after[k]),
    )


def snapshot_file(snapshot: ExportSnapshot, relative: str) -> Path | None:
    """A file of a finished snapshot, only if its manifest lists it (no path tricks)."""
    listed = {f["path"] for f in snapshot.files} | {"manifest.json"}
    if snapshot.status != ExportSnapshot.Status.DONE or relative not in listed:
        return None
    path = Path(snapshot.path) / relative
    return path if path.is_file() else None


def zip_stream(snapshot: ExportSnapshot) -> Iterator[bytes]:
    """The snapshot folder as a zip, produced while it is sent (never held in memory whole)."""
    import zipfile

    class Sink:
        def __init__(self) -> None:
            self.chunks: list[bytes] = []
            self.offset = 0

        def write(self, data: bytes) -> int:
            self.chunks.append(bytes(data))
            self.offset += len(data)
            return len(data)

        def tell(self) -> int:
            return self.offset

        def flush(self) -> None:
            pass

        def drain(self) -> bytes:
            data, self.chunks = b"".join(self.chunks), []
            return data

    root = Path(snapshot.path)
    prefix = f"snapshot-v{snapshot.number}"
    sink = Sink()
    with zipfile.ZipFile(sink, "w") as archive:  # type: ignore[arg-type]
        for relative in ["manifest.json", *[f["path"] for f in snapshot.files]]:
            path = root / relative
            packed = relative.endswith((".jsonl", ".json", ".md"))
            method = zipfile.ZIP_DEFLATED if packed else zipfile.ZIP_STORED  # PNG/Parquet: packed already
            info = zipfile.ZipInfo(f"{prefix}/{relative}", date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = method
            with path.open("rb") as source, archive.open(info, "w", force_zip64=True) as target:
                shutil.copyfileobj(source, target, 1 << 20)
            yield sink.drain()
    yield sink.drain()


__all__ = [
    "FORMATS", "SPLITS", "ExportError", "ExportOptions", "compare", "export", "run_snapshot",
    "select_chains", "split_for", "start_export", "zip_stream",
]
