"""The workbench's domain model (see DESIGN.md: Domain model).

Single-object state changes live here as methods (`step.mark`, `chain.verify`); every change
writes a ReviewEvent row, and concurrent writers are kept apart by version numbers: an update
based on a stale version is refused with `StaleVersion`, never applied over a newer edit.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Final

from django.conf import settings
from django.db import connection, models
from django.db.models import F
from django.utils import timezone

from cxr.questions import lettered


class StaleVersion(Exception):
    """A write was based on a version that is no longer current."""

    def __init__(self, obj: models.Model, expected: int) -> None:
        self.obj = obj
        self.expected = expected
        super().__init__(
            f"{type(obj).__name__} {obj.uuid} changed since you loaded it "
            f"(your version {expected}, current {obj.version})"  # type: ignore[attr-defined]
        )


class WorkflowError(Exception):
    """An action that the object's current state does not allow (e.g. verify with unjudged steps)."""


# What a reader may write: the API, the review page and the model methods share these limits.
STEP_TEXT_MAX_LENGTH: Final = 5000
NOTE_MAX_LENGTH: Final = 2000


def check_text(text: str, *, limit: int, what: str) -> None:
    """Refuse text PostgreSQL cannot store (a NUL character) or longer than `limit`."""
    if "\x00" in text:
        raise WorkflowError("Null characters are not allowed.")
    if len(text) > limit:
        raise WorkflowError(
            f"{what} can be at most {limit:,} characters long; this one has {len(text):,}."
        )


class Role(models.TextChoices):
    RADIOLOGIST = "radiologist", "Radiologist"
    CURATOR = "curator", "Curator"
    RESEARCHER = "researcher", "Researcher"
    ADJUDICATOR = "adjudicator", "Adjudicator (senior reader)"


class TaskType(models.TextChoices):
    BINARY = "binary", "Binary"
    SINGLE = "single", "Single choice"
    MULTI = "multi", "Multiple choice"
    OPEN = "open", "Open multi-finding"
    TEMPORAL = "temporal", "Temporal comparison"
    ANOMALY = "anomaly", "Anomaly"


class Study(models.Model):
    """A patient examination. `patient_key` is a pseudonym we derive, never a DICOM PatientID."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    source = models.CharField(max_length=100)
    external_id = models.CharField(max_length=200, help_text="Pseudonymous study key from the source")
    patient_key = models.CharField(max_length=64, blank=True, db_index=True)
    study_date = models.DateField(null=True, blank=True)
    prior = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "studies"
        constraints = [
            models.UniqueConstraint(fields=["source", "external_id"], name="study_unique_key")
        ]

    def __str__(self) -> str:
        return f"{self.source}:{self.external_id}"


class Image(models.Model):
    """A content-addressed image file. Only technical header fields are kept: no identifiers."""

    class Kind(models.TextChoices):
        DICOM = "dicom", "DICOM"
        PNG = "png", "PNG"
        JPEG = "jpeg", "JPEG"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    sha256 = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    study = models.ForeignKey(Study, null=True, blank=True, on_delete=models.SET_NULL)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    bits_stored = models.PositiveSmallIntegerField(default=8)
    photometric = models.CharField(max_length=20, blank=True)
    modality = models.CharField(max_length=16, blank=True)
    view_position = models.CharField(max_length=16, blank=True)
    window_center = models.FloatField(null=True, blank=True)
    window_width = models.FloatField(null=True, blank=True)
    transfer_syntax = models.CharField(max_length=64, blank=True)
    size_bytes = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.kind} {self.width}x{self.height} {self.sha256[:12]}"

    @property
    def relative_path(self) -> str:
        ext = {"dicom": "dcm", "png": "png", "jpeg": "jpg"}[self.kind]
        return f"{self.sha256[:2]}/{self.sha256}.{ext}"

    @property
    def path(self):  # noqa: ANN201 - a pathlib.Path
        return settings.IMAGE_STORE / self.relative_path


class Report(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    study = models.ForeignKey(Study, null=True, blank=True, on_delete=models.CASCADE)
    text = models.TextField()
    findings = models.TextField(blank=True)
    impression = models.TextField(blank=True)

    def __str__(self) -> str:
        return self.text[:60]


class Case(models.Model):
    """One question about one or more images."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    source = models.CharField(max_length=100, db_index=True)
    external_id = models.CharField(max_length=200, blank=True)
    content_hash = models.CharField(max_length=64)
    dataset_name = models.CharField(max_length=100, blank=True)
    task_type = models.CharField(max_length=16, choices=TaskType.choices, db_index=True)
    question = models.TextField()
    options = models.JSONField(default=list, blank=True, help_text='[{"key": "A", "text": "..."}]')
    answer = models.JSONField(default=list, help_text="Option letters, or the answer text")
    answer_content = models.TextField(blank=True)
    split = models.CharField(max_length=16, blank=True)
    report = models.ForeignKey(
        Report, null=True, blank=True, on_delete=models.SET_NULL, related_name="cases"
    )
    prior_report = models.ForeignKey(
        Report, null=True, blank=True, on_delete=models.SET_NULL, related_name="prior_cases"
    )
    images = models.ManyToManyField(Image, through="CaseImage", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source", "external_id", "content_hash"], name="case_unique_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_task_type_display()}: {self.question[:60]}"

    @property
    def answer_letters(self) -> str:
        return ", ".join(self.answer)

    @property
    def question_lettered(self) -> str:
        """The question as shown and exported: unlettered options lettered as the answer is."""
        return lettered(self.question)


