"""The curator dashboard, and the senior reader's adjudication of double readings."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import URLPattern, path
from django.views.decorators.http import require_GET, require_http_methods

from annotation import dashboard as figures
from annotation import imaging, reading, services
from annotation.models import Chain, Image, Prediction, Step, WorkflowError
from annotation.views.images import cached_render


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    if not services.is_curator(request.user):
        raise PermissionDenied("Curators only")
    context = figures.summary()
    template = "annotation/dashboard.html#dashboard-body" if request.htmx else "annotation/dashboard.html"
    return render(request, template, context)


def _require_adjudicator(request: HttpRequest) -> None:
    if not reading.is_adjudicator(request.user):
        raise PermissionDenied("The senior reader (adjudicator) or a curator only")


@login_required
@require_GET
def adjudication_list(request: HttpRequest) -> HttpResponse:
    _require_adjudicator(request)
    waiting = reading.awaiting_adjudication().select_related("case").order_by("updated_at", "id")[:200]
    settled = (
        Chain.objects.filter(purpose=Chain.Purpose.ADJUDICATED)
        .select_related("case", "decided_by", "derived_from").order_by("-decided_at")[:50]
    )
    return render(request, "annotation/adjudication_list.html", {"waiting": waiting, "settled": settled})


def _reference(request: HttpRequest, chain: Any) -> Chain:
    _require_adjudicator(request)
    return get_object_or_404(
        Chain.objects.select_related("case", "case__report", "case__prior_report"),
        uuid=chain, purpose=Chain.Purpose.REFERENCE,
    )


@login_required
@require_http_methods(["GET", "POST"])
def adjudicate(request: HttpRequest, chain: Any) -> HttpResponse:
    reference = _reference(request, chain)
    pair = reading.pair_for(reference)
    if pair is None:
        raise Http404("This chain is not double read")
    settled = reading.adjudicated_chain(reference)
    errors: list[str] = []
    if request.method == "POST":
        if settled is not None:
            errors.append("These readings have already been settled.")
        else:
            choices = {
                key[: -len("-take")]: reading.Choice(
                    value,
                    request.POST.get(key[: -len("-take")] + "-verdict", ""),
                    request.POST.get(key[: -len("-take")] + "-text", ""),
                )
                for key, value in request.POST.items() if key.endswith("-take") and value
            }
            try:
                reading.settle(reference, choices, outcome=request.POST.get("outcome", "verify"),
                               by=request.user, note=request.POST.get("note", ""))
            except WorkflowError as exc:
                errors.append(str(exc))
            else:
                messages.success(request, "Readings settled: the adjudicated chain is the one exported.")
                return redirect("annotation:adjudicate", chain=reference.uuid)
    rows = pair.rows()
    # A refused form comes back as it was sent: every choice, own text and the note kept.
    entered = {
        row.key: {field: request.POST.get(f"{row.key}-{field}", "") for field in ("take", "verdict", "text")}
        for row in rows
    }
    context = {
        "reference": reference, "case": reference.case, "pair": pair, "rows": rows,
        "settle_rows": [(row, entered[row.key]) for row in rows], "readings": [pair.first, pair.second],
        "disputed": sum(1 for r in rows if r.disputed), "settled": settled,
        "settled_steps": list(settled.steps.order_by("position", "id")) if settled else [],
        "errors": errors, "posted": request.POST, "verdicts": Step.Verdict.choices[1:],
        "images": list(reference.case.case_images.select_related("image")),
        # Readings of a model's chain: its answer, right or wrong, as on the review page.
        "prediction": (
            Prediction.objects.filter(chain=reference).first()
            if reference.origin == Chain.Origin.MODEL
            else None
        ),
    }
    status = 400 if errors else 200
    if request.htmx:
        return render(request, "annotation/adjudicate.html#settle-form", context, status=status)
    return render(request, "annotation/adjudicate.html", context, status=status)


@login_required
@require_GET
def adjudication_image(request: HttpRequest, chain: Any, image: Any) -> HttpResponse:
    """The case's images for the senior reader (who need not be assigned to any reading)."""
    reference = _reference(request, chain)
    image_obj = get_object_or_404(Image, uuid=image, caseimage__case=reference.case)
    try:
        data = cached_render(image_obj, window=None, invert=False, size="1024", fmt="png")
    except imaging.ImageError as exc:
        return HttpResponse(f"Cannot render this image: {exc}", status=422, content_type="text/plain")
    response = HttpResponse(data, content_type="image/png")
    response["Cache-Control"] = "private, max-age=86400, immutable"
    return response


urlpatterns: list[URLPattern] = [
    path("dashboard/", dashboard, name="dashboard"),
    path("adjudication/", adjudication_list, name="adjudication"),
    path("adjudication/<uuid:chain>/", adjudicate, name="adjudicate"),
    path("adjudication/<uuid:chain>/images/<uuid:image>/", adjudication_image, name="adjudication-image"),
]
