"""The researcher's model pages in real Chromium: the leaderboard's charts, and stepping through
the side-by-side comparison with the keyboard."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from annotation import predictions

pytestmark = pytest.mark.browser

expect: Any = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is not installed"
).expect

RIGHT = "<think>\nThere is a right pleural effusion.\n</think>\n<answer>A</answer>"
WRONG = "<think>\nThere is no pleural effusion.\n</think>\n<answer>B</answer>"


@pytest.fixture
def runs(make_chain: Any, tmp_path: Path) -> list[Any]:
    cases = [
        make_chain(steps=("There is a right pleural effusion.", "Answer: A) Yes.")).case
        for _ in range(3)
    ]
    for name, outputs in (("alpha", [RIGHT, RIGHT, RIGHT]), ("beta", [RIGHT, WRONG, WRONG])):
        path = tmp_path / f"{name}.jsonl"
        path.write_text(
            "".join(
                json.dumps({"case_id": str(c.uuid), "pred": o}) + "\n"
                for c, o in zip(cases, outputs)
            )
        )
        predictions.import_predictions(path, run=name)
    return cases


def test_it_draws_the_leaderboard(page: Any, login: Any, runs: list[Any], dave: Any) -> None:
    login(page, "dave")
    page.get_by_role("link", name="Models").click()
    expect(page.get_by_role("heading", name="Model leaderboard")).to_be_visible()
    expect(page.locator("#leaderboard-table tbody tr")).to_have_count(4)  # 2 runs x (binary, all)
    accuracy = page.locator("tr[data-run='beta'][data-task='all'] td[data-metric='accuracy']")
    expect(accuracy).to_contain_text("0.333")
    charts = page.locator("svg.chart")
    expect(charts).to_have_count(3)
    for index in range(3):
        box = charts.nth(index).bounding_box()
        assert box["width"] > 200 and box["height"] > 100
    bars = page.locator("#charts svg.chart").first.locator("rect.bar")
    expect(bars).to_have_count(2)
    assert (
        bars.nth(0).bounding_box()["height"] > bars.nth(1).bounding_box()["height"]
    )  # alpha above beta
    expect(page.locator("#scatter circle.point")).to_have_count(2)
    page.get_by_label("Metric").select_option("accuracy")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("heading", name="Accuracy per task")).to_be_visible()


def test_it_steps_through_cases_where_models_disagree(
    page: Any, login: Any, runs: list[Any], dave: Any
) -> None:
    login(page, "dave")
    page.get_by_role("link", name="Compare").click()
    page.get_by_label("Cases").select_option("disagree")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#case-position")).to_have_text("Case 1 of 2")
    expect(page.locator("#comparison")).to_have_attribute("data-case", str(runs[1].uuid))
    columns = page.locator(".column")
    expect(columns).to_have_count(3)  # the reference, alpha, beta
    expect(columns.nth(2)).to_contain_text("✗ wrong")
    expect(
        page.locator("tr[data-observation='Pleural Effusion'] td[data-verdict='contradicted']")
    ).to_be_visible()
    page.keyboard.press("j")
    expect(page.locator("#case-position")).to_have_text("Case 2 of 2")
    expect(page.locator("#comparison")).to_have_attribute("data-case", str(runs[2].uuid))
    page.keyboard.press("ArrowLeft")
    expect(page.locator("#case-position")).to_have_text("Case 1 of 2")


def test_it_shows_a_researcher_the_film_of_a_compared_case(
    page: Any, login: Any, make_chain: Any, tmp_path: Path, dave: Any
) -> None:
    from annotation import synthetic
    from annotation.importing import store_image

    film = store_image(synthetic.write_chest_png(tmp_path / "film.png", seed=5, size=64))
    case = make_chain(images=(film,)).case  # in review: no verified chain yet
    path = tmp_path / "gamma.jsonl"
    path.write_text(json.dumps({"case_id": str(case.uuid), "pred": RIGHT}) + "\n")
    predictions.import_predictions(path, run="gamma")
    login(page, "dave")
    page.get_by_role("link", name="Compare").click()
    image = page.locator(".case-info .thumbs img")
    expect(image).to_have_count(1)
    image.scroll_into_view_if_needed()
    page.wait_for_function("document.querySelector('.case-info .thumbs img').complete")
    assert image.evaluate("img => img.naturalWidth") > 0  # the film loaded, not a broken image
