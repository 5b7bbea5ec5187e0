from __future__ import annotations

import copy
from typing import Any, ClassVar

from django.db.models import Prefetch, QuerySet
from rest_framework import serializers
from rest_framework.fields import Field

from annotation.models import (
    NOTE_MAX_LENGTH,
    STEP_TEXT_MAX_LENGTH,
    Assignment,
    Case,
    CaseImage,
    Chain,
    ExportSnapshot,
    Step,
)


class BuiltOnceMixin:
    """Introspect the model for a ModelSerializer's fields once per class, not per instance.

    ModelSerializer rebuilds its fields from the model on every instantiation, which costs more
    than serializing a step; the API's hot paths make a serializer per request. Each instance
    still gets its own copies (DRF binds fields to their parent), made the way DRF copies the
    declared fields of a plain Serializer.
    """

    _built: ClassVar[dict[type, dict[str, Field]]] = {}

    def get_fields(self) -> dict[str, Field]:
        built = self._built.get(type(self))
        if built is None:
            built = self._built[type(self)] = super().get_fields()  # type: ignore[misc]
        return copy.deepcopy(built)


def live_steps_prefetch() -> Prefetch:
    """The steps ChainSerializer shows, fetched with the chains: live ones, in order."""
    return Prefetch(
        "steps", queryset=Step.objects.filter(deleted=False).order_by("position"), to_attr="live_step_list"
    )


def for_chain_serializer(chains: QuerySet[Chain]) -> QuerySet[Chain]:
    """`chains`, fetching with them what ChainSerializer shows and nothing more: the keys of
    the related case, decider and source chain (not their whole rows), and the live steps."""
    return (
        chains.select_related("case", "decided_by", "derived_from")
        .only(
            *(f.name for f in Chain._meta.concrete_fields),
            "case__uuid", "decided_by__username", "derived_from__uuid",
        )
        .prefetch_related(live_steps_prefetch())
    )


class StepSerializer(BuiltOnceMixin, serializers.ModelSerializer):
    chain = serializers.UUIDField(source="chain.uuid", read_only=True)

    class Meta:
        model = Step
        fields = [
            "uuid", "chain", "position", "text", "original_text", "verdict", "finding", "note",
            "added_by_reader", "version", "updated_at",
        ]
        read_only_fields = fields

    def to_representation(self, step: Step) -> dict[str, Any]:
        """The fields above, as DRF would render them, written out: every chain the API shows
        and every PATCH answer renders steps, and DRF's field by field rendering (with the
        per-instance copies of the fields it needs) was the largest cost of a GET after the
        queries. tests/annotation/test_api.py checks this against DRF's own rendering."""
        return {
            "uuid": str(step.uuid),
            "chain": str(step.chain.uuid),
            "position": step.position,
            "text": step.text,
            "original_text": step.original_text,
            "verdict": step.verdict,
            "finding": step.finding,
            "note": step.note,
            "added_by_reader": step.added_by_reader,
            "version": step.version,
            "updated_at": _DATETIME.to_representation(step.updated_at),
        }


_DATETIME = serializers.DateTimeField()  # renders as DRF's own fields do (ISO 8601, "Z" for UTC)


class StepPatchSerializer(serializers.Serializer):
    """PATCH /steps/{uuid}/: the version you read, and what to change."""

    version = serializers.IntegerField(min_value=1)
    verdict = serializers.ChoiceField(choices=Step.Verdict.choices, required=False)
    text = serializers.CharField(required=False, allow_blank=False, max_length=STEP_TEXT_MAX_LENGTH)
    note = serializers.CharField(required=False, allow_blank=True, max_length=NOTE_MAX_LENGTH)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not {"verdict", "text", "note"} & attrs.keys():
            raise serializers.ValidationError("Give at least one of verdict, text, note")
        return attrs


class CaseImageSerializer(serializers.ModelSerializer):
    uuid = serializers.UUIDField(source="image.uuid")
    kind = serializers.CharField(source="image.kind")
    width = serializers.IntegerField(source="image.width")
    height = serializers.IntegerField(source="image.height")
    sha256 = serializers.CharField(source="image.sha256")

    class Meta:
        model = CaseImage
        fields = ["uuid", "position", "label", "kind", "width", "height", "sha256"]


