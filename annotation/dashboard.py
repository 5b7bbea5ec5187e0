"""The curator dashboard's figures, and the geometry of its server-side SVG charts.

"Work" chains are those that stand for a case's reading: reference chains read once, and the
senior reader's settled chain of a double-read case (its two private readings, and the reference
it settles, are not counted again).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

from django.db.models import Aggregate, Count, FloatField, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from annotation.exporting import ExportOptions, select_chains
from annotation.models import Assignment, Chain, Step, TaskType
from cxr.labeler import label_report
from cxr.vocabulary import NO_FINDING

OBSERVATION_SAMPLE = 20_000  # latest judged steps labelled for the by-observation table
MINED_ORIGINS = (Chain.Origin.MINED_RULE, Chain.Origin.MINED_LLM, Chain.Origin.MODEL, Chain.Origin.IMPORTED)
PALETTE = ("#4ea1ff", "#2ea043", "#c69026", "#e5534b", "#a371f7", "#39c5cf", "#f778ba", "#8b98a5")


class Median(Aggregate):
    """PostgreSQL's exact median."""

    function = "PERCENTILE_CONT"
    name = "median"
    output_field = FloatField()
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"


def work_chains() -> QuerySet[Chain]:
    return select_chains(ExportOptions(status=()))


def status_by_task() -> dict[str, Any]:
    counts = Counter(
        {(row["case__task_type"], row["status"]): row["n"]
         for row in work_chains().values("case__task_type", "status").annotate(n=Count("id"))}
    )
    statuses = list(Chain.Status)
    rows = []
    for task in TaskType:
        cells = [counts[(task.value, s.value)] for s in statuses]
        if any(cells):
            rows.append({"task": task.label, "cells": cells, "total": sum(cells)})
    totals = [sum(counts[(t.value, s.value)] for t in TaskType) for s in statuses]
    return {"statuses": [s.label for s in statuses], "status_values": [s.value for s in statuses],
            "rows": rows, "totals": totals, "total": sum(totals)}


def throughput(days: int = 30, today: date | None = None) -> dict[str, Any]:
    """Chains finished per reader per day over the last `days` days, as a stacked bar chart."""
    today = today or timezone.localdate()
    start = today - timedelta(days=days - 1)
    rows = (
        Assignment.objects.filter(status=Assignment.Status.DONE, completed_at__date__gte=start)
        .annotate(day=TruncDate("completed_at"))
        .values("reader__username", "day")
        .annotate(n=Count("id"))
    )
    per: dict[str, dict[date, int]] = defaultdict(dict)
    for row in rows:
        per[row["reader__username"]][row["day"]] = row["n"]
    readers = sorted(per)
    dates = [start + timedelta(days=i) for i in range(days)]
    series = [{"name": r, "values": [per[r].get(d, 0) for d in dates]} for r in readers]
    return {"readers": readers, "dates": dates, "series": series,
            "total": sum(sum(s["values"]) for s in series),
            "chart": stacked_bars([d.strftime("%m-%d") for d in dates], series)}


def time_per_case() -> dict[str, Any]:
    done = Assignment.objects.filter(status=Assignment.Status.DONE, seconds_spent__gt=0)
    overall = done.aggregate(median=Median("seconds_spent"), n=Count("id"))
    readers = list(
        done.values("reader__username").annotate(median=Median("seconds_spent"), n=Count("id"))
        .order_by("reader__username")
    )
    return {"median": overall["median"], "n": overall["n"], "readers": readers}


@dataclass
class Rate:
    label: str
    judged: int = 0
    incorrect: int = 0
    irrelevant: int = 0

    @property
    def error_rate(self) -> float:
        return self.incorrect / self.judged if self.judged else 0.0

    @property
    def irrelevant_rate(self) -> float:
        return self.irrelevant / self.judged if self.judged else 0.0


def _judged_mined_steps() -> QuerySet[Step]:
    return Step.objects.filter(
        chain__in=work_chains().values("pk"), added_by_reader=False,
        verdict__in=(Step.Verdict.CORRECT, Step.Verdict.INCORRECT, Step.Verdict.IRRELEVANT),
    )


def error_by_origin() -> dict[str, Any]:
    """How often mined steps are wrong (judged incorrect), by the chain's origin."""
    rows = {
        row["chain__origin"]: row
        for row in _judged_mined_steps().values("chain__origin").annotate(
            judged=Count("id"),
            incorrect=Count("id", filter=Q(verdict=Step.Verdict.INCORRECT)),
            irrelevant=Count("id", filter=Q(verdict=Step.Verdict.IRRELEVANT)),
        )
    }
    rates = [
        Rate(Chain.Origin(origin).label, rows[origin]["judged"], rows[origin]["incorrect"], rows[origin]["irrelevant"])
        if origin in rows else Rate(Chain.Origin(origin).label)
        for origin in MINED_ORIGINS
    ]
    return {"rates": rates, "chart": rate_bars(rates)}


@lru_cache(maxsize=65536)
def _named(text: str) -> tuple[str, ...]:
    """Observations the findings labeler reads in a step's text, stated or not (No Finding only
    when the text says it): what the step talks about."""
    return tuple(
        f.observation for f in label_report(text) if f.observation != NO_FINDING or f.evidence
    )


