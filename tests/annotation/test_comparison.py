"""The researchers' leaderboard and side-by-side pages: figures, filters, CSV, permissions."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse

from annotation import predictions
from annotation.models import Chain, ModelRun

RIGHT = "<think>\nThere is a right pleural effusion.\n</think>\n<answer>A</answer>"
WRONG = "<think>\nThere is no pleural effusion.\nThere is a large pneumothorax.\n</think>\n<answer>B</answer>"


@pytest.fixture
def two_runs(
    make_chain: Callable[..., Chain], tmp_path: Path
) -> tuple[ModelRun, ModelRun, list[Any]]:
    """Run "alpha" answers all four cases right; "beta" the first two right, the last two wrong."""
    cases = [
        make_chain(steps=("There is a right pleural effusion.", "Answer: A) Yes.")).case
        for _ in range(4)
    ]
    for name, outputs in (("alpha", [RIGHT] * 4), ("beta", [RIGHT, RIGHT, WRONG, WRONG])):
        path = tmp_path / f"{name}.jsonl"
        path.write_text(
            "".join(
                json.dumps({"case_id": str(c.uuid), "pred": o}) + "\n"
                for c, o in zip(cases, outputs)
            ),
            encoding="utf-8",
        )
        predictions.import_predictions(path, run=name)
    return ModelRun.objects.get(name="alpha"), ModelRun.objects.get(name="beta"), cases


def test_the_bootstrap_interval_is_seeded_and_holds_the_mean() -> None:
    values = [0.0, 1.0] * 20
    first, second = predictions.bootstrap(values), predictions.bootstrap(values)
    assert first == second  # same seed, same interval
    assert first.mean == 0.5 and first.low < 0.5 < first.high and first.n == 40
    assert predictions.bootstrap([0.7]) == predictions.Estimate(0.7, 0.7, 0.7, 1)
    assert predictions.bootstrap([]).mean is None


def test_the_leaderboard_has_a_row_per_run_and_task(two_runs: Any) -> None:
    alpha, beta, _ = two_runs
    rows = {(r.run.name, r.task): r for r in predictions.leaderboard()}
    assert set(rows) == {("alpha", "binary"), ("alpha", "all"), ("beta", "binary"), ("beta", "all")}
    assert rows[("alpha", "all")].metrics["accuracy"].mean == 1.0
    assert rows[("beta", "all")].metrics["accuracy"].mean == 0.5
    assert (
        rows[("beta", "all")].metrics["radrscore"].mean
        < rows[("alpha", "all")].metrics["radrscore"].mean
    )


@pytest.mark.parametrize(
    ("filter_name", "expected"),
    [("all", [0, 1, 2, 3]), ("disagree", [2, 3]), ("split", [2, 3])],
)
def test_the_case_filters(two_runs: Any, filter_name: str, expected: list[int]) -> None:
    alpha, beta, cases = two_runs
    found = predictions.compared_cases([alpha, beta], filter_name=filter_name)
    assert found == [cases[i].pk for i in expected]


def test_lowest_radrscore_comes_first(two_runs: Any) -> None:
    alpha, beta, cases = two_runs
    found = predictions.compared_cases([alpha, beta], filter_name="lowest")
    assert set(found[:2]) == {cases[2].pk, cases[3].pk}


def test_findings_are_aligned_against_the_reference(two_runs: Any) -> None:
    alpha, beta, cases = two_runs
    comparison = predictions.case_comparison(cases[2], [alpha, beta])
    assert [c.title for c in comparison["columns"]] == ["Reference", "alpha", "beta"]
    rows = {
        row["observation"]: [cell["verdict"] for cell in row["cells"]]
        for row in comparison["alignment"]
    }
    assert rows["Pleural Effusion"] == ["reference", "matched", "contradicted"]
    assert rows["Pneumothorax"] == ["absent-from-reference", "silent", "invented"]


# --- pages and permissions ---------------------------------------------------------------------


def test_researchers_and_curators_read_the_leaderboard(
    client: Any, two_runs: Any, carol: Any, dave: Any
) -> None:
    for user in (dave, carol):
        client.force_login(user)
        response = client.get(reverse("annotation:leaderboard"))
        assert response.status_code == 200
        page = response.content.decode()
        assert 'data-run="alpha" data-task="all"' in page
        assert page.count("<svg") == 3  # one bar chart for the task, one for all tasks, the scatter
    client.force_login(dave)
    assert 'name="reader"' not in client.get(reverse("annotation:leaderboard")).content.decode()
    client.force_login(carol)
    assert 'name="reader"' in client.get(reverse("annotation:leaderboard")).content.decode()


@pytest.mark.parametrize("url_name", ["leaderboard", "leaderboard-csv", "compare", "compare-csv"])
def test_radiologists_and_users_without_a_role_get_403(
    client: Any, alice: Any, eve: Any, url_name: str
) -> None:
    for user in (alice, eve):
        client.force_login(user)
        assert client.get(reverse(f"annotation:{url_name}")).status_code == 403


def test_anonymous_users_are_sent_to_log_in(client: Any, db: Any) -> None:
    response = client.get(reverse("annotation:compare"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_leaderboard_csv(client: Any, two_runs: Any, dave: Any) -> None:
    client.force_login(dave)
    response = client.get(reverse("annotation:leaderboard-csv"))
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [(r["run"], r["task"], r["n"]) for r in rows] == [
        ("alpha", "binary", "4"),
        ("alpha", "all", "4"),
        ("beta", "binary", "4"),
        ("beta", "all", "4"),
    ]
    assert rows[3]["accuracy"] == "0.5000"
    assert (
        float(rows[3]["radrscore_ci_low"])
        <= float(rows[3]["radrscore"])
        <= float(rows[3]["radrscore_ci_high"])
    )


def test_the_compare_page_shows_one_case_with_prev_and_next(
    client: Any, two_runs: Any, dave: Any
) -> None:
    alpha, beta, cases = two_runs
    client.force_login(dave)
    query = f"?runs={alpha.uuid}&runs={beta.uuid}&filter=split"
    page = client.get(reverse("annotation:compare") + query).content.decode()
    assert "Case 1 of 2" in page
    assert f'data-case="{cases[2].uuid}"' in page
    assert 'id="next-case"' in page and 'id="previous-case"' not in page
    assert 'data-verdict="contradicted"' in page and "✗ wrong" in page
    second = client.get(reverse("annotation:compare") + query + "&i=1").content.decode()
    assert f'data-case="{cases[3].uuid}"' in second and 'id="previous-case"' in second


def test_the_compare_page_with_nothing_to_show(client: Any, dave: Any) -> None:
    client.force_login(dave)
    response = client.get(reverse("annotation:compare"))
    assert response.status_code == 200 and "No case matches" in response.content.decode()


def test_the_comparison_csv_follows_the_filter(client: Any, two_runs: Any, carol: Any) -> None:
    alpha, beta, cases = two_runs
    client.force_login(carol)
    response = client.get(
        reverse("annotation:compare-csv") + f"?runs={alpha.uuid}&runs={beta.uuid}&filter=disagree"
    )
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [(r["case"], r["run"], r["correct"]) for r in rows] == [
        (str(cases[2].uuid), "alpha", "yes"),
        (str(cases[2].uuid), "beta", "no"),
        (str(cases[3].uuid), "alpha", "yes"),
        (str(cases[3].uuid), "beta", "no"),
    ]
    assert "Pneumothorax present" in rows[1]["invented"]


def test_the_nav_links_to_the_model_pages(client: Any, dave: Any, alice: Any) -> None:
    client.force_login(dave)
    page = client.get(reverse("annotation:leaderboard")).content.decode()
    assert f'href="{reverse("annotation:compare")}"' in page
    client.force_login(alice)
    assert (
        reverse("annotation:leaderboard")
        not in client.get(reverse("annotation:queue")).content.decode()
    )


def test_a_case_can_be_opened_by_its_uuid(client: Any, two_runs: Any, dave: Any) -> None:
    alpha, beta, cases = two_runs
    client.force_login(dave)
    base = reverse("annotation:compare") + f"?runs={alpha.uuid}&runs={beta.uuid}"
    page = client.get(base + f"&case={cases[3].uuid}").content.decode()
    assert f'data-case="{cases[3].uuid}"' in page and "Case 4 of 4" in page
    outside = client.get(base + f"&filter=split&case={cases[0].uuid}").content.decode()
    assert "This case is outside the selection" in outside


def test_a_researcher_sees_the_images_of_compared_cases_only(
    client: Any, make_chain: Callable[..., Chain], tmp_path: Path, dave: Any, alice: Any, eve: Any
) -> None:
    from annotation import synthetic
    from annotation.importing import store_image

    films = [
        store_image(synthetic.write_chest_png(tmp_path / f"film-{i}.png", seed=i, size=64))
        for i in (1, 2)
    ]
    compared = make_chain(images=(films[0],)).case  # in review, not verified
    unrelated = make_chain(images=(films[1],), readers=(alice,)).case
    path = tmp_path / "run.jsonl"
    path.write_text(json.dumps({"case_id": str(compared.uuid), "pred": RIGHT}) + "\n")
    predictions.import_predictions(path, run="gamma")
    client.force_login(dave)
    page = client.get(reverse("annotation:compare")).content.decode()
    image_url = reverse("annotation:image-render", args=[films[0].uuid])
    assert f'data-case="{compared.uuid}"' in page and f'src="{image_url}"' in page
    assert client.get(image_url)["Content-Type"] == "image/png"
    other_url = reverse("annotation:image-render", args=[films[1].uuid])
    assert client.get(other_url).status_code == 404
    assert client.get(reverse("annotation:compare") + f"?case={unrelated.uuid}").status_code == 404
    for user in (alice, eve):  # the compared case's film opens to researchers only
        client.force_login(user)
        assert client.get(image_url).status_code == 404
    client.force_login(alice)
    assert client.get(other_url).status_code == 200  # her own assigned case, as before


def test_the_runs_table_counts_each_prediction_once(
    two_runs: Any, alice: Any, bob: Any, carol: Any
) -> None:
    from annotation.models import Assignment
    from annotation.views.comparison import _run_rows

    alpha = two_runs[0]
    chain = alpha.predictions.first().chain
    for reader in (alice, bob):  # e.g. skipped by one reader, then given to another
        Assignment.objects.create(chain=chain, reader=reader, assigned_by=carol)
    Chain.objects.filter(pk=chain.pk).update(status=Chain.Status.VERIFIED)
    rows = {row["run"].name: row["run"] for row in _run_rows()}
    assert (rows["alpha"].n, rows["alpha"].in_review, rows["alpha"].verified) == (4, 1, 1)
    assert (rows["beta"].n, rows["beta"].in_review, rows["beta"].verified) == (4, 0, 0)


def test_a_review_under_way_shows_nothing_of_itself(
    client: Any, two_runs: Any, alice: Any, bob: Any, dave: Any
) -> None:
    """Researchers see verified work and what was produced, never a reader's unfinished edits."""
    alpha, _, cases = two_runs
    case = cases[0]
    reference = predictions.reference_chain(case)
    first = reference.live_steps().first()
    first.edit("A reader's half-finished correction.", by=alice, expected=first.version)
    first.refresh_from_db()
    first.mark("incorrect", by=alice, expected=first.version)
    model_chain = alpha.predictions.get(case=case).chain
    step = model_chain.live_steps().first()
    step.edit("The effusion is on the left.", by=bob, expected=step.version)
    step.refresh_from_db()
    step.mark("incorrect", by=bob, expected=step.version)

    client.force_login(dave)
    url = reverse("annotation:compare") + f"?case={case.uuid}&runs={alpha.uuid}"
    page = client.get(url).content.decode()
    assert "There is a right pleural effusion." in page  # as mined and as the model wrote it
    assert "half-finished" not in page and "on the left" not in page
    assert 'class="badge incorrect"' not in page and "Not reviewed yet" in page
    assert "as mined, not yet verified" in page

    model_chain.reject(by=bob, expected=None)  # the model chain's review is finished
    page = client.get(url).content.decode()
    assert 'class="badge incorrect"' in page and "Corrected to:" in page
    assert "The effusion is on the left." in page and "half-finished" not in page


def test_the_compare_page_names_answers_and_skips_empty_runs(
    client: Any, two_runs: Any, dave: Any
) -> None:
    ModelRun.objects.create(name="aaa-empty")  # sorts first, has nothing to compare
    client.force_login(dave)
    page = client.get(reverse("annotation:compare")).content.decode()
    assert "aaa-empty" not in page
    assert 'data-column="alpha"' in page and 'data-column="beta"' in page
    assert "Answer: <strong>A) Yes</strong>" in page


def test_a_case_parameter_that_is_no_uuid_is_not_found(client: Any, two_runs: Any, dave: Any) -> None:
    client.force_login(dave)
    for bad in ("\x00", "not-a-uuid", "1" * 500):
        assert client.get(reverse("annotation:compare"), {"case": bad}).status_code == 404
