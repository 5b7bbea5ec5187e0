"""REST API for scripts and model pipelines (token auth). Thin over services.py."""

from __future__ import annotations

from contextlib import nullcontext
from datetime import date
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, QuerySet, Value
from django.db.models.functions import Coalesce, TruncDate
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action, api_view, permission_classes
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from annotation import exporting, services
from annotation.models import (
    Assignment,
    Case,
    Chain,
    ExportSnapshot,
    ModelRun,
    Role,
    StaleVersion,
    Step,
    TaskType,
    WorkflowError,
)
from annotation.serializers import (
    AssignmentSerializer,
    CaseSerializer,
    ChainDecisionSerializer,
    ChainSerializer,
    SnapshotCreateSerializer,
    SnapshotSerializer,
    StepPatchSerializer,
    StepSerializer,
    for_chain_serializer,
    quoted,
)


def _conflict(exc: StaleVersion, current: Any) -> Response:
    return Response(
        {"detail": str(exc), "current": current}, status=status.HTTP_409_CONFLICT
    )


class Pagination(LimitOffsetPagination):
    """DRF's limit/offset paging with its numbers checked: DRF passes any limit on to the query
    (one past bigint's range was a 500) and quietly ignores one that is not a number."""

    max_limit = 1000

    def get_limit(self, request: Request) -> int:
        return self._number(request, self.limit_query_param, self.default_limit, 1, self.max_limit)

    def get_offset(self, request: Request) -> int:
        # No upper bound needed: an offset past the last row answers an empty page unqueried.
        return self._number(request, self.offset_query_param, 0, 0, None)

    @staticmethod
    def _number(request: Request, name: str, default: int, low: int, high: int | None) -> int:
        raw = request.query_params.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            span = f"from {low} to {high}" if high is not None else f"{low} or more"
            raise ValidationError({name: f"must be a whole number {span}, not {quoted(raw)}"})
        return value


class CaseViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = CaseSerializer
    lookup_field = "uuid"
    pagination_class = Pagination

    def get_queryset(self) -> QuerySet[Case]:
        visible = services.visible_chains(self.request.user).values("case_id")
        return (
            Case.objects.filter(pk__in=visible)
            .select_related("report", "prior_report")
            .prefetch_related("case_images__image")
            .order_by("created_at", "id")
        )


class ChainViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ChainSerializer
    lookup_field = "uuid"
    pagination_class = Pagination

    # Filters on a field with fixed values: parameter -> (lookup, the values it takes).
    _CHOICES: dict[str, tuple[str, list[str]]] = {
        "status": ("status", Chain.Status.values),
        "origin": ("origin", Chain.Origin.values),
        "task": ("case__task_type", TaskType.values),
        "purpose": ("purpose", Chain.Purpose.values),
    }

    def get_queryset(self) -> QuerySet[Chain]:
        chains = services.visible_chains(self.request.user)
        params = self.request.query_params
        for name, (lookup, allowed) in self._CHOICES.items():
            if params.get(name):
                if params[name] not in allowed:
                    # Not an empty page: a misspelt filter would read as "no such chains".
                    raise ValidationError(
                        {name: f"unknown {name} {quoted(params[name])}: choose from {', '.join(allowed)}"}
                    )
                chains = chains.filter(**{lookup: params[name]})
        if params.get("source"):
            if "\x00" in params["source"]:  # PostgreSQL text cannot hold it: a 500 if queried
                raise ValidationError({"source": "contains a NUL character"})
            chains = chains.filter(case__source=params["source"])
        chains = self._script_filters(chains, params)
        return for_chain_serializer(chains).order_by("created_at", "id")

    _FILTERS = ("status", "origin", "task", "source", "purpose", "case", "since", "exportable")

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """A reader opening one of their chains (the review page's hot path) takes one written-out
        query (services.assigned_chain); everyone else, and any request with list filters (which
        narrow the detail view too), goes through get_object as before."""
        params = request.query_params
        if services.roles_of(request.user) != {Role.RADIOLOGIST} or any(params.get(n) for n in self._FILTERS):
            return super().retrieve(request, *args, **kwargs)
        chain = services.assigned_chain(request.user, _lookup_uuid(Chain, kwargs[self.lookup_field]))
        if chain is None:
            raise Http404(f"No {Chain._meta.object_name} matches the given query.")
        self.check_object_permissions(request, chain)
        return Response(self.get_serializer(chain).data)

    def _script_filters(self, chains: QuerySet[Chain], params: Any) -> QuerySet[Chain]:
        """For curators' scripts: ?case=, ?since=DATE (decided or changed on or after),
        ?exportable=1 (what an export with the other filters would take); ?purpose= is one of
        the choice filters above."""
        if params.get("case"):
            chains = chains.filter(case__uuid=_uuid(params["case"], "case"))
        if params.get("since"):
            try:
                since = date.fromisoformat(params["since"])
            except ValueError:
                raise ValidationError({"since": "a date like 2025-01-31"}) from None
            chains = chains.annotate(_day=TruncDate(Coalesce("decided_at", "updated_at"))).filter(_day__gte=since)
        if params.get("exportable") in ("1", "true", "yes"):
            exportable = exporting.select_chains(exporting.ExportOptions(status=()))
            chains = chains.filter(pk__in=exportable.values("pk"))
        return chains

    def _decide(self, request: Request, uuid: str, verb: str) -> Response:
        chain = self.get_object()
        if not services.can_review_chain(request.user, chain):
            raise PermissionDenied("Only a radiologist assigned to this open chain can decide it")
        body = ChainDecisionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        expected = body.validated_data.get("version")
        if expected is not None and expected != chain.version:
            # A stale request is answered as stale before anything about the chain's state
            # (Chain.verify checks the verdicts before its version: "steps still without a
            # verdict" would describe a chain the client has not seen).
            return _conflict(StaleVersion(chain, expected), ChainSerializer(self._reload(chain)).data)
        try:
            services.finish_chain(
                chain, request.user, verb, expected=expected, note=body.validated_data.get("note", ""),
            )
        except StaleVersion as exc:
            return _conflict(exc, ChainSerializer(self._reload(chain)).data)
        except WorkflowError as exc:
            raise ValidationError({"detail": str(exc)}) from None
        return Response(ChainSerializer(self._reload(chain)).data)

    def _reload(self, chain: Chain) -> Chain:
        return for_chain_serializer(Chain.objects.filter(pk=chain.pk)).get()

    @extend_schema(request=ChainDecisionSerializer, responses={200: ChainSerializer})
    @action(detail=True, methods=["post"])
    def verify(self, request: Request, uuid: str) -> Response:
        return self._decide(request, uuid, "verify")

    @extend_schema(request=ChainDecisionSerializer, responses={200: ChainSerializer})
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, uuid: str) -> Response:
        return self._decide(request, uuid, "reject")


class StepViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = StepSerializer
    lookup_field = "uuid"

    def get_queryset(self) -> QuerySet[Step]:
        user = self.request.user
        # Of the chain, only what the permission check and StepSerializer read.
        steps = (
            Step.objects.filter(deleted=False)
            .select_related("chain")
            .only(*(f.name for f in Step._meta.concrete_fields), "chain__uuid", "chain__status")
        )
        if services.roles_of(user) == {Role.RADIOLOGIST}:
            # The hot path (a reader at work): their own chains, by a join on the assignment
            # (one per chain and reader: no duplicates), which also says they may write.
            return steps.filter(chain__assignments__reader=user).annotate(assigned=Value(True))
        visible = services.visible_chains(user).values("pk")
        assigned = Assignment.objects.filter(chain=OuterRef("chain_id"), reader=user)
        return steps.filter(chain__in=visible).annotate(assigned=Exists(assigned))

    def _step_to_change(self) -> Step:
        """The step a PATCH names, as get_object finds it; for a reader (the hot path) in one
        written-out query on their assignments (services.assigned_step)."""
        if services.roles_of(self.request.user) != {Role.RADIOLOGIST}:
            return self.get_object()
        step = services.assigned_step(self.request.user, _lookup_uuid(Step, self.kwargs[self.lookup_field]))
        if step is None:
            raise Http404(f"No {Step._meta.object_name} matches the given query.")
        self.check_object_permissions(self.request, step)
        return step

    @extend_schema(request=StepPatchSerializer, responses={200: StepSerializer, 409: StepSerializer})
    def partial_update(self, request: Request, uuid: str) -> Response:
        step = self._step_to_change()
        if not services.can_review_chain(request.user, step.chain, assigned=step.assigned):
            raise PermissionDenied("Only a radiologist assigned to this open chain can change it")
        body = StepPatchSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        version = data["version"]
        changes = len({"text", "verdict", "note"} & data.keys())
        try:
            # One request, one version check: the changes apply together or not at all. A single
            # change is one statement (Step._apply), atomic without a transaction around it.
            with transaction.atomic() if changes > 1 else nullcontext():
                if "text" in data:
                    step.edit(data["text"], by=request.user, expected=version)
                    version = step.version
                if "verdict" in data:
                    step.mark(data["verdict"], by=request.user, expected=version)
                    version = step.version
                if "note" in data:
                    step.annotate(data["note"], by=request.user, expected=version)
        except StaleVersion as exc:
            if version != data["version"]:  # a first change went through, then rolled back
                step.refresh_from_db(fields=["text", "verdict", "note", "version", "position", "updated_at"])
            return _conflict(exc, StepSerializer(step).data)  # as the refused write found it
        except WorkflowError as exc:
            raise ValidationError({"detail": str(exc)}) from None
        return Response(StepSerializer(step).data)


