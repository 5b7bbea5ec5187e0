"""Researchers' screens: the model leaderboard and the side-by-side comparison of one case.

Researchers and curators read them; only curators send a run's chains to review; radiologists
and users without a role get 403. Charts are inline SVG computed here (no chart library).
"""

from __future__ import annotations

import csv
import uuid
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import URLPattern, path, reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from annotation import predictions, services
from annotation.models import Case, Chain, ModelRun, Prediction, Role, TaskType, WorkflowError

METRIC_LABELS = {
    "accuracy": "Accuracy",
    "factuality": "Factuality",
    "completeness": "Completeness",
    "effectiveness": "Effectiveness",
    "radrscore": "RadRScore",
}
PALETTE = ("#4f9cf9", "#f5a524", "#3ecf8e", "#e5484d", "#a371f7", "#8b98a5")
MAX_COLUMNS = 3  # the reference plus up to three models fit side by side


def _require_reader(request: HttpRequest) -> None:
    if not (services.is_researcher(request.user) or services.is_curator(request.user)):
        raise PermissionDenied("Researchers and curators only")


def _task_label(task: str) -> str:
    return (
        "All tasks" if task == "all" else TaskType(task).label if task in TaskType.values else task
    )


# --- chart geometry ------------------------------------------------------------------------------


@dataclass
class Svg:
    width: int
    height: int
    label: str
    shapes: list[dict[str, Any]] = field(default_factory=list)  # rect / line / circle / text


def _y(value: float, top: int, height: int) -> float:
    return round(top + height * (1 - value), 1)


def bar_chart(
    task: str, rows: list[predictions.LeaderRow], metric: str, colors: dict[int, str]
) -> Svg:
    """One bar per run (its mean), a whisker for the 95% interval, a 0..1 axis."""
    width, height, left, top, bottom = 300, 206, 34, 28, 40
    plot_h = height - top - bottom
    chart = Svg(width, height, f"{METRIC_LABELS[metric]} by run, {_task_label(task)}")
    chart.shapes.append(
        {"kind": "text", "x": width / 2, "y": 14, "text": _task_label(task), "anchor": "middle"}
    )
    for tick in (0, 0.5, 1):
        y = _y(tick, top, plot_h)
        chart.shapes.append(
            {"kind": "line", "x1": left, "x2": width - 6, "y1": y, "y2": y, "class": "grid"}
        )
        chart.shapes.append(
            {"kind": "text", "x": left - 4, "y": y + 3, "text": f"{tick:g}", "anchor": "end"}
        )
    slot = (width - left - 10) / max(len(rows), 1)
    for i, row in enumerate(rows):
        estimate = row.metrics[metric]
        x = left + i * slot + slot * 0.2
        w = slot * 0.6
        name = row.run.name if len(row.run.name) <= 14 else row.run.name[:13] + "…"
        chart.shapes.append(
            {
                "kind": "text",
                "x": round(x + w / 2, 1),
                "y": height - bottom + 14,
                "text": name,
                "anchor": "middle",
            }
        )
        if estimate.mean is None:
            continue
        y = _y(estimate.mean, top, plot_h)
        tip = f"{row.run.name}: {estimate.mean:.3f} (95% CI {estimate.low:.3f}–{estimate.high:.3f}, n={estimate.n})"
        chart.shapes.append(
            {
                "kind": "rect",
                "x": round(x, 1),
                "y": y,
                "w": round(w, 1),
                "h": round(top + plot_h - y, 1),
                "fill": colors[row.run.pk],
                "title": tip,
                "class": "bar",
            }
        )
        cx = round(x + w / 2, 1)
        low, high = _y(estimate.low or 0, top, plot_h), _y(estimate.high or 0, top, plot_h)
        chart.shapes.append(
            {"kind": "line", "x1": cx, "x2": cx, "y1": low, "y2": high, "class": "ci"}
        )
        for yy in (low, high):
            chart.shapes.append(
                {"kind": "line", "x1": cx - 5, "x2": cx + 5, "y1": yy, "y2": yy, "class": "ci"}
            )
        chart.shapes.append(
            {
                "kind": "text",
                "x": cx,
                "y": height - bottom + 27,
                "text": f"{estimate.mean:.2f}",
                "anchor": "middle",
            }
        )
    return chart