def error_by_observation(limit: int = 15) -> dict[str, Any]:
    """Error rate per observation a step talks about: its structured finding, else what the
    findings labeler reads in the step's text as mined. Based on the latest judged steps."""
    steps = list(
        _judged_mined_steps().order_by("-updated_at", "-id")
        .values_list("original_text", "verdict", "finding")[: OBSERVATION_SAMPLE + 1]
    )
    sampled = len(steps) > OBSERVATION_SAMPLE
    by: dict[str, Rate] = {}
    for text, verdict, finding in steps[:OBSERVATION_SAMPLE]:
        if isinstance(finding, dict) and finding.get("observation"):
            names = {str(finding["observation"])}
        else:
            names = set(_named(text)) or {"(no observation named)"}
        for name in names:
            rate = by.setdefault(name, Rate(name))
            rate.judged += 1
            rate.incorrect += verdict == Step.Verdict.INCORRECT
            rate.irrelevant += verdict == Step.Verdict.IRRELEVANT
    rates = sorted(by.values(), key=lambda r: (-r.judged, r.label))[:limit]
    return {"rates": rates, "chart": rate_bars(rates), "sampled": sampled, "sample": OBSERVATION_SAMPLE}


# --- chart geometry (rendered as inline SVG by the template) -----------------------------------


@dataclass
class Chart:
    width: int
    height: int
    bars: list[dict[str, Any]] = field(default_factory=list)
    labels: list[dict[str, Any]] = field(default_factory=list)
    legend: list[dict[str, Any]] = field(default_factory=list)
    gridlines: list[dict[str, Any]] = field(default_factory=list)


def stacked_bars(categories: list[str], series: list[dict[str, Any]], *, width: int = 720, height: int = 220) -> Chart:
    """Vertical stacked bars, one per category, a colour per series."""
    left, bottom, top = 34, 36, 10
    plot_h = height - bottom - top
    totals = [sum(s["values"][i] for s in series) for i in range(len(categories))]
    # Counts: the axis runs to an even whole number, so the middle gridline is a whole one too.
    half = max(1, math.ceil(max(totals or [0]) / 2))
    peak = 2 * half
    slot = (width - left - 8) / max(len(categories), 1)
    chart = Chart(width, height)
    for tick in (0, half, peak):
        y = top + plot_h - plot_h * tick / peak
        chart.gridlines.append({"y": round(y, 1), "x1": left, "x2": width - 8, "label": f"{tick:.0f}"})
    for i, category in enumerate(categories):
        x = left + i * slot + slot * 0.15
        base = top + plot_h
        for j, s in enumerate(series):
            value = s["values"][i]
            if not value:
                continue
            h = plot_h * value / peak
            base -= h
            chart.bars.append({"x": round(x, 1), "y": round(base, 1), "w": round(slot * 0.7, 1), "h": round(h, 1),
                               "color": PALETTE[j % len(PALETTE)], "title": f"{s['name']} {category}: {value}"})
        if len(categories) <= 14 or i % max(1, len(categories) // 10) == 0:
            chart.labels.append({"x": round(x + slot * 0.35, 1), "y": height - bottom + 14, "text": category})
    chart.legend = [{"name": s["name"], "color": PALETTE[j % len(PALETTE)], "x": left + 110 * j, "y": height - 8}
                    for j, s in enumerate(series)]
    return chart


def rate_bars(rates: list[Rate], *, width: int = 520, row: int = 22) -> Chart:
    """Horizontal bars: the error rate of each row (incorrect, then irrelevant stacked after it)."""
    label_w, right = 190, 60
    plot_w = width - label_w - right
    chart = Chart(width, row * max(len(rates), 1) + 12)
    for i, rate in enumerate(rates):
        y = 6 + i * row
        wrong = plot_w * rate.error_rate
        chart.labels.append({"x": label_w - 6, "y": y + row * 0.65, "text": rate.label, "anchor": "end"})
        chart.bars.append({"x": label_w, "y": y + 3, "w": round(wrong, 1), "h": row - 6, "color": PALETTE[3],
                           "title": f"{rate.label}: {rate.incorrect} of {rate.judged} steps incorrect"})
        chart.bars.append({"x": round(label_w + wrong, 1), "y": y + 3, "w": round(plot_w * rate.irrelevant_rate, 1),
                           "h": row - 6, "color": PALETTE[2],
                           "title": f"{rate.label}: {rate.irrelevant} of {rate.judged} steps irrelevant"})
        chart.labels.append({"x": round(label_w + plot_w + 4, 1), "y": y + row * 0.65,
                             "text": f"{100 * rate.error_rate:.0f} %" if rate.judged else "—", "anchor": "start"})
    chart.bars = [bar for bar in chart.bars if bar["w"] > 0]
    return chart


def summary() -> dict[str, Any]:
    """Everything the dashboard shows."""
    from annotation.agreement import agreement_report
    from annotation.reading import double_reading_counts

    return {
        "status": status_by_task(),
        "throughput": throughput(),
        "time": time_per_case(),
        "by_origin": error_by_origin(),
        "by_observation": error_by_observation(),
        "agreement": agreement_report(),
        "double": double_reading_counts(),
    }