class CaseSerializer(serializers.ModelSerializer):
    images = CaseImageSerializer(source="case_images", many=True, read_only=True)
    report = serializers.CharField(source="report.text", default="", read_only=True)
    prior_report = serializers.CharField(source="prior_report.text", default="", read_only=True)

    class Meta:
        model = Case
        fields = [
            "uuid", "source", "external_id", "dataset_name", "task_type", "question", "options",
            "answer", "answer_content", "split", "report", "prior_report", "images", "created_at",
        ]
        read_only_fields = fields


class ChainSerializer(BuiltOnceMixin, serializers.ModelSerializer):
    """A chain with its live steps: give it chains fetched through `for_chain_serializer`."""

    case = serializers.UUIDField(source="case.uuid", read_only=True)
    steps = StepSerializer(many=True, read_only=True, source="live_step_list")
    decided_by = serializers.CharField(source="decided_by.username", default=None, read_only=True)
    derived_from = serializers.UUIDField(source="derived_from.uuid", default=None, read_only=True)

    class Meta:
        model = Chain
        fields = [
            "uuid", "case", "origin", "purpose", "derived_from", "status", "version", "note",
            "decided_by", "decided_at", "created_at", "updated_at", "steps",
        ]
        read_only_fields = fields


class ChainDecisionSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, required=False)
    note = serializers.CharField(required=False, allow_blank=True, max_length=NOTE_MAX_LENGTH)


class AssignmentSerializer(serializers.ModelSerializer):
    chain = serializers.SlugRelatedField(slug_field="uuid", queryset=Chain.objects.all())
    reader = serializers.SlugRelatedField(
        slug_field="username", queryset=Assignment._meta.get_field("reader").related_model.objects.all()
    )

    class Meta:
        model = Assignment
        fields = ["uuid", "chain", "reader", "status", "assigned_at", "started_at", "completed_at", "seconds_spent"]
        read_only_fields = ["uuid", "status", "assigned_at", "started_at", "completed_at", "seconds_spent"]


class SnapshotSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", default=None, read_only=True)
    job = serializers.SerializerMethodField()
    files = serializers.SerializerMethodField()

    class Meta:
        model = ExportSnapshot
        fields = [
            "uuid", "number", "status", "created_by", "created_at", "options", "counts",
            "code_revision", "error", "job", "files",
        ]
        read_only_fields = fields

    def get_job(self, snapshot: ExportSnapshot) -> dict[str, Any] | None:
        job = snapshot.job
        if job is None:
            return None
        return {"status": job.status, "progress": job.progress, "total": job.total, "message": job.message}

    def get_files(self, snapshot: ExportSnapshot) -> list[dict[str, Any]]:
        """Each file with the URL that fetches it (images too: the manifest lists them all)."""
        request = self.context.get("request")
        files = []
        for entry in snapshot.files:
            url = f"/api/v1/snapshots/{snapshot.uuid}/files/{entry['path']}"
            files.append({**entry, "url": request.build_absolute_uri(url) if request else url})
        return files


class SnapshotCreateSerializer(serializers.Serializer):
    """POST /snapshots/: the same options as `manage.py export` (lists, or comma-separated text)."""

    formats = serializers.ListField(child=serializers.CharField(), required=False)
    status = serializers.ListField(child=serializers.CharField(), required=False)
    tasks = serializers.ListField(child=serializers.CharField(), required=False)
    sources = serializers.ListField(child=serializers.CharField(), required=False)
    origins = serializers.ListField(child=serializers.CharField(), required=False)
    since = serializers.DateField(required=False, allow_null=True)
    min_agreement = serializers.FloatField(required=False, allow_null=True, min_value=-1, max_value=1)
    image_size = serializers.IntegerField(required=False, min_value=16, max_value=4096)
    seed = serializers.CharField(required=False, max_length=100)
