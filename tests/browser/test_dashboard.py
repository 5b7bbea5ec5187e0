"""The curator's dashboard and Exports page in real Chromium: charts visible, an export's progress."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command

from annotation import services
from annotation.models import ExportSnapshot

pytestmark = pytest.mark.browser

expect: Any = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect


def test_it_draws_the_dashboard_charts(page: Any, login: Any, make_chain: Any, alice: Any, bob: Any, carol: Any) -> None:
    for reader, verdicts in ((alice, ["correct", "incorrect", "correct"]), (bob, ["irrelevant", "correct", "correct"])):
        chain = make_chain(readers=(reader,))
        for step, verdict in zip(list(chain.live_steps()), verdicts):
            step.mark(verdict, by=reader, expected=step.version)
        services.finish_chain(chain, reader, "verify")
    login(page, "carol")
    page.get_by_role("link", name="Dashboard").click()
    charts = page.locator("svg.chart")
    expect(charts).to_have_count(3)
    for index in range(3):
        expect(charts.nth(index)).to_be_visible()
        box = charts.nth(index).bounding_box()
        assert box["width"] > 200 and box["height"] > 20
    throughput = page.locator("#throughput svg.chart rect.bar")
    expect(throughput).to_have_count(2)  # one bar segment per reader today
    assert throughput.first.bounding_box()["height"] > 10
    expect(page.locator("#error-by-origin svg.chart rect.bar").first).to_be_visible()
    expect(page.locator("#error-by-origin")).to_contain_text("Mined by an LLM")
    expect(page.locator("#time-per-case")).to_contain_text("finished assignments")


def test_it_starts_an_export_and_follows_its_progress(page: Any, login: Any, make_chain: Any, alice: Any, carol: Any) -> None:
    chain = make_chain(readers=(alice,))
    for step in chain.live_steps():
        step.mark("correct", by=alice, expected=step.version)
    services.finish_chain(chain, alice, "verify")
    login(page, "carol")
    page.get_by_role("link", name="Exports").click()
    page.wait_for_function("() => window.htmx !== undefined")
    page.get_by_role("button", name="Start export").click()
    row = page.locator("tr[data-snapshot='v1']")
    expect(row.get_by_role("progressbar")).to_be_visible()
    assert ExportSnapshot.objects.get().status == "pending"
    call_command("db_worker", "--batch", "--no-startup-delay", "--no-reload", verbosity=0)  # the worker
    expect(row.get_by_role("link", name="Download zip")).to_be_visible()  # the row polled itself
    expect(row).to_contain_text("Done")
    row.get_by_role("link", name="files").click()
    expect(page.get_by_role("heading", name="Snapshot v1")).to_be_visible()
    expect(page.get_by_role("link", name="sft/train.jsonl")).to_be_visible()


def test_it_brings_the_senior_reader_to_the_cases_to_settle(page: Any, login: Any, make_chain: Any, alice: Any, bob: Any, carol: Any) -> None:
    from django.contrib.auth import get_user_model

    from annotation.reading import assign_double

    grace = get_user_model().objects.create_user(username="grace", password="grace-password")
    services.set_role(grace, "adjudicator")
    reference = make_chain()
    assign_double([reference], alice, bob, by=carol)
    for copy in reference.derived.all():
        reader = copy.assignments.get().reader
        for step in copy.live_steps():
            step.mark("correct", by=reader, expected=step.version)
        services.finish_chain(copy, reader, "verify")
    login(page, "grace")  # lands on the home page: the adjudication queue
    expect(page.get_by_role("heading", name="Waiting for the senior reader")).to_be_visible()
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link")).to_have_count(1)
    nav.get_by_role("link", name="Adjudication").click()
    page.get_by_role("link", name=reference.case.question[:40], exact=False).click()
    expect(page).to_have_url(f"{page.url.split('/adjudication/')[0]}/adjudication/{reference.uuid}/")


def test_it_asks_for_a_verdict_before_settling_a_step_as_own(page: Any, login: Any, make_chain: Any, alice: Any, bob: Any, carol: Any) -> None:
    from django.contrib.auth import get_user_model

    from annotation.reading import assign_double

    grace = get_user_model().objects.create_user(username="grace", password="grace-password")
    services.set_role(grace, "adjudicator")
    reference = make_chain()
    assign_double([reference], alice, bob, by=carol)
    for copy, first in zip(reference.derived.order_by("id"), ("correct", "incorrect")):
        reader = copy.assignments.get().reader
        for step, verdict in zip(copy.live_steps(), (first, "correct", "correct")):
            step.mark(verdict, by=reader, expected=step.version)
        services.finish_chain(copy, reader, "verify")
    login(page, "grace")
    page.goto(f"/adjudication/{reference.uuid}/")
    page.wait_for_function("() => window.htmx !== undefined")
    page.get_by_label("own:").check()
    page.get_by_label("Text for step 1").fill("Look at both angles.")
    page.get_by_role("button", name="Settle and verify").click()
    verdict = page.get_by_label("Verdict for step 1")
    # Refused in the browser: nothing is sent, and the verdict is what is asked for.
    assert verdict.evaluate("(select) => select.validity.valueMissing")
    expect(page.locator("#settle-form form")).to_be_visible()
    assert not reference.derived.filter(purpose="adjudicated").exists()
    verdict.select_option("incorrect")
    page.get_by_role("button", name="Settle and verify").click()
    expect(page.get_by_text("Settled by grace")).to_be_visible()
    settled = reference.derived.get(purpose="adjudicated")
    assert [(s.text, s.verdict) for s in settled.live_steps()][0] == ("Look at both angles.", "incorrect")