class CaseImage(models.Model):
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="case_images")
    image = models.ForeignKey(Image, on_delete=models.PROTECT)
    position = models.PositiveSmallIntegerField(default=0)
    label = models.CharField(max_length=40, blank=True, help_text="e.g. prior, current")

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["case", "position"], name="case_image_position")
        ]


class Chain(models.Model):
    class Origin(models.TextChoices):
        IMPORTED = "imported", "Imported reference"
        MINED_RULE = "mined_rule", "Mined by rules"
        MINED_LLM = "mined_llm", "Mined by an LLM"
        MODEL = "model", "Model run"
        RADIOLOGIST = "radiologist", "Written by a radiologist"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        IN_REVIEW = "in_review", "In review"
        VERIFIED = "verified", "Verified"
        REJECTED = "rejected", "Rejected"

    class Purpose(models.TextChoices):
        REFERENCE = "reference", "Reference (as mined, imported or generated)"
        READING = "reading", "One reader's private copy (double reading)"
        ADJUDICATED = "adjudicated", "Settled from two readings"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="chains")
    origin = models.CharField(max_length=16, choices=Origin.choices, db_index=True)
    purpose = models.CharField(
        max_length=12, choices=Purpose.choices, default=Purpose.REFERENCE, db_index=True
    )
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    version = models.PositiveIntegerField(default=1)
    derived_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="derived"
    )
    note = models.TextField(blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Chain {self.uuid} ({self.status})"

    def live_steps(self) -> models.QuerySet[Step]:
        return self.steps.filter(deleted=False).order_by("position")

    def bump(self, expected: int | None) -> None:
        """Advance the chain's version, refusing if `expected` is no longer current."""
        query = Chain.objects.filter(pk=self.pk)
        if expected is not None:
            query = query.filter(version=expected)
        if not query.update(version=F("version") + 1, updated_at=timezone.now()):
            self.refresh_from_db()
            raise StaleVersion(self, expected or 0)
        self.refresh_from_db(fields=["version", "updated_at"])

    def _decide(
        self, status: str, *, by: Any, expected: int | None, note: str = "", action: str
    ) -> None:
        before = {"status": self.status}
        self.bump(expected)
        Chain.objects.filter(pk=self.pk).update(
            status=status, decided_by=by, decided_at=timezone.now(), note=note or self.note
        )
        self.refresh_from_db()
        ReviewEvent.objects.create(
            chain=self, actor=by, action=action, before=before,
            after={"status": status, "note": note},
        )

    def verify(self, *, by: Any, expected: int | None = None, note: str = "") -> None:
        if expected is not None and expected != self.version:
            # Stale first: the reader must see the chain as it is now before anything else.
            self.refresh_from_db(fields=["version", "status", "updated_at"])
            if expected != self.version:
                raise StaleVersion(self, expected)
        unjudged = self.live_steps().filter(verdict=Step.Verdict.UNREVIEWED).count()
        if unjudged:
            raise WorkflowError(
                f"{unjudged} step{'s' if unjudged != 1 else ''} still without a verdict: "
                "mark every step before verifying"
            )
        if not self.live_steps().exists():
            raise WorkflowError("A chain with no steps cannot be verified")
        self._decide(self.Status.VERIFIED, by=by, expected=expected, note=note, action="verify")

    def reject(self, *, by: Any, expected: int | None = None, note: str = "") -> None:
        self._decide(self.Status.REJECTED, by=by, expected=expected, note=note, action="reject")


class Step(models.Model):
    class Verdict(models.TextChoices):
        UNREVIEWED = "unreviewed", "Unreviewed"
        CORRECT = "correct", "Correct"
        INCORRECT = "incorrect", "Incorrect"
        IRRELEVANT = "irrelevant", "Irrelevant"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    chain = models.ForeignKey(Chain, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveIntegerField()
    text = models.TextField()
    original_text = models.TextField(editable=False, help_text="As first produced; never changed")
    verdict = models.CharField(
        max_length=12, choices=Verdict.choices, default=Verdict.UNREVIEWED, db_index=True
    )
    finding = models.JSONField(null=True, blank=True, help_text='{"observation", "status"}')
    evidence = models.JSONField(
        null=True, blank=True, help_text='{"report": "current"|"prior", "start", "end", "text"}'
    )
    source_step = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="copies",
        help_text="The step this one copies (double reading, adjudication)",
    )
    note = models.TextField(blank=True)
    added_by_reader = models.BooleanField(default=False)
    deleted = models.BooleanField(default=False)
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position"]
        indexes = [models.Index(fields=["chain", "position"])]

    def __str__(self) -> str:
        return f"{self.position}: {self.text[:60]}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self.original_text:
            self.original_text = self.text
        super().save(*args, **kwargs)

    @property
    def rewritten(self) -> bool:
        return self.text != self.original_text

    def _apply(self, expected: int, *, by: Any, action: str, **changes: Any) -> None:
        """Compare-and-set on the version, logging the change as an event in the same statement.

        The UPDATE matches only the expected version and hands back the row as it was just
        before (`was`, a self-join on the snapshot the UPDATE matched), which the event's
        "before" is made of: right even when two writes race, with nothing read back. One
        statement is atomic by itself, so a change is never stored without its event, and it
        costs one round trip to the database instead of five (BEGIN, UPDATE, re-read, INSERT,
        COMMIT): this is what every verdict and edit runs. A change to what the step already
        holds ("correct" marked again) matches no row on purpose: nothing is stored or logged,
        and the version stays.
        """
        step, event = Step._meta, ReviewEvent._meta
        quote = connection.ops.quote_name
        fields = [step.get_field(name) for name in changes]
        now = timezone.now()
        setters = ", ".join(f"{quote(f.column)} = %s" for f in fields)
        differs = " OR ".join(f"was.{quote(f.column)} IS DISTINCT FROM %s" for f in fields)
        olds = ", ".join(f"was.{quote(f.column)} AS was_{i}" for i, f in enumerate(fields))
        before = ", ".join(f"'{f.name}', was_{i}" for i, f in enumerate(fields))
        columns = ", ".join(
            quote(event.get_field(name).column)
            for name in ("uuid", "chain", "step", "actor", "created_at", "action", "before", "after")
        )
        sql = (
            f"WITH changed AS ("
            f"UPDATE {quote(step.db_table)} AS step SET version = step.version + 1, "
            f"updated_at = %s, {setters} FROM {quote(step.db_table)} AS was "
            f"WHERE step.id = %s AND step.version = %s AND was.id = step.id AND ({differs}) "
            f"RETURNING step.version, step.position, step.chain_id, {olds}"
            f"), logged AS ("
            f"INSERT INTO {quote(event.db_table)} ({columns}) "
            f"SELECT %s, chain_id, %s, %s, %s, %s, jsonb_build_object({before}), "
            # "at" keeps the step's position at the time: history stays right after a reorder.
            f"%s::jsonb || jsonb_build_object('at', position) FROM changed"
            f") SELECT version, position FROM changed"
        )
        params = [
            step.get_field("updated_at").get_db_prep_save(now, connection),
            *(f.get_db_prep_save(changes[f.name], connection) for f in fields),
            self.pk,
            expected,
            *(f.get_db_prep_save(changes[f.name], connection) for f in fields),
            uuid.uuid4(),
            self.pk,
            getattr(by, "pk", None),
            event.get_field("created_at").get_db_prep_save(now, connection),
            action,
            json.dumps(changes),
        ]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        if row is None:
            # The current row for the 409; its chain never changes, so the cached one stays.
            self.refresh_from_db(fields=[f.attname for f in step.concrete_fields if not f.is_relation])
            if self.version == expected and all(
                getattr(self, name) == value for name, value in changes.items()
            ):
                return  # nothing to change: no new version, no event
            raise StaleVersion(self, expected)
        self.version, self.position, self.updated_at = row[0], row[1], now
        for name, value in changes.items():
            setattr(self, name, value)

    def mark(self, verdict: str, *, by: Any, expected: int) -> None:
        if verdict not in self.Verdict.values:
            raise WorkflowError(f"Unknown verdict {verdict!r}")
        self._apply(expected, by=by, action="verdict", verdict=verdict)

    def edit(self, text: str, *, by: Any, expected: int) -> None:
        text = " ".join(text.split())
        if not text:
            raise WorkflowError("A step cannot be empty: delete it instead")
        check_text(text, limit=STEP_TEXT_MAX_LENGTH, what="A step")
        self._apply(expected, by=by, action="edit", text=text)

    def annotate(self, note: str, *, by: Any, expected: int) -> None:
        check_text(note.strip(), limit=NOTE_MAX_LENGTH, what="A note")
        self._apply(expected, by=by, action="note", note=note.strip())

    def remove(self, *, by: Any, expected: int) -> None:
        self._apply(expected, by=by, action="delete", deleted=True)


class ReviewEvent(models.Model):
    """Append-only audit row. Also training data: before/after pairs of corrected steps."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    chain = models.ForeignKey(Chain, on_delete=models.CASCADE, related_name="events")
    step = models.ForeignKey(Step, null=True, blank=True, on_delete=models.CASCADE)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    action = models.CharField(max_length=20)
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor} {self.action}"


class Assignment(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        IN_PROGRESS = "in_progress", "In progress"
        DONE = "done", "Done"
        SKIPPED = "skipped", "Skipped"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    chain = models.ForeignKey(Chain, on_delete=models.CASCADE, related_name="assignments")
    reader = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments"
    )
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(
        max_length=12, choices=Status.choices, default=Status.OPEN, db_index=True
    )
    assigned_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    seconds_spent = models.FloatField(default=0, help_text="Active time on the case page")

    class Meta:
        ordering = ["assigned_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["chain", "reader"], name="assignment_unique_reader")
        ]
        indexes = [models.Index(fields=["reader", "status", "assigned_at"])]

    def __str__(self) -> str:
        return f"{self.reader} → {self.chain_id} ({self.status})"


class ImportRun(models.Model):
    """One import of a case file: its counts and every problem, for the curator page."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    source = models.CharField(max_length=100)
    filename = models.CharField(max_length=255)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    imported = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    warnings = models.PositiveIntegerField(default=0)
    problems = models.JSONField(default=list, blank=True)
    report_path = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.filename}: {self.imported} imported, {self.rejected} rejected"


