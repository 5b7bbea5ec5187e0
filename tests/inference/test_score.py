"""`python -m inference score`: offline judge, the LLM judge on loopback, joining with cases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from inference.__main__ import main
from inference.config import ConfigError
from inference.openai_client import ChatClient
from inference.score import ScoreConfig, make_judge, run
from inference.scoring import clear_caches, score_row
from tests.inference.conftest import EDEMA_CASE, EFFUSION_CASE, FakeEndpoint, Reply, read_rows

GOOD = (
    "<think>\nThe left costophrenic angle is blunted.\nThere is a left pleural effusion.\n"
    "No pneumothorax is seen.\n</think>\n<answer>A</answer>"
)


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_it_scores_a_good_prediction_high_and_an_empty_one_zero() -> None:
    good = score_row({**EFFUSION_CASE, "pred": GOOD})
    assert good["accuracy"] == 1.0 and good["correct"] is True
    assert (good["factuality"], good["completeness"], good["effectiveness"]) == (1.0, 1.0, 1.0)
    assert good["radrscore"] == 1.0
    assert {"observation": "Pleural Effusion", "status": "present"} in good["matched"]
    empty = score_row({**EFFUSION_CASE, "pred": ""})
    assert empty["accuracy"] == 0.0
    assert (empty["factuality"], empty["completeness"], empty["effectiveness"]) == (0.0, 0.0, 0.0)
    assert len(empty["missed"]) == 2


def test_it_explains_a_contradicting_prediction() -> None:
    wrong = score_row(
        {**EFFUSION_CASE, "pred": "<think>There is no pleural effusion.</think><answer>B</answer>"}
    )
    assert wrong["accuracy"] == 0.0
    assert wrong["contradicted"] == [{"observation": "Pleural Effusion", "status": "absent"}]
    assert wrong["factuality"] == 0.0


def test_it_leaves_accuracy_null_when_the_gold_answer_names_no_option() -> None:
    row = score_row({**EFFUSION_CASE, "answer": "Z", "pred": GOOD})
    assert row["accuracy"] is None and row["correct"] is None


def test_the_command_joins_predictions_with_their_cases(tmp_path: Path, capsys: Any) -> None:
    predictions = _write(
        tmp_path / "predictions.jsonl",
        [
            {"case_key": "case-effusion", "model": "m1", "task": "chexpert_binary", "pred": GOOD},
            {
                "case_key": "case-edema",
                "model": "m1",
                "task": "chexpert_binary",
                "pred": "<answer>B</answer>",
            },
        ],
    )
    cases = _write(tmp_path / "cases.jsonl", [EFFUSION_CASE, EDEMA_CASE])
    out = tmp_path / "scores.jsonl"
    assert (
        main(["score", "--predictions", str(predictions), "--cases", str(cases), "--out", str(out)])
        == 0
    )
    rows = read_rows(out)
    assert [row["accuracy"] for row in rows] == [1.0, 1.0]
    assert rows[0]["original_report"] == EFFUSION_CASE["original_report"]  # joined
    assert rows[0]["judge"] == "offline"
    captured = capsys.readouterr()
    assert "Scored 2 predictions" in captured.out
    assert "m1" in captured.err  # the per-model table


def test_the_command_reports_unreadable_lines(tmp_path: Path) -> None:
    predictions = tmp_path / "predictions.jsonl"
    predictions.write_text(
        json.dumps({**EFFUSION_CASE, "pred": GOOD}) + "\n{broken\n", encoding="utf-8"
    )
    out = tmp_path / "scores.jsonl"
    assert main(["score", "--predictions", str(predictions), "--out", str(out)]) == 1
    assert len(read_rows(out)) == 1


def test_the_offline_judge_runs_in_worker_processes(tmp_path: Path) -> None:
    rows = [{**EFFUSION_CASE, "pred": GOOD, "case_key": f"c{i}"} for i in range(40)]
    predictions = _write(tmp_path / "predictions.jsonl", rows)
    out = tmp_path / "scores.jsonl"
    assert main(["score", "--predictions", str(predictions), "--out", str(out), "--jobs", "2"]) == 0
    scored = read_rows(out)
    assert [row["case_key"] for row in scored] == [f"c{i}" for i in range(40)]  # order kept
    assert all(row["radrscore"] == 1.0 for row in scored)


def test_jobs_give_the_same_rows_in_the_same_order_as_one_process(tmp_path: Path) -> None:
    preds = [GOOD, "", "<think>No effusion.</think><answer>B</answer>"]
    rows = [
        {**case, "pred": pred, "case_key": f"{case['case_key']}-{i % 3}", "model": f"m{i % 2}"}
        for i in range(30)
        for case in (EFFUSION_CASE, EDEMA_CASE)
        for pred in [preds[i % 3]]
    ]
    predictions = _write(tmp_path / "predictions.jsonl", rows)
    outs = []
    for jobs in ("1", "2"):
        out = tmp_path / f"scores-{jobs}.jsonl"
        main(["score", "--predictions", str(predictions), "--out", str(out), "--jobs", jobs])
        outs.append(out.read_text(encoding="utf-8"))
    assert outs[0] == outs[1]
    assert [r["pred"] for r in map(json.loads, outs[1].splitlines())] == [r["pred"] for r in rows]


def test_cases_with_the_same_question_do_not_share_their_reference_reading() -> None:
    clear_caches()
    first = score_row({**EFFUSION_CASE, "pred": GOOD})
    other = {
        **EFFUSION_CASE,
        "reason_steps": ["The costophrenic angles are sharp.", "There is no pleural effusion."],
        "answer": "B",
        "pred": GOOD,
    }
    second = score_row(other)
    assert {"observation": "Pleural Effusion", "status": "present"} in first["matched"]
    assert {"observation": "Pleural Effusion", "status": "absent"} in second["missed"]
    assert second["accuracy"] == 0.0
    again = score_row({**EFFUSION_CASE, "pred": GOOD})  # from the cache: the same as cold
    assert again == first
    clear_caches()
    assert score_row({**EFFUSION_CASE, "pred": GOOD}) == first


# --- the LLM judge ---------------------------------------------------------------------------


def paper_like_judge(messages: list[dict[str, Any]]) -> str:
    """Answers the four judge questions (and the accuracy one) the way GPT-4o would, roughly."""
    prompt = messages[-1]["content"]
    if "List every key medical observation" in prompt:
        findings = [{"observation": "pleural effusion", "status": "present"}]
        if "costophrenic angle is blunted, indicating" in prompt:  # the reference chain
            findings.append({"observation": "pneumothorax", "status": "not present"})
        return "```json\n" + json.dumps({"key_conclusion": findings}) + "\n```"
    if "Ground truth findings" in prompt:
        return json.dumps(
            {
                "recalled_findings": [{"observation": "pleural effusion", "status": "present"}],
                "recalled_count": 1,
            }
        )
    if "Judge a model's findings" in prompt:
        return json.dumps(
            {
                "correct_steps": [{"observation": "pleural effusion", "status": "present"}],
                "correct_count": 1,
            }
        )
    if "Judge how efficiently" in prompt:
        return json.dumps(
            {
                "effective_steps": ["There is a left pleural effusion."],
                "effective_count": 2,
                "ineffective_count": 1,
            }
        )
    return json.dumps({"correct": "yes"})


def _llm(endpoint: FakeEndpoint, predictions: Path, out: Path, cache: Path | None) -> int:
    """`score --judge llm` against the fake endpoint; no `cache`: the default cache folder."""
    args = [
        "score",
        "--predictions",
        str(predictions),
        "--out",
        str(out),
        "--judge",
        "llm",
        "--judge-base-url",
        endpoint.url,
        "--judge-model",
        "judge-4o",
    ]
    if cache is not None:
        args += ["--cache-dir", str(cache), "--max-retries", "0"]
    return main(args)


def test_the_llm_judge_computes_components_as_the_paper_does(
    endpoint: FakeEndpoint, tmp_path: Path
) -> None:
    endpoint.answer = paper_like_judge
    predictions = _write(tmp_path / "p.jsonl", [{**EFFUSION_CASE, "pred": GOOD, "model": "m1"}])
    out, cache = tmp_path / "scores.jsonl", tmp_path / "cache"
    assert _llm(endpoint, predictions, out, cache) == 0
    row = read_rows(out)[0]
    assert row["judge"] == "llm"
    assert row["completeness"] == 0.5  # 1 of 2 reference findings recalled
    assert row["factuality"] == 1.0  # 1 of 1 model finding correct
    assert row["effectiveness"] == pytest.approx(2 / 3, abs=1e-6)
    assert row["radrscore"] == pytest.approx((0.5 + 1 + 2 / 3) / 3, abs=1e-6)
    assert row["missed"] == [{"observation": "pneumothorax", "status": "not present"}]
    assert row["judge_correct"] is True
    assert all(request["model"] == "judge-4o" for request in endpoint.requests)
    assert (
        len(endpoint.requests) == 6
    )  # two key-finding questions, recall, precision, efficiency, accuracy


def test_the_llm_judge_answers_come_from_the_cache_the_second_time(
    endpoint: FakeEndpoint, tmp_path: Path
) -> None:
    endpoint.answer = paper_like_judge
    predictions = _write(tmp_path / "p.jsonl", [{**EFFUSION_CASE, "pred": GOOD}])
    cache = tmp_path / "cache"
    _llm(endpoint, predictions, tmp_path / "first.jsonl", cache)
    asked = len(endpoint.requests)
    assert _llm(endpoint, predictions, tmp_path / "second.jsonl", cache) == 0
    assert len(endpoint.requests) == asked  # nothing asked again
    assert (
        read_rows(tmp_path / "first.jsonl")[0]["radrscore"]
        == read_rows(tmp_path / "second.jsonl")[0]["radrscore"]
    )


def test_the_llm_judge_asks_again_once_then_fails_the_row_on_garbage(
    endpoint: FakeEndpoint, tmp_path: Path
) -> None:
    def garbage_recall(messages: list[dict[str, Any]]) -> str:
        if "Ground truth findings" in messages[-1]["content"]:
            return "I think about two of them, roughly."
        return paper_like_judge(messages)

    endpoint.answer = garbage_recall
    predictions = _write(tmp_path / "p.jsonl", [{**EFFUSION_CASE, "pred": GOOD}])
    out, cache = tmp_path / "scores.jsonl", tmp_path / "cache"
    assert _llm(endpoint, predictions, out, cache) == 1
    row = read_rows(out)[0]
    assert "did not answer in JSON" in row["judge_error"]
    assert row["radrscore"] is None and row["accuracy"] == 1.0  # accuracy needs no judge
    recall_asks = [
        r for r in endpoint.requests if "Ground truth findings" in r["messages"][-1]["content"]
    ]
    assert len(recall_asks) == 2
    endpoint.answer = paper_like_judge  # the endpoint recovers: the garbage was never cached
    assert _llm(endpoint, predictions, out, cache) == 0


def test_the_llm_judge_retries_a_rate_limit(endpoint: FakeEndpoint, tmp_path: Path) -> None:
    endpoint.answer = paper_like_judge
    endpoint.script = [Reply(429, headers={"Retry-After": "0"})]
    predictions = _write(tmp_path / "p.jsonl", [{**EFFUSION_CASE, "pred": GOOD}])
    out = tmp_path / "scores.jsonl"
    assert (
        main(
            [
                "score",
                "--predictions",
                str(predictions),
                "--out",
                str(out),
                "--judge",
                "llm",
                "--judge-base-url",
                endpoint.url,
                "--cache-dir",
                str(tmp_path / "cache"),
            ]
        )
        == 0
    )
    assert read_rows(out)[0]["radrscore"] is not None


# --- settings fail closed ----------------------------------------------------------------------


def test_it_refuses_the_llm_judge_without_an_endpoint(tmp_path: Path, capsys: Any) -> None:
    # No --judge-base-url and no JUDGE_BASE_URL/OPENAI_BASE_URL (the fixture clears them): the
    # openai package would fall back to api.openai.com. It stops at once instead.
    predictions = _write(tmp_path / "p.jsonl", [{**EFFUSION_CASE, "pred": GOOD}])
    out = tmp_path / "scores.jsonl"
    with pytest.raises(SystemExit) as stopped:
        main(["score", "--predictions", str(predictions), "--out", str(out), "--judge", "llm"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "--judge llm needs --judge-base-url or JUDGE_BASE_URL" in err
    assert "Traceback" not in err and not out.exists()


def test_the_chat_client_has_no_default_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="OPENAI_BASE_URL"):
        ChatClient(model="m")
    with pytest.raises(ConfigError, match="http:// or https://"):
        ChatClient(base_url="127.0.0.1:8000/v1", model="m")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    assert ChatClient(model="m").base_url == "http://127.0.0.1:9/v1"  # configured: used


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--jobs", "0", "--jobs must be at least 1, not 0"),
        ("--jobs", "-2", "--jobs must be at least 1, not -2"),
        ("--workers", "0", "--workers must be at least 1, not 0"),
        ("--max-retries", "-1", "--max-retries must be at least 0, not -1"),
    ],
)
def test_it_rejects_an_out_of_range_option(
    tmp_path: Path, capsys: Any, flag: str, value: str, message: str
) -> None:
    predictions = _write(tmp_path / "p.jsonl", [{**EFFUSION_CASE, "pred": GOOD}])
    out = tmp_path / "scores.jsonl"
    with pytest.raises(SystemExit) as stopped:
        main(["score", "--predictions", str(predictions), "--out", str(out), flag, value])
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_it_ends_with_one_line_when_the_judge_endpoint_is_down(
    closed_url: str, tmp_path: Path, capsys: Any
) -> None:
    # Nothing listens there: asking for the model list gives up after its one attempt.
    predictions = _write(tmp_path / "p.jsonl", [{**EFFUSION_CASE, "pred": GOOD}])
    out, cache = tmp_path / "scores.jsonl", tmp_path / "cache"
    code = main(
        [
            "score",
            "--predictions",
            str(predictions),
            "--out",
            str(out),
            "--judge",
            "llm",
            "--judge-base-url",
            closed_url,
            "--max-retries",
            "0",
            "--cache-dir",
            str(cache),
        ]
    )
    assert code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("python -m inference score: error: endpoint: http://127.0.0.1:")
    assert "gave up after 1 attempts" in err
    assert "Traceback" not in err and len(err.splitlines()) == 1
    assert not cache.exists()  # nothing cached, nothing created


@pytest.mark.parametrize("workers", ["1", "2"])
def test_it_stops_when_the_judge_endpoint_keeps_failing(
    endpoint: FakeEndpoint, tmp_path: Path, capsys: Any, workers: str
) -> None:
    # The model is named, so the first contact is a judge question: its 500s outlast the retries.
    # Every later row would wait and fail the same way: the run stops at the first.
    endpoint.script = [Reply(500)] * 4
    rows = [{**EFFUSION_CASE, "pred": GOOD, "case_key": f"c{i}"} for i in range(20)]
    predictions = _write(tmp_path / "p.jsonl", rows)
    out = tmp_path / "scores.jsonl"
    code = main(
        [
            "score",
            "--predictions",
            str(predictions),
            "--out",
            str(out),
            "--judge",
            "llm",
            "--judge-base-url",
            endpoint.url,
            "--judge-model",
            "judge-4o",
            "--max-retries",
            "0",
            "--workers",
            workers,
            "--cache-dir",
            str(tmp_path / "cache"),
        ]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "error: endpoint:" in err and "gave up after 1 attempts" in err
    assert "Traceback" not in err
    assert len(endpoint.requests) < 20  # not one request after another for every row


def test_the_judge_cache_follows_the_var_dir_and_is_made_when_first_used(
    endpoint: FakeEndpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint.answer = paper_like_judge
    var = tmp_path / "elsewhere"
    monkeypatch.setenv("WORKBENCH_VAR_DIR", str(var))
    predictions = _write(tmp_path / "p.jsonl", [{**EFFUSION_CASE, "pred": GOOD}])
    config = ScoreConfig(
        predictions=predictions,
        out=tmp_path / "scores.jsonl",
        judge="llm",
        judge_base_url=endpoint.url,
        judge_model="judge-4o",
    )
    judge = make_judge(config)
    assert judge.cache_dir == var / "judge-cache"  # type: ignore[attr-defined]
    assert not var.exists()  # not before an answer is cached
    run(config, judge)
    assert len(list((var / "judge-cache").glob("*/*.json"))) == 6
    # Without WORKBENCH_VAR_DIR: var/ at the repository root, wherever the command runs from.
    monkeypatch.delenv("WORKBENCH_VAR_DIR")
    monkeypatch.chdir(tmp_path)
    judge = make_judge(config)
    root = Path(__file__).resolve().parents[2]
    assert judge.cache_dir == root / "var" / "judge-cache"  # type: ignore[attr-defined]


def test_it_refuses_an_empty_var_dir(
    endpoint: FakeEndpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("WORKBENCH_VAR_DIR", " ")
    predictions = _write(tmp_path / "p.jsonl", [{**EFFUSION_CASE, "pred": GOOD}])
    with pytest.raises(SystemExit) as stopped:
        _llm(endpoint, predictions, tmp_path / "scores.jsonl", None)
    assert stopped.value.code == 2
    assert "WORKBENCH_VAR_DIR is set but empty" in capsys.readouterr().err
    assert endpoint.requests == []


def test_the_llm_judge_asks_again_for_a_damaged_cache_entry(
    endpoint: FakeEndpoint, tmp_path: Path
) -> None:
    endpoint.answer = paper_like_judge
    predictions = _write(tmp_path / "p.jsonl", [{**EFFUSION_CASE, "pred": GOOD}])
    cache = tmp_path / "cache"
    assert _llm(endpoint, predictions, tmp_path / "first.jsonl", cache) == 0
    asked = len(endpoint.requests)
    damaged = next(cache.glob("*/*.json"))
    damaged.write_text('{"answer": ', encoding="utf-8")  # cut short by a full disk, say
    assert _llm(endpoint, predictions, tmp_path / "second.jsonl", cache) == 0
    assert len(endpoint.requests) == asked + 1  # that one question, asked again
    assert json.loads(damaged.read_text(encoding="utf-8"))["model"] == "judge-4o"


# --- bad input: reported with file and line, never scored, never a traceback ------------------


def _score(tmp_path: Path, predictions: Path, *extra: str) -> tuple[int, list[dict[str, Any]]]:
    out = tmp_path / "scores.jsonl"
    code = main(["score", "--predictions", str(predictions), "--out", str(out), *extra])
    return code, read_rows(out) if out.exists() else []


def test_it_reports_a_line_that_is_not_utf8(tmp_path: Path, capsys: Any) -> None:
    predictions = tmp_path / "predictions.jsonl"
    predictions.write_bytes(
        json.dumps({**EFFUSION_CASE, "pred": GOOD}).encode()
        + b'\n{"case_key": "case-edema", "pred": "caf\xe9"}\n'  # Latin-1, not UTF-8
        + json.dumps({**EDEMA_CASE, "pred": "<answer>B</answer>"}).encode()
        + b"\n"
    )
    code, rows = _score(tmp_path, predictions)
    assert code == 1
    assert [row["case_key"] for row in rows] == ["case-effusion", "case-edema"]
    err = capsys.readouterr().err
    assert f"{predictions}:2: not UTF-8 text" in err and "Traceback" not in err


def test_it_reports_a_cases_file_that_is_not_utf8(tmp_path: Path, capsys: Any) -> None:
    predictions = _write(tmp_path / "p.jsonl", [{"case_key": "case-effusion", "pred": GOOD}])
    cases = tmp_path / "cases.jsonl"
    cases.write_bytes(
        json.dumps(EFFUSION_CASE).encode()
        + b"\n"
        + json.dumps(EDEMA_CASE).encode().replace(b"edema?", b"\xe9d\xe8me?")
        + b"\n"
    )
    code, rows = _score(tmp_path, predictions, "--cases", str(cases))
    assert code == 1
    assert [row["accuracy"] for row in rows] == [1.0]
    err = capsys.readouterr().err
    assert f"{cases}:2: not UTF-8 text" in err and "Traceback" not in err


def test_it_accepts_a_byte_order_mark(tmp_path: Path) -> None:
    predictions = tmp_path / "predictions.jsonl"
    predictions.write_text(
        json.dumps({"case_key": "case-effusion", "pred": GOOD}) + "\n", encoding="utf-8-sig"
    )
    cases = tmp_path / "cases.jsonl"
    cases.write_text(json.dumps([EFFUSION_CASE, EDEMA_CASE]), encoding="utf-8-sig")  # an array
    code, rows = _score(tmp_path, predictions, "--cases", str(cases))
    assert code == 0
    assert rows[0]["case_key"] == "case-effusion" and rows[0]["accuracy"] == 1.0


def test_it_reports_rows_whose_case_is_not_in_the_cases_file(tmp_path: Path, capsys: Any) -> None:
    predictions = _write(
        tmp_path / "p.jsonl",
        [
            {"case_key": "case-effusion", "pred": GOOD},  # joined
            {"case_key": "case-unknown", "pred": GOOD},  # no such case
            {"model": "m1", "pred": GOOD},  # nothing to join on
            {"item_id": "item-1", "pred": GOOD},  # joined on its item id
        ],
    )
    cases = _write(tmp_path / "cases.jsonl", [EFFUSION_CASE, EDEMA_CASE])
    code, rows = _score(tmp_path, predictions, "--cases", str(cases))
    assert code == 1
    assert [row["question"] for row in rows] == [EFFUSION_CASE["question"]] * 2
    err = capsys.readouterr().err
    assert f"{predictions}:2: no case with case_key 'case-unknown' in {cases}" in err
    assert f"{predictions}:3: no id to join with --cases on (" in err
    assert f"{predictions}:1:" not in err and f"{predictions}:4:" not in err


def test_it_reports_every_row_against_an_empty_cases_file(tmp_path: Path, capsys: Any) -> None:
    predictions = _write(
        tmp_path / "p.jsonl",
        [{"case_key": "case-effusion", "pred": GOOD}, {"case_key": "case-edema", "pred": ""}],
    )
    cases = tmp_path / "cases.jsonl"
    cases.write_text("\n", encoding="utf-8")
    code, rows = _score(tmp_path, predictions, "--cases", str(cases))
    assert (code, rows) == (1, [])
    err = capsys.readouterr().err
    assert f"{predictions}:1: no case with case_key 'case-effusion' in {cases} (it holds no" in err
    assert f"{predictions}:2: no case with case_key 'case-edema'" in err


def test_it_reports_an_id_that_names_several_cases(tmp_path: Path, capsys: Any) -> None:
    # The real cases file has one item (a study) under several tasks: its item id is ambiguous.
    predictions = _write(tmp_path / "p.jsonl", [{"item_id": "item-1", "pred": GOOD}])
    other_task = {**EFFUSION_CASE, "case_key": "case-effusion-single", "task": "single"}
    cases = _write(tmp_path / "cases.jsonl", [EFFUSION_CASE, other_task])
    code, rows = _score(tmp_path, predictions, "--cases", str(cases))
    assert (code, rows) == (1, [])
    assert "item_id 'item-1' names 2 cases (lines 1, 2)" in capsys.readouterr().err


def test_it_reports_rows_without_the_case_fields_the_judge_needs(
    tmp_path: Path, capsys: Any
) -> None:
    # Scoring these used to give accuracy 0 and made-up components for every row.
    predictions = _write(
        tmp_path / "p.jsonl",
        [
            {"case_key": "case-effusion", "pred": GOOD},  # the released shape, without --cases
            {**EFFUSION_CASE, "pred": GOOD},  # complete
            {**EFFUSION_CASE, "reason_steps": None, "pred": GOOD},  # no reference at all
            {**EFFUSION_CASE, "answer": 1, "pred": GOOD},  # not text
            {**EFFUSION_CASE, "reference_findings": ["Effusion"], "pred": GOOD},  # not objects
        ],
    )
    code, rows = _score(tmp_path, predictions)
    assert code == 1
    assert [row["accuracy"] for row in rows] == [1.0]
    err = capsys.readouterr().err
    assert (
        f"{predictions}:1: missing question, answer, reason_steps (or reference_steps, "
        "reference_findings) (pass --cases to join rows with their cases)"
    ) in err
    assert f"{predictions}:3: missing reason_steps" in err
    assert f"{predictions}:4: answer should be text, not a number" in err
    assert f"{predictions}:5: reference_findings should be a list of objects" in err


def test_the_llm_judge_needs_the_report_and_the_reference_chain(
    endpoint: FakeEndpoint, tmp_path: Path, capsys: Any
) -> None:
    endpoint.answer = paper_like_judge
    grpo_like = {k: v for k, v in EFFUSION_CASE.items() if k not in ("reason_steps",)}
    grpo_like["reference_findings"] = [{"observation": "Pleural Effusion", "status": "present"}]
    no_report = {k: v for k, v in EFFUSION_CASE.items() if k != "original_report"}
    predictions = _write(
        tmp_path / "p.jsonl", [{**grpo_like, "pred": GOOD}, {**no_report, "pred": GOOD}]
    )
    assert _llm(endpoint, predictions, tmp_path / "scores.jsonl", tmp_path / "cache") == 1
    err = capsys.readouterr().err
    assert f"{predictions}:1: missing reason_steps (or reference_steps)" in err
    assert f"{predictions}:2: missing original_report (or report)" in err
    assert endpoint.requests == []
    # The offline judge reads findings, and falls back on them without a report.
    code, rows = _score(tmp_path, predictions)
    assert code == 0 and len(rows) == 2


def test_it_rejects_a_pred_that_is_not_text_and_scores_an_empty_one(
    tmp_path: Path, capsys: Any
) -> None:
    predictions = _write(
        tmp_path / "p.jsonl",
        [
            {**EFFUSION_CASE, "pred": None},
            {**EFFUSION_CASE, "pred": 123},
            {**EFFUSION_CASE, "pred": ""},  # the model wrote nothing: a wrong answer, scored
            {**EFFUSION_CASE},
        ],
    )
    code, rows = _score(tmp_path, predictions)
    assert code == 1
    assert [(row["pred"], row["accuracy"], row["radrscore"]) for row in rows] == [("", 0.0, 0.0)]
    err = capsys.readouterr().err
    assert f"{predictions}:1: `pred` should be text, not null" in err
    assert f"{predictions}:2: `pred` should be text, not a number" in err
    assert f"{predictions}:4: no `pred` field" in err
    assert err.index(":1: `pred`") < err.index(":2: `pred`") < err.index(":4: no `pred`")


def test_an_empty_output_alone_scores_zero_and_exits_zero(tmp_path: Path) -> None:
    predictions = _write(tmp_path / "p.jsonl", [{**EDEMA_CASE, "pred": ""}])
    code, rows = _score(tmp_path, predictions)
    assert code == 0 and rows[0]["accuracy"] == 0.0


def test_it_reports_a_file_it_cannot_read_in_one_line(tmp_path: Path, capsys: Any) -> None:
    predictions = tmp_path / "p.jsonl"
    predictions.mkdir()  # a folder where a file was expected
    with pytest.raises(SystemExit) as stopped:
        main(["score", "--predictions", str(predictions), "--out", str(tmp_path / "s.jsonl")])
    assert stopped.value.code == 2
    assert f"{predictions}: no such file" in capsys.readouterr().err