def scatter(rows: list[predictions.LeaderRow], colors: dict[int, str]) -> Svg:
    """Accuracy (x) against RadRScore (y), one point per run and task type."""
    width, height, left, top, bottom, right = 420, 336, 44, 28, 40, 12
    plot_w, plot_h = width - left - right, height - top - bottom
    chart = Svg(width, height, "Accuracy against RadRScore, one point per run and task")
    for tick in (0, 0.25, 0.5, 0.75, 1):
        x = round(left + plot_w * tick, 1)
        y = _y(tick, top, plot_h)
        chart.shapes.append(
            {"kind": "line", "x1": left, "x2": width - right, "y1": y, "y2": y, "class": "grid"}
        )
        chart.shapes.append(
            {"kind": "line", "x1": x, "x2": x, "y1": top, "y2": top + plot_h, "class": "grid"}
        )
        chart.shapes.append(
            {"kind": "text", "x": left - 4, "y": y + 3, "text": f"{tick:g}", "anchor": "end"}
        )
        chart.shapes.append(
            {
                "kind": "text",
                "x": x,
                "y": top + plot_h + 14,
                "text": f"{tick:g}",
                "anchor": "middle",
            }
        )
    chart.shapes.append(
        {
            "kind": "text",
            "x": left + plot_w / 2,
            "y": height - 6,
            "text": "Accuracy",
            "anchor": "middle",
        }
    )
    chart.shapes.append(
        {"kind": "text", "x": left, "y": 14, "text": "RadRScore", "anchor": "middle"}
    )
    for row in rows:
        if row.task == "all":
            continue
        accuracy, radrscore = row.metrics["accuracy"].mean, row.metrics["radrscore"].mean
        if accuracy is None or radrscore is None:
            continue
        chart.shapes.append(
            {
                "kind": "circle",
                "cx": round(left + plot_w * accuracy, 1),
                "cy": _y(radrscore, top, plot_h),
                "r": 6,
                "fill": colors[row.run.pk],
                "class": "point",
                "title": f"{row.run.name}, {_task_label(row.task)}: accuracy {accuracy:.3f}, RadRScore {radrscore:.3f} (n={row.n})",
            }
        )
    return chart


# --- the leaderboard -----------------------------------------------------------------------------


