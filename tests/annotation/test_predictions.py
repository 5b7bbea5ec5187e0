"""Model outputs back into the workbench: import, scores, chains for review, the API upload."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from annotation import predictions
from annotation.models import Assignment, Chain, ModelRun, Prediction, Step

GOOD = (
    "<think>\nThe right costophrenic angle is blunted.\nThere is a right pleural effusion.\n"
    "No pneumothorax is seen.\n</think>\n<answer>A</answer>"
)
WRONG = "<think>\nThe costophrenic angles are sharp.\nThere is no pleural effusion.\n</think>\n<answer>B</answer>"
REFERENCE_STEPS = (
    "The right costophrenic angle is blunted.",
    "There is a right pleural effusion.",
    "Answer: A) Yes.",
)


def _file(tmp_path: Path, rows: list[Any], name: str = "predictions.jsonl") -> Path:
    path = tmp_path / name
    path.write_text(
        "".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows),
        encoding="utf-8",
    )
    return path


@pytest.fixture
def cases(make_chain: Callable[..., Chain]) -> list[Any]:
    return [make_chain(steps=REFERENCE_STEPS).case for _ in range(3)]


def test_it_imports_predictions_with_scores_and_model_chains(
    cases: list[Any], tmp_path: Path
) -> None:
    path = _file(
        tmp_path,
        [
            {
                "case_id": str(cases[0].uuid),
                "pred": GOOD,
                "latency_ms": 812.5,
                "prompt_tokens": 300,
                "completion_tokens": 40,
                "settings": {"backend": "openai", "model": "ckpt-7", "temperature": 0},
            },
            {"case_id": str(cases[1].uuid), "pred": WRONG},
        ],
    )
    result = predictions.import_predictions(path, run="sft-v1", snapshot="v3")
    assert (result.created, result.rejected, result.duplicates) == (2, 0, 0)
    run = ModelRun.objects.get(name="sft-v1")
    assert run.checkpoint == "ckpt-7"  # from the rows' settings
    assert run.config["temperature"] == 0 and run.snapshot_ref == "v3"

    good = Prediction.objects.get(run=run, case=cases[0])
    assert good.answer == ["A"] and good.correct is True and good.accuracy == 1.0
    assert (good.latency_ms, good.prompt_tokens, good.completion_tokens) == (812.5, 300, 40)
    # Every reference finding recalled, every finding supported; the wording weighs in too.
    assert good.details["parts"]["completeness"]["shares"]["findings"] == 1.0
    assert good.details["parts"]["factuality"]["shares"]["findings"] == 1.0
    assert min(good.completeness, good.factuality) > 0.7
    assert good.details["judge"] == "offline"
    assert {"observation": "Pleural Effusion", "status": "present"} in good.details["matched"]

    chain = good.chain
    assert chain.origin == Chain.Origin.MODEL and chain.status == Chain.Status.PENDING
    steps = list(chain.live_steps())
    assert [s.text for s in steps] == [
        "The right costophrenic angle is blunted.",
        "There is a right pleural effusion.",
        "No pneumothorax is seen.",
    ]
    assert steps[1].finding == {"observation": "Pleural Effusion", "status": "present"}
    assert steps[2].finding == {"observation": "Pneumothorax", "status": "absent"}

    wrong = Prediction.objects.get(run=run, case=cases[1])
    assert wrong.correct is False and wrong.answer == ["B"]
    assert {"observation": "Pleural Effusion", "status": "absent"} in wrong.details["contradicted"]
    assert wrong.radrscore < good.radrscore


def test_it_keeps_the_scores_a_row_brings(cases: list[Any], tmp_path: Path) -> None:
    row = {
        "case_id": str(cases[0].uuid),
        "pred": GOOD,
        "accuracy": 1.0,
        "factuality": 0.5,
        "completeness": 0.25,
        "effectiveness": 0.75,
        "radrscore": 0.5,
        "judge": "llm",
        "matched": [{"observation": "effusion", "status": "present"}],
    }
    predictions.import_predictions(_file(tmp_path, [row]), run="judged")
    prediction = Prediction.objects.get()
    assert (prediction.factuality, prediction.completeness, prediction.radrscore) == (
        0.5,
        0.25,
        0.5,
    )
    assert prediction.details["judge"] == "llm"
    assert prediction.details["matched"] == [{"observation": "effusion", "status": "present"}]


def test_reimporting_creates_nothing_new(cases: list[Any], tmp_path: Path) -> None:
    path = _file(tmp_path, [{"case_id": str(c.uuid), "pred": GOOD} for c in cases])
    first = predictions.import_predictions(path, run="r")
    second = predictions.import_predictions(path, run="r")
    assert (first.created, second.created, second.duplicates) == (3, 0, 3)
    assert Prediction.objects.count() == 3
    assert Chain.objects.filter(origin=Chain.Origin.MODEL).count() == 3
    assert ModelRun.objects.count() == 1


def test_it_reports_bad_rows_with_line_and_reason(cases: list[Any], tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        [
            {"case_id": str(cases[0].uuid), "pred": GOOD},
            "{not json",
            {"case_id": "7e0f0000-0000-4000-8000-000000000000", "pred": GOOD},  # no such case
            {"case_id": str(cases[1].uuid)},  # no pred
            {
                "case_id": str(cases[2].uuid),
                "pred": GOOD,
                "factuality": 3,
                "completeness": 1,
                "effectiveness": 1,
                "radrscore": 1,
            },  # out of range
            {"item_id": cases[1].external_id, "pred": "", "error": "HTTP 500"},  # generation failed
            [1, 2],
        ],
    )
    result = predictions.import_predictions(path, run="r")
    assert result.created == 1
    reasons = {p.line: (p.field, p.reason) for p in result.problems}
    assert reasons[2][1].startswith("unreadable JSON")
    assert reasons[3][0] == "case" and "no case with case_id" in reasons[3][1]
    assert reasons[4] == ("pred", "missing field 'pred' (the model's raw output)")
    assert reasons[5][0] == "factuality"
    assert "generation failed" in reasons[6][1]
    assert "JSON object" in reasons[7][1]
    assert result.report_path is not None and "line 3 [case]" in result.report_path.read_text()


def test_it_finds_cases_by_item_id(cases: list[Any], tmp_path: Path) -> None:
    path = _file(tmp_path, [{"item_id": cases[0].external_id, "pred": GOOD}])
    assert predictions.import_predictions(path, run="r", source="test").created == 1
    assert Prediction.objects.get().case == cases[0]


def test_it_reports_numbers_and_text_the_database_cannot_store(
    cases: list[Any], tmp_path: Path
) -> None:
    case = str(cases[1].uuid)
    rows = [
        {"case_id": str(cases[0].uuid), "pred": GOOD, "latency_ms": 5.5, "prompt_tokens": 2**31 - 1},
        {"case_id": case, "pred": GOOD, "latency_ms": -5},
        {"case_id": case, "pred": GOOD, "prompt_tokens": 3000000000},  # over the column's range
        f'{{"case_id": "{case}", "pred": "x", "completion_tokens": 1e400}}',  # read as infinity
        {"case_id": case, "pred": GOOD, "completion_tokens": 2.5},
        {"case_id": case, "pred": "<think>A\u0000B</think>"},  # 6
        {"case_id": case, "pred": GOOD, "settings": {"stop": ["</answer>", "\u0000"]}},
        f'{{"case_id": "{case}", "pred": "x", "settings": {{"temperature": NaN}}}}',  # 8
        {"item_id": "case-2\u0000", "pred": GOOD},  # the case lookup would send it to the database
        f'{{"case_id": "{case}", "pred": "\\ud800"}}',  # 10: half a surrogate pair
        f'{{"case_id": "{case}", "pred": "x", "latency_ms": 1{"0" * 400}}}',  # no float holds it
    ]
    result = predictions.import_predictions(_file(tmp_path, rows), run="r")
    assert (result.created, result.rejected) == (1, 10)
    problems = {p.line: (p.field, p.reason) for p in result.problems}
    assert [p.line for p in result.problems] == sorted(problems)  # in the file's order
    assert problems[2] == ("latency_ms", "latency_ms must be a non-negative number, not -5")
    assert problems[3] == (
        "prompt_tokens", "prompt_tokens must be at most 2147483647, not 3000000000"
    )
    assert problems[4] == ("completion_tokens", "completion_tokens must be a finite number, not inf")
    assert problems[5] == ("completion_tokens", "completion_tokens must be a whole number, not 2.5")
    assert problems[6] == ("pred", "contains a NUL character")
    assert problems[7] == ("settings.stop[1]", "contains a NUL character")
    assert problems[8] == ("settings.temperature", "settings.temperature must be a finite number, not nan")
    assert problems[9] == ("item_id", "contains a NUL character")
    assert problems[10][0] == "pred" and "surrogate" in problems[10][1]
    assert problems[11][0] == "latency_ms" and "too large" in problems[11][1]
    assert Prediction.objects.get().prompt_tokens == 2**31 - 1


def test_it_reports_json_python_cannot_read_and_quotes_bad_values_briefly(
    cases: list[Any], tmp_path: Path
) -> None:
    rows = [
        "1" * 5000,  # more digits than Python converts
        "[" * 100_000,  # deeper than the parser goes
        {"case_id": str(cases[0].uuid), "pred": GOOD, "latency_ms": "x" * 100_000},
    ]
    result = predictions.import_predictions(_file(tmp_path, rows), run="r")
    reasons = {p.line: p.reason for p in result.problems}
    assert "5000 digits" in reasons[1] and "sys." not in reasons[1]
    assert reasons[2] == "unreadable JSON: nested too deeply"
    assert reasons[3].startswith("latency_ms must be a non-negative number") and len(reasons[3]) < 150


def test_it_creates_no_run_when_no_row_can_be_imported(cases: list[Any], tmp_path: Path) -> None:
    bad = _file(tmp_path, [{"case_id": str(cases[0].uuid)}, "oops"], "bad.jsonl")
    result = predictions.import_predictions(bad, run="empty", checkpoint="ckpt")
    assert (result.created, result.rejected, result.run) == (0, 2, None)
    assert not ModelRun.objects.exists()  # nothing for the Models or Compare pages to show
    assert "into run empty, 2 rejected (run not created: no row to import)" in result.summary()
    good = _file(tmp_path, [{"case_id": str(cases[0].uuid), "pred": GOOD}], "good.jsonl")
    made = predictions.import_predictions(good, run="empty").run
    again = predictions.import_predictions(bad, run="empty", checkpoint="ckpt")
    assert again.run == made and ModelRun.objects.get().checkpoint == ""  # found, not changed
    duplicate = predictions.import_predictions(good, run="empty")  # the run exists: fine
    assert (duplicate.run, duplicate.duplicates) == (made, 1)


def test_it_refuses_run_names_the_database_cannot_store(cases: list[Any], tmp_path: Path) -> None:
    path = _file(tmp_path, [{"case_id": str(cases[0].uuid), "pred": GOOD}])
    for options, message in (
        ({"run": "r" * 201}, "run name is longer than 200 characters"),
        ({"run": "r\u0000"}, "run name contains a NUL character"),
        ({"run": "r", "checkpoint": "c" * 501}, "checkpoint is longer than 500 characters"),
        ({"run": "r", "snapshot": "v" * 101}, "snapshot is longer than 100 characters"),
        ({"run": "r", "snapshot": "v\u0000"}, "snapshot contains a NUL character"),
    ):
        with pytest.raises(predictions.RunError, match=message):
            predictions.import_predictions(path, **options)
    row = {"case_id": str(cases[0].uuid), "pred": GOOD, "settings": {"model": "m" * 501}}
    long_model = _file(tmp_path, [row], "long.jsonl")
    with pytest.raises(predictions.RunError, match="longer than 500 .* settings.model"):
        predictions.import_predictions(long_model, run="r")
    assert predictions.import_predictions(path, run="r", snapshot="v99999999999").created == 1
    assert not Prediction.objects.exclude(run__snapshot_ref="v99999999999").exists()


def test_it_refuses_to_mix_checkpoints_in_a_run(cases: list[Any], tmp_path: Path) -> None:
    path = _file(tmp_path, [{"case_id": str(cases[0].uuid), "pred": GOOD}])
    predictions.import_predictions(path, run="r", checkpoint="ckpt-a")
    with pytest.raises(predictions.RunError, match="ckpt-a"):
        predictions.import_predictions(path, run="r", checkpoint="ckpt-b")


def test_the_command_prints_a_summary_and_fails_on_rejected_rows(
    cases: list[Any], tmp_path: Path, capsys: Any
) -> None:
    good = _file(tmp_path, [{"case_id": str(cases[0].uuid), "pred": GOOD}], "good.jsonl")
    call_command("import_predictions", str(good), "--run", "cli", "--checkpoint", "ckpt")
    assert "Imported 1 predictions into run cli, 0 rejected" in capsys.readouterr().out
    bad = _file(tmp_path, [{"case_id": str(cases[1].uuid), "pred": GOOD}, "oops"], "bad.jsonl")
    with pytest.raises(CommandError) as raised:
        call_command("import_predictions", str(bad), "--run", "cli")
    assert raised.value.returncode == 1
    captured = capsys.readouterr()
    assert "Imported 1 predictions into run cli, 1 rejected" in captured.out
    assert "bad.jsonl:line 2" in captured.err


# --- sending to review ---------------------------------------------------------------------------


@pytest.fixture
def run(cases: list[Any], tmp_path: Path) -> ModelRun:
    rows = [
        {"case_id": str(cases[0].uuid), "pred": GOOD},
        {"case_id": str(cases[1].uuid), "pred": WRONG},
        {
            "case_id": str(cases[2].uuid),
            "pred": "<think>The heart is normal.</think><answer>B</answer>",
        },
    ]
    predictions.import_predictions(_file(tmp_path, rows), run="to-review")
    return ModelRun.objects.get(name="to-review")


def test_it_sends_all_of_a_runs_chains_to_a_radiologist(
    run: ModelRun, alice: Any, carol: Any
) -> None:
    assert predictions.send_to_review(run, alice, by=carol).created == 3
    assert predictions.send_to_review(run, alice, by=carol).created == 0  # idempotent
    assert Assignment.objects.filter(reader=alice, chain__origin=Chain.Origin.MODEL).count() == 3


def test_chains_another_reader_holds_are_not_sent_again(
    run: ModelRun, alice: Any, bob: Any, carol: Any
) -> None:
    predictions.send_to_review(run, alice, by=carol, mode="lowest", count=1)
    sent = predictions.send_to_review(run, bob, by=carol)
    assert (sent.created, sent.taken) == (2, 1)
    assert "1 with another reader" in sent.message(bob)
    held = {a.chain_id for a in Assignment.objects.filter(reader=alice)}
    assert not held & {a.chain_id for a in Assignment.objects.filter(reader=bob)}
    lowest = predictions.send_to_review(run, bob, by=carol, mode="lowest", count=1)
    assert lowest.created == 0  # bob already has every chain alice does not


def test_it_sends_the_lowest_scoring_chains(run: ModelRun, alice: Any, carol: Any) -> None:
    predictions.send_to_review(run, alice, by=carol, mode="lowest", count=1)
    sent = Assignment.objects.get(reader=alice).chain
    lowest = run.predictions.order_by("radrscore").first()
    assert sent == lowest.chain


def test_a_seeded_sample_is_reproducible(run: ModelRun, alice: Any, bob: Any, carol: Any) -> None:
    picked = {}
    for reader in (alice, bob):
        predictions.send_to_review(run, reader, by=carol, mode="sample", count=2, seed=7)
        assignments = Assignment.objects.filter(reader=reader)
        picked[reader] = set(assignments.values_list("chain_id", flat=True))
        assignments.delete()  # free the chains again for the next reader
    assert len(picked[alice]) == 2 and picked[alice] == picked[bob]


def test_only_curators_send_to_review(
    client: Any, run: ModelRun, alice: Any, carol: Any, dave: Any
) -> None:
    url = reverse("annotation:run-send", args=[run.uuid])
    form = {"reader": alice.pk, "mode": "all"}
    client.force_login(dave)  # a researcher reads, but does not send
    assert client.post(url, form).status_code == 403
    client.force_login(alice)
    assert client.post(url, form).status_code == 403
    client.force_login(carol)
    response = client.post(url, form)
    assert response.status_code == 302
    assert Assignment.objects.filter(reader=alice).count() == 3


def test_a_radiologist_reviews_a_model_chain_and_sees_the_models_answer(
    client: Any, run: ModelRun, alice: Any, carol: Any
) -> None:
    predictions.send_to_review(run, alice, by=carol)
    wrong = run.predictions.get(correct=False, answer=["B"], chain__steps__text__contains="sharp")
    client.force_login(alice)
    page = client.get(reverse("annotation:chain", args=[wrong.chain.uuid])).content.decode()
    assert "Model's answer:" in page and "✗ wrong" in page
    assert "to-review" not in page  # the run's name is kept from the reader
    right = run.predictions.get(correct=True)
    assert (
        "✓ right"
        in client.get(reverse("annotation:chain", args=[right.chain.uuid])).content.decode()
    )


def test_a_mined_chain_shows_no_model_answer(
    client: Any, make_chain: Callable[..., Chain], alice: Any
) -> None:
    chain = make_chain(readers=(alice,))
    client.force_login(alice)
    assert (
        "Model's answer"
        not in client.get(reverse("annotation:chain", args=[chain.uuid])).content.decode()
    )


def test_verdicts_on_model_steps_reach_the_prm_export(
    run: ModelRun, alice: Any, carol: Any, tmp_path: Path
) -> None:
    from annotation import services
    from annotation.exporting import ExportOptions, export

    wrong = run.predictions.get(chain__steps__text__contains="sharp").chain
    services.assign_chains([wrong], alice, by=carol)
    for step in wrong.live_steps():
        verdict = (
            Step.Verdict.INCORRECT if "no pleural effusion" in step.text else Step.Verdict.CORRECT
        )
        step.mark(verdict, by=alice, expected=step.version)
    services.finish_chain(wrong, alice, "verify")
    export(ExportOptions(formats=("prm",), origins=("model",)), tmp_path / "snapshot", user=carol)
    rows = [
        json.loads(line)
        for split in ("train", "validation", "test")
        for line in (tmp_path / "snapshot" / "prm" / f"{split}.jsonl").read_text().splitlines()
    ]
    assert len(rows) == 1 and rows[0]["origin"] == "model"
    labels = dict(zip(rows[0]["completions"], rows[0]["labels"]))
    assert labels["There is no pleural effusion."] is False  # the negative the paper never had


# --- the API upload ------------------------------------------------------------------------------


def _upload(client: Any, user: Any, path: Path, **fields: str) -> Any:
    from rest_framework.authtoken.models import Token

    token, _ = Token.objects.get_or_create(user=user)
    with path.open("rb") as handle:
        return client.post(
            "/api/v1/runs/import/",
            {"file": handle, **fields},
            HTTP_AUTHORIZATION=f"Token {token.key}",
        )


def test_the_api_imports_predictions(
    client: Any, cases: list[Any], dave: Any, tmp_path: Path
) -> None:
    path = _file(tmp_path, [{"case_id": str(cases[0].uuid), "pred": GOOD}, "{bad"])
    response = _upload(client, dave, path, run="api-run", checkpoint="ckpt-api")
    assert response.status_code == 201
    body = response.json()
    assert (body["created"], body["rejected"]) == (1, 1)
    assert body["problems"] == [{"line": 2, "field": "", "reason": body["problems"][0]["reason"]}]
    again = _upload(client, dave, path, run="api-run")
    assert again.status_code == 200 and again.json()["duplicates"] == 1
    from rest_framework.authtoken.models import Token

    listed = client.get(
        "/api/v1/runs/", HTTP_AUTHORIZATION=f"Token {Token.objects.get(user=dave).key}"
    ).json()
    runs = listed["results"] if isinstance(listed, dict) else listed
    assert [(r["name"], r["checkpoint"], r["predictions"]) for r in runs] == [
        ("api-run", "ckpt-api", 1)
    ]


def test_radiologists_cannot_upload_predictions(
    client: Any, cases: list[Any], alice: Any, eve: Any, tmp_path: Path
) -> None:
    path = _file(tmp_path, [{"case_id": str(cases[0].uuid), "pred": GOOD}])
    assert _upload(client, alice, path, run="nope").status_code == 403
    assert _upload(client, eve, path, run="nope").status_code == 403
    assert not ModelRun.objects.exists()


def test_the_api_refuses_an_upload_without_a_file(client: Any, carol: Any) -> None:
    from rest_framework.authtoken.models import Token

    token, _ = Token.objects.get_or_create(user=carol)
    response = client.post(
        "/api/v1/runs/import/", {"run": "x"}, HTTP_AUTHORIZATION=f"Token {token.key}"
    )
    assert response.status_code == 400 and "file" in response.json()


def test_the_api_answers_with_the_problems_not_a_server_path(
    client: Any, cases: list[Any], dave: Any, tmp_path: Path, settings: Any
) -> None:
    rows = [{"case_id": str(cases[0].uuid), "pred": GOOD, "latency_ms": -5}]
    rows += [{"case_id": str(cases[1].uuid), "pred": "x\u0000"}] * 600
    rows += [{"case_id": str(cases[2].uuid), "pred": GOOD, "prompt_tokens": 3000000000}]
    response = _upload(client, dave, _file(tmp_path, rows), run="api-run")
    assert response.status_code == 200  # answered, nothing created: no 500
    body = response.json()
    assert (body["run"], body["created"], body["rejected"]) == (None, 0, 602)
    assert len(body["problems"]) == 500  # the first 500; `rejected` counts them all
    assert body["problems"][:2] == [
        {"line": 1, "field": "latency_ms", "reason": "latency_ms must be a non-negative number, not -5"},
        {"line": 2, "field": "pred", "reason": "contains a NUL character"},
    ]
    assert str(settings.IMPORT_REPORTS) not in body["summary"] and "see " not in body["summary"]
    assert "first 500" in body["summary"]
    assert not ModelRun.objects.exists()


def test_the_api_refuses_a_run_name_it_cannot_store(
    client: Any, cases: list[Any], carol: Any, tmp_path: Path
) -> None:
    path = _file(tmp_path, [{"case_id": str(cases[0].uuid), "pred": GOOD}])
    for fields in ({"run": "r\u0000"}, {"run": "r" * 201}, {"run": "r", "checkpoint": "\u0000"}):
        response = _upload(client, carol, path, **fields)
        assert response.status_code == 400, fields
    assert not ModelRun.objects.exists()


def test_it_finds_cases_by_their_fields_when_rows_carry_no_id(db: Any, tmp_path: Path) -> None:
    # A RadRBench file without item ids, imported, then run through `inference generate`,
    # whose rows carry the case's fields: they name the case by its content.
    from annotation.importing import import_cases

    case = {
        "question": "Does this chest X-ray show edema? Options:\nA) Yes\nB) No",
        "answer": "B",
        "reason_steps": ["The vessels are sharp.", "There is no edema."],
        "original_report": "FINDINGS: No edema.",
        "task": "chexpert_binary",
    }
    cases_file = _file(tmp_path, [case], "cases.jsonl")
    assert import_cases(cases_file, source="no-ids").imported == 1
    row = {**case, "case_id": "0123abcd", "pred": "<think>No edema.</think><answer>B</answer>"}
    result = predictions.import_predictions(_file(tmp_path, [row]), run="r", source="no-ids")
    assert (result.created, result.rejected) == (1, 0)
    assert Prediction.objects.get().correct is True


def test_an_unscored_row_scores_as_the_score_command_scores_it(
    cases: list[Any], tmp_path: Path
) -> None:
    """The workbench and `python -m inference score` run one offline judge with one setting."""
    from inference.scoring import score_row

    case = cases[0]
    partial = "<think>\nThe costophrenic angles need review.\nThere is a pleural effusion.\n</think>\n<answer>A</answer>"
    predictions.import_predictions(
        _file(tmp_path, [{"case_id": str(case.uuid), "pred": partial}]), run="r"
    )
    imported = Prediction.objects.get()
    cli = score_row(
        {
            "pred": partial,
            "question": case.question,
            "answer": case.answer,
            "reason_steps": list(REFERENCE_STEPS),
            "original_report": case.report.text,
        }
    )
    assert imported.radrscore is not None and 0 < imported.radrscore < 1
    for name in predictions.METRICS:
        assert getattr(imported, name) == pytest.approx(cli[name], abs=1e-6), name
    assert imported.details["missed"] == cli["missed"]


def test_a_second_row_for_a_case_is_reported_not_dropped(cases: list[Any], tmp_path: Path) -> None:
    """Two models' outputs in one file: the second row of a case is a problem with its line."""
    rows = [
        {"case_id": str(cases[0].uuid), "pred": GOOD, "model": "a"},
        {"case_id": str(cases[1].uuid), "pred": GOOD, "model": "a"},
        {"case_id": str(cases[0].uuid), "pred": WRONG, "model": "b"},
    ]
    result = predictions.import_predictions(_file(tmp_path, rows), run="mixed")
    assert (result.created, result.rejected, result.duplicates) == (2, 1, 0)
    (problem,) = result.problems
    assert (problem.line, problem.field) == (3, "case")
    assert "second prediction for the case of line 1" in problem.reason
    assert Prediction.objects.get(run__name="mixed", case=cases[0]).correct is True
