from __future__ import annotations

import copy
from typing import Any, ClassVar

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
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

VERSION_MAX = 2**31 - 1  # the largest version the integer column holds


def _kind(value: Any) -> str:
    """What a JSON value is, in JSON's words, for an error message."""
    if value is None:
        return "null"
    return {bool: "true/false", int: "a number", float: "a number", dict: "an object", list: "a list"}.get(
        type(value), type(value).__name__
    )


def quoted(value: str, limit: int = 60) -> str:
    """`value` quoted for an error message, cut to `limit` characters (a bad value is pointed
    at, not copied back whole)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


class TextField(serializers.CharField):
    """A CharField that takes only text: DRF's turns a number into text ("note": 5 became "5")."""

    default_error_messages = {"not_text": "Must be text, not {kind}."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("not_text", kind=_kind(data))
        return super().to_internal_value(data)


class StepPatchSerializer(serializers.Serializer):
    """PATCH /steps/{uuid}/: the version you read, and what to change."""

    version = serializers.IntegerField(min_value=1, max_value=VERSION_MAX)
    verdict = serializers.ChoiceField(choices=Step.Verdict.choices, required=False)
    text = TextField(required=False, allow_blank=False, max_length=STEP_TEXT_MAX_LENGTH)
    note = TextField(required=False, allow_blank=True, max_length=NOTE_MAX_LENGTH)

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
    version = serializers.IntegerField(min_value=1, max_value=VERSION_MAX, required=False)
    note = TextField(required=False, allow_blank=True, max_length=NOTE_MAX_LENGTH)


class _KeyField(serializers.SlugRelatedField):
    """A related object named by one text key (a chain's uuid, a reader's username), with errors
    that say which: DRF's quote the lookup ("Object with username={'x': 1} does not exist."),
    and pass anything on to the query (a NUL character in a username was a 500)."""

    what = ""  # "a chain's uuid", "a username"
    noun = ""  # "chain", "user"

    default_error_messages = {
        "not_text": "Must be {what} (text), not {kind}.",
        "nul": "Must be {what}: this one contains a NUL character.",
        "does_not_exist": "No {noun} has the {slug_name} {value}.",
        "invalid": "Not {what}: {value}.",
    }

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            self.fail("not_text", what=self.what, kind=_kind(data))
        if "\x00" in data:
            self.fail("nul", what=self.what)
        try:
            return self.get_queryset().get(**{self.slug_field: data})
        except ObjectDoesNotExist:
            self.fail("does_not_exist", noun=self.noun, slug_name=self.slug_field, value=quoted(data))
        except (TypeError, ValueError, DjangoValidationError):  # "x" as a uuid
            self.fail("invalid", what=self.what, value=quoted(data))


class ChainKeyField(_KeyField):
    what, noun = "a chain's uuid", "chain"


class ReaderField(_KeyField):
    what, noun = "a username", "user"


class AssignmentSerializer(serializers.ModelSerializer):
    chain = ChainKeyField(slug_field="uuid", queryset=Chain.objects.all())
    reader = ReaderField(
        slug_field="username", queryset=Assignment._meta.get_field("reader").related_model.objects.all()
    )

    class Meta:
        model = Assignment
        fields = ["uuid", "chain", "reader", "status", "assigned_at", "started_at", "completed_at", "seconds_spent"]
        read_only_fields = ["uuid", "status", "assigned_at", "started_at", "completed_at", "seconds_spent"]
        # The unique (chain, reader) pair is checked in validate(), in words about the chain:
        # DRF's own check says "The fields chain, reader must make a unique set."
        validators: ClassVar[list[Any]] = []

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        chain, reader = attrs["chain"], attrs["reader"]
        if Assignment.objects.filter(chain=chain, reader=reader).exists():
            raise serializers.ValidationError(
                {"chain": f"This chain is already assigned to {reader.get_username()}."}
            )
        return attrs


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


class NamesField(serializers.ListField):
    """A list of names, or comma-separated text as `manage.py export` takes it: ["sft", "prm"],
    "sft,prm" and (from a form) ["sft,prm"] are the same."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(child=TextField(), **kwargs)

    def to_internal_value(self, data: Any) -> list[str]:
        if isinstance(data, str):
            data = [data]
        if isinstance(data, list):
            names: list[Any] = []
            for item in data:
                if isinstance(item, str):
                    names += [part.strip() for part in item.split(",") if part.strip()]
                else:
                    names.append(item)  # for the child field to refuse
            data = names
        return super().to_internal_value(data)


class SnapshotCreateSerializer(serializers.Serializer):
    """POST /snapshots/: the same options as `manage.py export` (lists, or comma-separated text)."""

    formats = NamesField(required=False)
    status = NamesField(required=False)
    tasks = NamesField(required=False)
    sources = NamesField(required=False)
    origins = NamesField(required=False)
    since = serializers.DateField(required=False, allow_null=True)
    min_agreement = serializers.FloatField(required=False, allow_null=True, min_value=-1, max_value=1)
    image_size = serializers.IntegerField(required=False, min_value=16, max_value=4096)
    seed = TextField(required=False, max_length=100)
