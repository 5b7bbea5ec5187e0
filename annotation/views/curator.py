"""Curator screens: filter and assign chains, import case files; the researchers' verified list."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from annotation import dashboard as figures
from annotation import importing, reading, services
from annotation.models import Chain, ImportRun, Role, TaskType, WorkflowError

PAGE = 50


def _require_curator(request: HttpRequest) -> None:
    if not services.is_curator(request.user):
        raise PermissionDenied("Curators only")


class ChainFilter(forms.Form):
    status = forms.ChoiceField(choices=[("", "Any status"), *Chain.Status.choices], required=False)
    task = forms.ChoiceField(choices=[("", "Any task"), *TaskType.choices], required=False)
    origin = forms.ChoiceField(choices=[("", "Any origin"), *Chain.Origin.choices], required=False)
    source = forms.CharField(required=False, max_length=100)
    assigned = forms.ChoiceField(
        choices=[("", "Assigned or not"), ("no", "Unassigned"), ("yes", "Assigned")], required=False
    )

    def apply(self, chains: QuerySet[Chain]) -> QuerySet[Chain]:
        data = self.cleaned_data if self.is_valid() else {}
        if data.get("status"):
            chains = chains.filter(status=data["status"])
        if data.get("task"):
            chains = chains.filter(case__task_type=data["task"])
        if data.get("origin"):
            chains = chains.filter(origin=data["origin"])
        if data.get("source"):
            chains = chains.filter(case__source=data["source"])
        # A chain out for double reading is assigned through its readers' private copies.
        double_read = Exists(Chain.objects.filter(derived_from=OuterRef("pk"), purpose=Chain.Purpose.READING))
        if data.get("assigned") == "no":
            chains = chains.filter(assignments__isnull=True).exclude(double_read)
        elif data.get("assigned") == "yes":
            chains = chains.filter(Q(assignments__isnull=False) | Q(double_read)).distinct()
        return chains


def _radiologists() -> QuerySet[Any]:
    return get_user_model().objects.filter(groups__name=Role.RADIOLOGIST).order_by("username")


@login_required
@require_http_methods(["GET", "POST"])
def curator(request: HttpRequest) -> HttpResponse:
    _require_curator(request)
    # The filter lives in the query string, for the list and for "assign all matching" alike.
    chain_filter = ChainFilter(request.GET)
    chains = chain_filter.apply(
        Chain.objects.select_related("case").annotate(readers=Count("assignments"))
    ).order_by("created_at", "id")
    if request.method == "POST":
        reader = _radiologists().filter(pk=request.POST.get("reader") or 0).first()
        if reader is None:
            messages.error(request, "Choose a radiologist to assign to.")
        else:
            selected = request.POST.getlist("chains")
            if request.POST.get("scope") == "all":
                targets = chains
            else:
                targets = chains.filter(uuid__in=selected)
            second = _radiologists().filter(pk=request.POST.get("second_reader") or 0).first()
            try:
                if second is not None:  # double reading: two private copies, then adjudication
                    double = reading.assign_double(list(targets), reader, second, by=request.user)
                else:
                    assigned = services.assign_chains(list(targets), reader, by=request.user)
            except WorkflowError as exc:
                messages.error(request, str(exc))
            else:
                if second is not None:
                    messages.success(
                        request,
                        f"{double.created} chains go to {reader.get_username()} and "
                        f"{second.get_username()} for double reading.",
                    )
                    if double.skipped:
                        messages.warning(
                            request, f"{len(double.skipped)} skipped: " + "; ".join(double.skipped[:5])
                        )
                else:
                    level = messages.success if assigned.created else messages.warning
                    level(request, assigned.message(reader))
        return redirect(f"{request.path}?{request.GET.urlencode()}")
    page = Paginator(chains, PAGE).get_page(request.GET.get("page"))
    context = {
        "filter": chain_filter,
        "page": page,
        "total": page.paginator.count,
        "radiologists": _radiologists(),
        "workload": services.reader_workload(),
        # One chain per case reading (a double-read case counts once, as its settled chain).
        # (label, count) in the workflow's order: pending, in review, verified, rejected.
        "status_counts": [
            (label, counts[value])
            for counts in [
                dict(figures.work_chains().values_list("status").annotate(n=Count("id")))
            ]
            for value, label in Chain.Status.choices
            if counts.get(value)
        ],
        "query": request.GET.urlencode(),
    }
    template = "annotation/curator.html#chain-table" if request.htmx else "annotation/curator.html"
    return render(request, template, context)


class ImportForm(forms.Form):
    cases = forms.FileField(help_text="RadRBench-style JSONL (one case a line) or a JSON array")
    images = forms.FileField(required=False, help_text="Optional zip of the images the cases name")
    source = forms.SlugField(max_length=100, initial="upload")


@login_required
@require_http_methods(["GET", "POST"])
def import_page(request: HttpRequest) -> HttpResponse:
    _require_curator(request)
    form = ImportForm(request.POST or None, request.FILES or None)
    result = None
    if request.method == "POST" and form.is_valid():
        try:
            result = importing.import_upload(
                form.cleaned_data["cases"], form.cleaned_data.get("images"),
                source=form.cleaned_data["source"], user=request.user,
            )
        except importing.UnsafeArchive as exc:
            form.add_error("images", str(exc))
    context = {"form": form, "result": result, "runs": ImportRun.objects.all()[:20]}
    return render(request, "annotation/import.html", context)


@login_required
@require_GET
def verified(request: HttpRequest) -> HttpResponse:
    """Verified chains, read-only: what researchers (and curators) may browse."""
    if not (services.is_researcher(request.user) or services.is_curator(request.user)):
        raise PermissionDenied("Researchers and curators only")
    chains = (
        services.published_chains()
        .select_related("case", "decided_by")
        .annotate(n_steps=Count("steps", filter=Q(steps__deleted=False)))
        .order_by("-decided_at")
    )
    page = Paginator(chains, PAGE).get_page(request.GET.get("page"))
    return render(request, "annotation/verified.html", {"page": page})
