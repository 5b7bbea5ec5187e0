"""Export snapshots: start one (a background job with a progress bar), list, download, compare.

Curators create snapshots; curators and researchers (who train on them) read and download them;
radiologists and users without a role get 403.
"""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import URLPattern, path
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import retarget

from annotation import exporting, services
from annotation.models import Chain, ExportSnapshot, TaskType

TEMPLATE = "annotation/exports.html"


def can_read_exports(user: Any) -> bool:
    return services.is_curator(user) or services.is_researcher(user)


def _require_reader(request: HttpRequest) -> None:
    if not can_read_exports(request.user):
        raise PermissionDenied("Curators and researchers only")


class ExportForm(forms.Form):
    formats = forms.MultipleChoiceField(
        choices=[(f, f) for f in exporting.FORMATS], initial=list(exporting.FORMATS),
        widget=forms.CheckboxSelectMultiple,
    )
    status = forms.MultipleChoiceField(
        choices=Chain.Status.choices, initial=[Chain.Status.VERIFIED], required=False,
        widget=forms.CheckboxSelectMultiple, help_text="none ticked: any status",
    )
    task = forms.MultipleChoiceField(choices=TaskType.choices, required=False, widget=forms.CheckboxSelectMultiple)
    origin = forms.MultipleChoiceField(choices=Chain.Origin.choices, required=False, widget=forms.CheckboxSelectMultiple)
    source = forms.CharField(required=False, max_length=500, help_text="comma-separated; empty: all")
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}),
                            help_text="chains decided on or after")
    min_agreement = forms.FloatField(required=False, min_value=-1, max_value=1,
                                     help_text="reader-pair kappa; keeps double-read chains only")
    image_size = forms.IntegerField(initial=512, min_value=16, max_value=4096,
                                    help_text="longest side of the PNGs, pixels")

    def options(self) -> exporting.ExportOptions:
        data = self.cleaned_data
        return exporting.ExportOptions(
            formats=tuple(data["formats"]), status=tuple(data["status"]), tasks=tuple(data["task"]),
            origins=tuple(data["origin"]),
            sources=tuple(s.strip() for s in data["source"].split(",") if s.strip()),
            since=data["since"].isoformat() if data["since"] else "",
            min_agreement=data["min_agreement"], image_size=data["image_size"] or 512,
        )


def _context(request: HttpRequest, form: ExportForm | None = None) -> dict[str, Any]:
    snapshots = ExportSnapshot.objects.select_related("job", "created_by").order_by("-number")[:100]
    return {
        "form": form or ExportForm(),
        "snapshots": snapshots,
        "can_create": services.is_curator(request.user),
    }


@login_required
@require_http_methods(["GET", "POST"])
def exports(request: HttpRequest) -> HttpResponse:
    _require_reader(request)
    if request.method == "GET":
        template = f"{TEMPLATE}#snapshot-list" if request.htmx else TEMPLATE
        return render(request, template, _context(request))
    if not services.is_curator(request.user):
        raise PermissionDenied("Only curators start exports")
    form = ExportForm(request.POST)
    snapshot = None
    if form.is_valid():
        try:
            snapshot = exporting.start_export(form.options(), request.user)
        except exporting.ExportError as exc:
            form.add_error(None, str(exc))
    if snapshot is None:
        if request.htmx:
            response = render(request, f"{TEMPLATE}#export-form", _context(request, form))
            return retarget(response, "#export-form")
        return render(request, TEMPLATE, _context(request, form))
    if request.htmx:
        return render(request, f"{TEMPLATE}#snapshot-list", _context(request))
    messages.success(request, f"Export v{snapshot.number} started.")
    return redirect("annotation:exports")


@login_required
@require_GET
def snapshot_row(request: HttpRequest, snapshot: Any) -> HttpResponse:
    """One row of the list: polled every second while its job runs."""
    _require_reader(request)
    snapshot_obj = get_object_or_404(ExportSnapshot.objects.select_related("job", "created_by"), uuid=snapshot)
    if not request.htmx:
        return redirect("annotation:snapshot", snapshot=snapshot_obj.uuid)
    return render(request, f"{TEMPLATE}#snapshot-row", {"snapshot": snapshot_obj})


@login_required
@require_GET
def snapshot_detail(request: HttpRequest, snapshot: Any) -> HttpResponse:
    _require_reader(request)
    snapshot_obj = get_object_or_404(ExportSnapshot.objects.select_related("job", "created_by"), uuid=snapshot)
    files = [f for f in snapshot_obj.files if not f["path"].startswith("images/")]
    images = [f for f in snapshot_obj.files if f["path"].startswith("images/")]
    context = {
        "snapshot": snapshot_obj, "files": files, "image_count": len(images),
        "image_bytes": sum(f["bytes"] for f in images),
        "others": ExportSnapshot.objects.filter(status=ExportSnapshot.Status.DONE).exclude(pk=snapshot_obj.pk).order_by("-number")[:50],
    }
    return render(request, "annotation/snapshot.html", context)


@login_required
@require_GET
def snapshot_download(request: HttpRequest, snapshot: Any) -> HttpResponse:
    _require_reader(request)
    snapshot_obj = get_object_or_404(ExportSnapshot, uuid=snapshot, status=ExportSnapshot.Status.DONE)
    response = StreamingHttpResponse(exporting.zip_stream(snapshot_obj), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="snapshot-v{snapshot_obj.number}.zip"'
    return response


@login_required
@require_GET
def snapshot_file(request: HttpRequest, snapshot: Any, relative: str) -> HttpResponse:
    _require_reader(request)
    snapshot_obj = get_object_or_404(ExportSnapshot, uuid=snapshot)
    found = exporting.snapshot_file(snapshot_obj, relative)
    if found is None:
        raise Http404("No such file in this snapshot")
    return FileResponse(found.open("rb"), as_attachment=not relative.endswith((".md", ".json", ".png")),
                        filename=found.name)


@login_required
@require_GET
def snapshot_compare(request: HttpRequest) -> HttpResponse:
    _require_reader(request)
    old, new = _done(request.GET.get("old")), _done(request.GET.get("new"))
    difference = exporting.compare(old, new)
    return render(request, "annotation/snapshot_compare.html",
                  {"old": old, "new": new, "difference": difference, "shown": 200})


def _done(value: str | None) -> ExportSnapshot:
    try:
        key = uuid.UUID(value or "")
    except ValueError:
        raise Http404("Choose two finished snapshots") from None
    return get_object_or_404(ExportSnapshot, uuid=key, status=ExportSnapshot.Status.DONE)


urlpatterns: list[URLPattern] = [
    path("exports/", exports, name="exports"),
    path("exports/compare/", snapshot_compare, name="snapshot-compare"),
    path("exports/<uuid:snapshot>/", snapshot_detail, name="snapshot"),
    path("exports/<uuid:snapshot>/row/", snapshot_row, name="snapshot-row"),
    path("exports/<uuid:snapshot>/download/", snapshot_download, name="snapshot-download"),
    path("exports/<uuid:snapshot>/files/<path:relative>", snapshot_file, name="snapshot-file"),
]
