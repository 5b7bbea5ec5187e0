"""REST API for scripts and model pipelines (token auth). Thin over services.py."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Prefetch, QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from annotation import services
from annotation.models import Assignment, Case, Chain, StaleVersion, Step, WorkflowError
from annotation.serializers import (
    AssignmentSerializer,
    CaseSerializer,
    ChainDecisionSerializer,
    ChainSerializer,
    StepPatchSerializer,
    StepSerializer,
)


def _conflict(exc: StaleVersion, current: Any) -> Response:
    return Response(
        {"detail": str(exc), "current": current}, status=status.HTTP_409_CONFLICT
    )


class CaseViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = CaseSerializer
    lookup_field = "uuid"

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

    def get_queryset(self) -> QuerySet[Chain]:
        chains = services.visible_chains(self.request.user).select_related("case", "decided_by")
        params = self.request.query_params
        for name, lookup in (("status", "status"), ("origin", "origin"), ("task", "case__task_type"), ("source", "case__source")):
            if params.get(name):
                chains = chains.filter(**{lookup: params[name]})
        return chains.prefetch_related(
            Prefetch("steps", queryset=Step.objects.order_by("position"))
        ).order_by("created_at", "id")

    def _decide(self, request: Request, uuid: str, verb: str) -> Response:
        chain = self.get_object()
        if not services.can_review_chain(request.user, chain):
            raise PermissionDenied("Only a radiologist assigned to this open chain can decide it")
        body = ChainDecisionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            services.finish_chain(
                chain, request.user, verb, expected=body.validated_data.get("version"),
                note=body.validated_data.get("note", ""),
            )
        except StaleVersion as exc:
            chain.refresh_from_db()
            return _conflict(exc, ChainSerializer(chain).data)
        except WorkflowError as exc:
            raise ValidationError({"detail": str(exc)}) from None
        chain.refresh_from_db()
        return Response(ChainSerializer(chain).data)

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
        visible = services.visible_chains(self.request.user).values("pk")
        return Step.objects.filter(chain__in=visible, deleted=False).select_related("chain")

    @extend_schema(request=StepPatchSerializer, responses={200: StepSerializer, 409: StepSerializer})
    def partial_update(self, request: Request, uuid: str) -> Response:
        step = self.get_object()
        if not services.can_review_chain(request.user, step.chain):
            raise PermissionDenied("Only a radiologist assigned to this open chain can change it")
        body = StepPatchSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        version = data["version"]
        try:
            # One request, one version check: the changes apply together or not at all.
            with transaction.atomic():
                if "text" in data:
                    step.edit(data["text"], by=request.user, expected=version)
                    version = step.version
                if "verdict" in data:
                    step.mark(data["verdict"], by=request.user, expected=version)
                    version = step.version
                if "note" in data:
                    step.annotate(data["note"], by=request.user, expected=version)
        except StaleVersion as exc:
            step.refresh_from_db()
            return _conflict(exc, StepSerializer(step).data)
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
            services.assign_chains([chain], reader, by=request.user)
        except WorkflowError as exc:
            raise ValidationError({"reader": str(exc)}) from None
        assignment = Assignment.objects.get(chain=chain, reader=reader)
        return Response(self.get_serializer(assignment).data, status=status.HTTP_201_CREATED)



