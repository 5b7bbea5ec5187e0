"""Evidence highlighting in real Chromium: a focused mined step marks its report sentence."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from annotation.mining import mine
from annotation.models import Assignment, Chain
from tests.browser.pages import REVIEW_READY

pytestmark = pytest.mark.browser

expect: Any = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is not installed"
).expect

PRIOR = "FINDINGS: Small right pleural effusion.\r\nNo pneumothorax."
CURRENT = (
    "FINDINGS: Lines and tubes are unchanged in position ‑ none.\r\n"
    "The right pleural effusion has\nincreased. No pneumothorax."
)


def test_it_marks_the_evidence_of_the_focused_step(page: Any, login: Any, alice: Any, tmp_path: Path) -> None:
    records = [
        {"study_id": "1", "report": PRIOR},
        {"study_id": "2", "prior_study_id": "1", "report": CURRENT},
    ]
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records))
    mine(path, tasks=["temporal"], source="pairs")
    chain = Chain.objects.get(case__question__contains="pleural effusion")
    Assignment.objects.create(chain=chain, reader=alice)
    plan, prior_step, current_step, *_ = chain.live_steps()
    assert plan.evidence is None and prior_step.evidence["report"] == "prior"

    login(page, "alice")
    page.goto(f"/chains/{chain.uuid}/")
    page.wait_for_function(REVIEW_READY)
    mark = page.locator("mark.evidence")
    page.keyboard.press("j")  # the plan: no evidence, nothing marked
    expect(page.locator(f"#step-{plan.uuid}")).to_have_class(re.compile(r"\bcurrent\b"))
    expect(mark).to_have_count(0)
    page.keyboard.press("j")  # the prior film: its sentence in the prior report, opened
    expect(mark).to_have_count(1)
    expect(page.locator('.report-text[data-report="prior"] mark.evidence')).to_have_text(prior_step.evidence["text"])
    assert page.locator("details.report", has=page.locator('[data-report="prior"]')).evaluate("d => d.open")
    page.locator(f"#step-{current_step.uuid} p.text").click()  # a click focuses too
    expect(mark).to_have_count(1)
    marked = page.locator('.report-text[data-report="current"] mark.evidence')
    # A sentence across a line break, offsets counted on the stored text (CRLF normalised).
    expect(marked).to_have_text(current_step.evidence["text"])
    assert "\n" in current_step.evidence["text"]
    page.keyboard.press("k")
    expect(page.locator('.report-text[data-report="prior"] mark.evidence')).to_have_count(1)
