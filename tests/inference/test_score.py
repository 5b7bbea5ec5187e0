"""`python -m inference score`: offline judge, the LLM judge on loopback, joining with cases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from inference.__main__ import main
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


def _llm(endpoint: FakeEndpoint, predictions: Path, out: Path, cache: Path) -> int:
    return main(
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
            "--cache-dir",
            str(cache),
            "--max-retries",
            "0",
        ]
    )


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
