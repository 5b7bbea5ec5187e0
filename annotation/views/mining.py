"""The curator's Mining page: upload reports (and labels), start a mining job, watch it finish."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import URLPattern, path
from django.views.decorators.http import require_GET, require_http_methods

from annotation import mining
from annotation.models import Job
from annotation.views.curator import _require_curator
from cxr.mining import TASKS

TASK_LABELS = {
    "binary": "Binary (Yes/No)",
    "single": "Single choice",
    "multi": "Multiple choice",
    "open": "Open multi-finding",
    "temporal": "Temporal progression",
}


class MiningForm(forms.Form):
    reports = forms.FileField(
        help_text="JSONL or CSV with a report (or original_report) field, optional study_id, "
        "patient_id, prior_study_id; or a zip of a MIMIC-CXR-style folder of sNNN.txt reports"
    )
    labels = forms.FileField(
        required=False,
        help_text="Optional labels CSV: study_id and one column per observation (1, 0, -1, blank); "
        "progression columns such as edema_progression (improving/stable/worsening) for temporal pairs",
    )
    tasks = forms.MultipleChoiceField(
        choices=[(t, TASK_LABELS[t]) for t in TASKS], initial=list(TASKS),
        widget=forms.CheckboxSelectMultiple,
    )
    llm = forms.BooleanField(required=False, label="Write chains with the LLM")
    limit = forms.IntegerField(required=False, min_value=1, help_text="Mine only the first N reports")
    seed = forms.IntegerField(initial=0, min_value=0, help_text="Same seed, same cases")
    source = forms.SlugField(max_length=100, initial="mined")

    def clean_llm(self) -> bool:
        wanted = bool(self.cleaned_data.get("llm"))
        if wanted and not (settings.LLM_BASE_URL and settings.LLM_MODEL):
            raise forms.ValidationError(
                "No LLM endpoint is configured (WORKBENCH_LLM_BASE_URL and WORKBENCH_LLM_MODEL)."
            )
        return wanted


def _context(form: MiningForm, job: Job | None = None) -> dict[str, Any]:
    return {
        "form": form,
        "job": job,
        "llm_ready": bool(settings.LLM_BASE_URL and settings.LLM_MODEL),
        "llm_model": settings.LLM_MODEL,
        "jobs": Job.objects.filter(kind="mining").select_related("created_by")[:20],
    }


@login_required
@require_http_methods(["GET", "POST"])
def mining_page(request: HttpRequest) -> HttpResponse:
    _require_curator(request)
    form = MiningForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        job = mining.start_mining_job(
            request.user, data["reports"], data.get("labels"), tasks=data["tasks"],
            llm=data["llm"], limit=data.get("limit"), seed=data.get("seed") or 0,
            source=data["source"],
        )
        if not request.htmx:
            return redirect("annotation:mining-job", job=job.uuid)
        # A fresh form, and below it the job's progress, polling.
        return render(request, "annotation/mining.html#mining-form", _context(MiningForm(), job))
    if request.htmx:  # errors inline, as a 200 fragment
        return render(request, "annotation/mining.html#mining-form", _context(form))
    return render(request, "annotation/mining.html", _context(form))


@login_required
@require_GET
def mining_job(request: HttpRequest, job: Any) -> HttpResponse:
    _require_curator(request)
    job_obj = get_object_or_404(Job, uuid=job, kind="mining")
    context = {"job": job_obj}
    if request.htmx:
        return render(request, "annotation/mining_job.html#job-status", context)
    return render(request, "annotation/mining_job.html", context)


urlpatterns: list[URLPattern] = [
    path("curator/mining/", mining_page, name="mining"),
    path("curator/mining/<uuid:job>/", mining_job, name="mining-job"),
]