class SendForm(forms.Form):
    reader = forms.ModelChoiceField(queryset=get_user_model().objects.none())
    mode = forms.ChoiceField(
        choices=[
            ("all", "All open chains"),
            ("sample", "A random sample"),
            ("lowest", "The lowest RadRScore"),
        ]
    )
    count = forms.IntegerField(min_value=1, required=False)
    seed = forms.IntegerField(required=False, initial=0)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["reader"].queryset = (
            get_user_model().objects.filter(groups__name=Role.RADIOLOGIST).order_by("username")
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("mode") in ("sample", "lowest") and not data.get("count"):
            self.add_error("count", "How many chains?")
        return data


def _run_rows() -> list[dict[str, Any]]:
    runs = (
        ModelRun.objects.select_related("snapshot")
        # distinct: the join through assignments repeats a prediction once per reader.
        .annotate(
            n=Count("predictions", distinct=True),
            in_review=Count(
                "predictions",
                filter=Q(predictions__chain__assignments__isnull=False),
                distinct=True,
            ),
            verified=Count(
                "predictions",
                filter=Q(predictions__chain__status=Chain.Status.VERIFIED),
                distinct=True,
            ),
        )
        .order_by("name")
    )
    return [{"run": run} for run in runs]


@login_required
@require_GET
def leaderboard(request: HttpRequest) -> HttpResponse:
    _require_reader(request)
    metric = request.GET.get("metric", "radrscore")
    if metric not in METRIC_LABELS:
        metric = "radrscore"
    rows = predictions.leaderboard()
    runs = list(dict.fromkeys(row.run for row in rows))
    colors = {run.pk: PALETTE[i % len(PALETTE)] for i, run in enumerate(runs)}
    tasks = list(dict.fromkeys(row.task for row in rows if row.task != "all"))
    charts = [
        bar_chart(task, [r for r in rows if r.task == task], metric, colors)
        for task in [*tasks, "all"]
        if tasks
    ]
    context = {
        "rows": [
            {
                "row": row,
                "task_label": _task_label(row.task),
                "color": colors[row.run.pk],
                "cells": [(name, row.metrics[name]) for name in METRIC_LABELS],
            }
            for row in rows
        ],
        "metrics": METRIC_LABELS,
        "metric": metric,
        "metric_label": METRIC_LABELS[metric],
        "charts": charts,
        "scatter": scatter(rows, colors) if rows else None,
        "legend": [{"run": run, "color": colors[run.pk]} for run in runs],
        "runs": _run_rows(),
        "send_form": SendForm() if services.is_curator(request.user) else None,
        "compare_url": reverse("annotation:compare")
        + "?"
        + urlencode([("runs", str(r.uuid)) for r in runs[:MAX_COLUMNS]], doseq=True),
    }
    return render(request, "annotation/leaderboard.html", context)


@login_required
@require_GET
def leaderboard_csv(request: HttpRequest) -> HttpResponse:
    _require_reader(request)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="leaderboard.csv"'
    writer = csv.writer(response)
    header = ["run", "checkpoint", "snapshot", "task", "n"]
    for name in METRIC_LABELS:
        header += [name, f"{name}_ci_low", f"{name}_ci_high"]
    writer.writerow(header)
    for row in predictions.leaderboard():
        line: list[Any] = [row.run.name, row.run.checkpoint, row.run.snapshot_ref, row.task, row.n]
        for name in METRIC_LABELS:
            estimate = row.metrics[name]
            line += [_fmt(estimate.mean), _fmt(estimate.low), _fmt(estimate.high)]
        writer.writerow(line)
    return response


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


@login_required
@require_POST
def run_send(request: HttpRequest, run: Any) -> HttpResponse:
    if not services.is_curator(request.user):
        raise PermissionDenied("Only curators send chains to review")
    run_obj = get_object_or_404(ModelRun, uuid=run)
    form = SendForm(request.POST)
    if not form.is_valid():
        errors = "; ".join(f"{name}: {' '.join(e)}" for name, e in form.errors.items())
        messages.error(request, f"Nothing sent ({errors}).")
        return redirect("annotation:leaderboard")
    data = form.cleaned_data
    try:
        sent = predictions.send_to_review(
            run_obj,
            data["reader"],
            by=request.user,
            mode=data["mode"],
            count=data.get("count"),
            seed=data.get("seed") or 0,
        )
    except (ValueError, WorkflowError) as exc:
        messages.error(request, f"Nothing sent: {exc}")
    else:
        level = messages.success if sent.created else messages.warning
        level(request, sent.message(data["reader"], of=run_obj.name))
    return redirect("annotation:leaderboard")


# --- side by side ----------------------------------------------------------------------------------


def _selection(request: HttpRequest) -> tuple[list[ModelRun], str, str]:
    runs = predictions.runs_by_uuid(request.GET.getlist("runs"))[:MAX_COLUMNS]
    if not runs:
        runs = list(_runs_with_predictions()[:MAX_COLUMNS])
    filter_name = request.GET.get("filter", "all")
    if filter_name not in predictions.FILTERS:
        filter_name = "all"
    task = request.GET.get("task", "")
    if task not in TaskType.values:
        task = ""
    return runs, filter_name, task


def _runs_with_predictions() -> QuerySet[ModelRun]:
    """Runs there is something to compare in, by name."""
    return ModelRun.objects.filter(Exists(Prediction.objects.filter(run=OuterRef("pk")))).order_by(
        "name"
    )


def _query(runs: list[ModelRun], filter_name: str, task: str, **extra: Any) -> str:
    pairs = [("runs", str(run.uuid)) for run in runs] + [("filter", filter_name)]
    if task:
        pairs.append(("task", task))
    pairs += [(k, str(v)) for k, v in extra.items()]
    return urlencode(pairs)


@login_required
@require_GET
def compare(request: HttpRequest) -> HttpResponse:
    _require_reader(request)
    runs, filter_name, task = _selection(request)
    case_ids = predictions.compared_cases(runs, filter_name=filter_name, task=task) if runs else []
    wanted = request.GET.get("case")
    index = 0
    if wanted:
        try:
            wanted_uuid = uuid.UUID(wanted)
        except ValueError:
            raise Http404("No such case") from None
        case_obj = get_object_or_404(services.compared_cases(), uuid=wanted_uuid)
        index = case_ids.index(case_obj.pk) if case_obj.pk in case_ids else -1
    else:
        try:
            index = max(0, min(int(request.GET.get("i", 0)), len(case_ids) - 1))
        except ValueError:
            index = 0
        case_obj = Case.objects.filter(pk=case_ids[index]).first() if case_ids else None
    context: dict[str, Any] = {
        "runs": runs,
        "all_runs": _runs_with_predictions(),
        "selected": {run.pk for run in runs},
        "filters": predictions.FILTERS,
        "filter_name": filter_name,
        "tasks": TaskType.choices,
        "task": task,
        "total": len(case_ids),
        "position": index + 1 if index >= 0 else None,
        "case": case_obj,
        "csv_url": reverse("annotation:compare-csv") + "?" + _query(runs, filter_name, task),
    }
    if index > 0:
        context["previous_url"] = "?" + _query(runs, filter_name, task, i=index - 1)
    if 0 <= index < len(case_ids) - 1:
        context["next_url"] = "?" + _query(runs, filter_name, task, i=index + 1)
    if case_obj is not None:
        case_obj = Case.objects.select_related("report", "prior_report").get(pk=case_obj.pk)
        context["case"] = case_obj
        context.update(predictions.case_comparison(case_obj, runs))
        # The same rule as the image view that serves them.
        context["images"] = (
            list(case_obj.case_images.select_related("image"))
            if services.image_cases(request.user).filter(pk=case_obj.pk).exists()
            else None
        )
    return render(request, "annotation/compare.html", context)


@login_required
@require_GET
def compare_csv(request: HttpRequest) -> HttpResponse:
    """Every compared case x run, in the page's order and filter: answers, scores, findings."""
    _require_reader(request)
    runs, filter_name, task = _selection(request)
    case_ids = predictions.compared_cases(runs, filter_name=filter_name, task=task) if runs else []
    order = {case_id: i for i, case_id in enumerate(case_ids)}
    rows = sorted(
        predictions.comparison_queryset(runs).filter(case_id__in=case_ids),
        key=lambda p: (order[p.case_id], [r.pk for r in runs].index(p.run_id)),
    )
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="comparison.csv"'
    writer = csv.writer(response)
    writer.writerow(
        [
            "case",
            "item_id",
            "task",
            "gold_answer",
            "run",
            "answer",
            "correct",
            *METRIC_LABELS,
            "matched",
            "missed",
            "contradicted",
            "invented",
        ]
    )
    for p in rows:
        details = p.details or {}
        writer.writerow(
            [
                p.case.uuid,
                p.case.external_id,
                p.case.task_type,
                ", ".join(p.case.answer),
                p.run.name,
                ", ".join(str(a) for a in p.answer),
                "" if p.correct is None else ("yes" if p.correct else "no"),
                *(_fmt(getattr(p, name)) for name in METRIC_LABELS),
                *(
                    "; ".join(
                        f"{f.get('observation')} {f.get('status')}"
                        for f in details.get(k, [])
                        if isinstance(f, dict)
                    )
                    for k in ("matched", "missed", "contradicted", "invented")
                ),
            ]
        )
    return response


urlpatterns: list[URLPattern] = [
    path("models/", leaderboard, name="leaderboard"),
    path("models/leaderboard.csv", leaderboard_csv, name="leaderboard-csv"),
    path("models/runs/<uuid:run>/send/", run_send, name="run-send"),
    path("models/compare/", compare, name="compare"),
    path("models/compare.csv", compare_csv, name="compare-csv"),
]