class Job(models.Model):
    """Background work (mining, exports) with progress the UI polls, and a readable error."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=20, db_index=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    progress = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    message = models.CharField(max_length=500, blank=True)
    params = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    task_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.status} {self.progress}/{self.total}"

    @property
    def percent(self) -> int:
        return int(100 * self.progress / self.total) if self.total else 0


class ExportSnapshot(models.Model):
    """An immutable, reproducible dataset version: filters, counts, file hashes, code revision."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    number = models.PositiveIntegerField(unique=True, help_text="v1, v2, ... in creation order")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    options = models.JSONField(default=dict, help_text="formats and filters, as given")
    counts = models.JSONField(default=dict, blank=True)
    files = models.JSONField(default=list, blank=True, help_text='[{"path", "sha256", "bytes"}]')
    manifest = models.JSONField(default=dict, blank=True, help_text="chain uuid -> content sha256")
    code_revision = models.CharField(max_length=64, blank=True)
    path = models.CharField(max_length=500, blank=True)
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-number"]

    def __str__(self) -> str:
        return f"snapshot v{self.number} ({self.status})"


class ModelRun(models.Model):
    """A model and checkpoint with its generation settings, whose outputs come back for review."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200, unique=True)
    checkpoint = models.CharField(max_length=500, blank=True)
    config = models.JSONField(default=dict, blank=True, help_text="Generation settings")
    snapshot = models.ForeignKey(ExportSnapshot, null=True, blank=True, on_delete=models.SET_NULL)
    snapshot_ref = models.CharField(
        max_length=100, blank=True, help_text="Snapshot id as the run recorded it"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Prediction(models.Model):
    """One model output for one case, parsed into an answer and a chain, with its scores."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    run = models.ForeignKey(ModelRun, on_delete=models.CASCADE, related_name="predictions")
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="predictions")
    chain = models.OneToOneField(
        Chain, null=True, blank=True, on_delete=models.SET_NULL, related_name="prediction"
    )
    raw_text = models.TextField(blank=True)
    answer = models.JSONField(default=list, blank=True)
    correct = models.BooleanField(null=True)
    latency_ms = models.FloatField(null=True, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    accuracy = models.FloatField(null=True, blank=True)
    factuality = models.FloatField(null=True, blank=True)
    completeness = models.FloatField(null=True, blank=True)
    effectiveness = models.FloatField(null=True, blank=True)
    radrscore = models.FloatField(null=True, blank=True, db_index=True)
    details = models.JSONField(default=dict, blank=True, help_text="matched/missed/contradicted")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "case"], name="prediction_unique_case")
        ]

    def __str__(self) -> str:
        return f"{self.run} on {self.case_id}"