class IsCuratorForWrites(permissions.BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return request.method in permissions.SAFE_METHODS or services.is_curator(request.user)


class AssignmentViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    serializer_class = AssignmentSerializer
    lookup_field = "uuid"
    permission_classes = [permissions.IsAuthenticated, IsCuratorForWrites]
    pagination_class = Pagination

    def get_queryset(self) -> QuerySet[Assignment]:
        assignments = Assignment.objects.select_related("chain", "reader").order_by("assigned_at", "id")
        if services.is_curator(self.request.user):
            return assignments
        return assignments.filter(reader=self.request.user)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        chain, reader = body.validated_data["chain"], body.validated_data["reader"]
        try:
            assigned = services.assign_chains([chain], reader, by=request.user)
        except WorkflowError as exc:
            raise ValidationError({"reader": str(exc)}) from None
        if assigned.finished:
            raise ValidationError({"chain": "This chain is already verified or rejected."})
        if assigned.taken:
            raise ValidationError({"chain": "Another reader has this chain open or in progress."})
        assignment = Assignment.objects.get(chain=chain, reader=reader)
        return Response(self.get_serializer(assignment).data, status=status.HTTP_201_CREATED)


def _lookup_uuid(model: type[Chain] | type[Step], value: Any) -> Any:
    """`value` from the URL as the model's uuid field reads it; 404 (as get_object answers a
    malformed key) when it is not one."""
    try:
        return model._meta.get_field("uuid").to_python(value)
    except DjangoValidationError:
        raise Http404 from None


def _uuid(value: str, name: str) -> str:
    import uuid

    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValidationError({name: f"{value!r} is not a UUID"}) from None


class CanExport(permissions.BasePermission):
    """Curators create snapshots; curators and researchers list and fetch them."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return services.is_curator(request.user) or services.is_researcher(request.user)
        return services.is_curator(request.user)


class SnapshotViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """Export snapshots: create one (a background job), follow it, fetch its files."""

    serializer_class = SnapshotSerializer
    lookup_field = "uuid"
    permission_classes = [permissions.IsAuthenticated, CanExport]
    pagination_class = Pagination
    queryset = ExportSnapshot.objects.select_related("created_by", "job").order_by("-number")

    @extend_schema(request=SnapshotCreateSerializer, responses={202: SnapshotSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = SnapshotCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = {k: tuple(v) if isinstance(v, list) else v for k, v in body.validated_data.items()}
        if data.get("since"):
            data["since"] = data["since"].isoformat()
        try:
            options = exporting.ExportOptions(**{k: v for k, v in data.items() if v is not None or k == "min_agreement"})
            snapshot = exporting.start_export(options, request.user)
        except exporting.ExportError as exc:
            raise ValidationError({"detail": str(exc)}) from None
        return Response(self.get_serializer(snapshot).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={(200, "application/zip"): bytes})
    @action(detail=True, methods=["get"])
    def download(self, request: Request, uuid: str) -> Any:
        from django.http import Http404, StreamingHttpResponse

        snapshot = self.get_object()
        if snapshot.status != ExportSnapshot.Status.DONE:
            raise Http404("This snapshot is not finished")
        response = StreamingHttpResponse(exporting.zip_stream(snapshot), content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="snapshot-v{snapshot.number}.zip"'
        return response


@extend_schema(responses={(200, "application/octet-stream"): bytes})
@api_view(["GET"])
@permission_classes([permissions.IsAuthenticated, CanExport])
def snapshot_file(request: Request, uuid: Any, relative: str) -> Any:
    """GET /snapshots/{uuid}/files/{path}: one file the snapshot's manifest lists."""
    from django.http import FileResponse, Http404
    from django.shortcuts import get_object_or_404

    found = exporting.snapshot_file(get_object_or_404(ExportSnapshot, uuid=uuid), relative)
    if found is None:
        raise Http404("No such file in this snapshot")
    return FileResponse(found.open("rb"), filename=found.name)


# --- model runs and their predictions (inference upload) -------------------------------------


class CanReadRuns(permissions.BasePermission):
    """Curators and researchers list runs and upload a run's predictions; radiologists do not."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return services.is_curator(request.user) or services.is_researcher(request.user)


class RunSerializer(serializers.ModelSerializer):
    snapshot = serializers.UUIDField(source="snapshot.uuid", read_only=True, allow_null=True)
    predictions = serializers.IntegerField(source="prediction_count", read_only=True)

    class Meta:
        model = ModelRun
        fields = ["uuid", "name", "checkpoint", "config", "snapshot", "snapshot_ref", "created_at", "predictions"]
        read_only_fields = fields


class PredictionUploadSerializer(serializers.Serializer):
    """POST /runs/import/ (multipart): a predictions file and the run it belongs to."""

    file = serializers.FileField()
    run = serializers.CharField(max_length=200)
    checkpoint = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    snapshot = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    source = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")


PROBLEMS_LISTED = 500  # rejected rows an upload's answer lists; a bad file could have millions


class RunViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = RunSerializer
    lookup_field = "uuid"
    permission_classes = [permissions.IsAuthenticated, CanReadRuns]
    pagination_class = Pagination

    def get_queryset(self) -> QuerySet[ModelRun]:
        return ModelRun.objects.select_related("snapshot").annotate(
            prediction_count=Count("predictions")
        ).order_by("name")

    @extend_schema(request={"multipart/form-data": PredictionUploadSerializer})
    @action(detail=False, methods=["post"], url_path="import", parser_classes=[MultiPartParser])
    def upload(self, request: Request) -> Response:
        """Import predictions (`manage.py import_predictions` over HTTP): 201 when any were
        created, 200 when none were; rejected rows are listed with line, field and reason (the
        first PROBLEMS_LISTED; `rejected` counts them all). `run` is null when no row could be
        imported into a run that did not exist yet."""
        import tempfile
        from pathlib import Path

        from annotation import predictions

        body = PredictionUploadSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        with tempfile.TemporaryDirectory(prefix="predictions-") as folder:
            path = Path(folder) / "predictions.jsonl"
            with path.open("wb") as out:
                for chunk in data["file"].chunks():
                    out.write(chunk)
            try:
                result = predictions.import_predictions(
                    path, run=data["run"], checkpoint=data["checkpoint"],
                    snapshot=data["snapshot"] or None, source=data["source"] or None,
                    user=request.user, display_name=Path(data["file"].name).name,
                )
            except predictions.RunError as exc:
                raise ValidationError({"run": str(exc)}) from None
        result.show_report_path = False  # a file on the server: the answer lists the problems
        summary = result.summary()
        if result.rejected > PROBLEMS_LISTED:
            summary += f" (the first {PROBLEMS_LISTED} problems are listed)"
        payload = {
            "run": str(result.run.uuid) if result.run else None,
            "created": result.created,
            "duplicates": result.duplicates,
            "rejected": result.rejected,
            "problems": [
                {"line": p.line, "field": p.field, "reason": p.reason}
                for p in result.problems[:PROBLEMS_LISTED]
            ],
            "summary": summary,
        }
        return Response(payload, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)
