"""The curator dashboard: figures, charts, and who may see it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from annotation import dashboard, services
from annotation.models import Assignment, Chain
from annotation.reading import assign_double


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def judge(chain: Chain, reader: Any, verdicts: list[str], seconds: float = 0) -> None:
    for step, verdict in zip(list(chain.live_steps()), verdicts):
        step.mark(verdict, by=reader, expected=step.version)
    chain.refresh_from_db()
    if seconds:
        services.record_time(chain, reader, seconds)
    services.finish_chain(chain, reader, "verify")


@pytest.fixture
def worked(make_chain: Any, alice: Any, bob: Any, carol: Any) -> dict[str, Any]:
    effusion = make_chain(steps=("There is a right pleural effusion.", "No pneumothorax.", "Answer: A) Yes."), readers=(alice,))
    judge(effusion, alice, ["incorrect", "correct", "correct"], seconds=30)
    rule = make_chain(steps=("The heart is enlarged.", "Answer: B) No."), readers=(bob,), task_type="single")
    Chain.objects.filter(pk=rule.pk).update(origin="mined_rule")
    first = rule.steps.get(position=1)
    first.finding = {"observation": "Cardiomegaly", "status": "present"}
    first.save(update_fields=["finding"])
    judge(rule, bob, ["irrelevant", "correct"], seconds=90)
    make_chain()  # pending
    double = make_chain()
    assign_double([double], alice, bob, by=carol)  # two readings: not counted as chains of their own
    return {"effusion": effusion, "rule": rule}


def test_it_counts_chains_by_status_and_task(worked: Any) -> None:
    status = dashboard.status_by_task()
    assert status["total"] == 4
    rows = {row["task"]: row["cells"] for row in status["rows"]}
    # columns: pending, in review, verified, rejected
    assert rows == {"Binary": [1, 1, 1, 0], "Single choice": [0, 0, 1, 0]}


def test_it_measures_error_rates_by_origin_and_observation(worked: Any) -> None:
    by_origin = {r.label: r for r in dashboard.error_by_origin()["rates"]}
    assert (by_origin["Mined by an LLM"].judged, by_origin["Mined by an LLM"].incorrect) == (3, 1)
    assert by_origin["Mined by an LLM"].error_rate == pytest.approx(1 / 3)
    assert (by_origin["Mined by rules"].judged, by_origin["Mined by rules"].irrelevant) == (2, 1)
    assert by_origin["Model run"].judged == 0
    by_observation = {r.label: r for r in dashboard.error_by_observation()["rates"]}
    assert (by_observation["Pleural Effusion"].judged, by_observation["Pleural Effusion"].incorrect) == (1, 1)
    assert by_observation["Pneumothorax"].error_rate == 0
    assert by_observation["Cardiomegaly"].irrelevant == 1  # from the step's own finding


def test_it_measures_throughput_and_time_per_case(worked: Any, alice: Any) -> None:
    Assignment.objects.filter(reader=alice).update(completed_at=timezone.now() - timedelta(days=1))
    figures = dashboard.throughput(days=7)
    series = {s["name"]: s["values"] for s in figures["series"]}
    assert series == {"alice": [0, 0, 0, 0, 0, 1, 0], "bob": [0, 0, 0, 0, 0, 0, 1]}
    assert len(figures["chart"].bars) == 2
    time = dashboard.time_per_case()
    assert time["median"] == pytest.approx(60) and time["n"] == 2
    assert [(r["reader__username"], r["median"]) for r in time["readers"]] == [("alice", 30), ("bob", 90)]


def test_it_shows_the_dashboard_with_its_charts_as_page_and_fragment(worked: Any, carol: Any) -> None:
    client = client_for(carol)
    page = client.get("/dashboard/")
    assert page.status_code == 200
    assert page.content.count(b'<svg class="chart"') == 3 and b'<rect class="bar"' in page.content
    assert b"Mined by an LLM" in page.content and b"Pleural Effusion" in page.content
    fragment = client.get("/dashboard/", headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and b"<html" not in fragment.content and b'id="dashboard-body"' in fragment.content


def test_it_shows_the_dashboard_to_curators_only(db: Any, alice: Any, dave: Any, eve: Any) -> None:
    for user in (alice, dave, eve):
        assert client_for(user).get("/dashboard/").status_code == 403
    assert Client().get("/dashboard/").status_code == 302  # to the login page


@pytest.mark.parametrize(("top", "labels"), [(5, ["0", "3", "6"]), (4, ["0", "2", "4"]), (0, ["0", "1", "2"])])
def test_the_count_axis_has_whole_numbers_where_its_gridlines_are(top: int, labels: list[str]) -> None:
    from annotation.dashboard import stacked_bars

    chart = stacked_bars(["mon", "tue"], [{"name": "done", "values": [top, 1], "color": "#000"}])
    assert [line["label"] for line in chart.gridlines] == labels
    ys = [line["y"] for line in chart.gridlines]
    assert ys[0] - ys[1] == pytest.approx(ys[1] - ys[2])  # the middle label sits midway
