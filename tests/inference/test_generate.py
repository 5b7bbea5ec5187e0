"""`python -m inference generate` against an OpenAI-protocol server on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cxr.prompts import SYSTEM_PROMPT
from inference.__main__ import main
from inference.backends import OpenAIBackend, Sampling
from inference.generate import GenerateConfig, run
from inference.openai_client import ChatClient, EndpointError
from tests.inference.conftest import FakeEndpoint, Reply, read_rows


def _config(endpoint: FakeEndpoint, cases: Path, out: Path, **extra: object) -> GenerateConfig:
    extra.setdefault("concurrency", 2)
    return GenerateConfig(model=endpoint.url, cases=cases, out=out, **extra)  # type: ignore[arg-type]


def _backend(endpoint: FakeEndpoint, waits: list[float], **client: object) -> OpenAIBackend:
    chat = ChatClient(base_url=endpoint.url, sleep=waits.append, **client)  # type: ignore[arg-type]
    return OpenAIBackend(chat, Sampling(max_new_tokens=64), concurrency=2)


def test_it_writes_one_row_per_case_with_the_parsed_output(
    endpoint: FakeEndpoint, cases_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "predictions.jsonl"
    assert (
        main(["generate", "--model", endpoint.url, "--cases", str(cases_file), "--out", str(out)])
        == 0
    )
    rows = read_rows(out)
    assert [row["case_id"] for row in rows] == ["case-effusion", "case-edema"]  # input order
    first = rows[0]
    assert first["model"] == "tiny-served"  # the first model the server lists
    assert first["settings"]["backend"] == "openai"
    assert first["settings"]["temperature"] == 0.0
    assert first["pred"].startswith("<think>")
    assert first["parsed"] == {
        "answer_text": "A",
        "letters": ["A"],
        "steps": ["The costophrenic angle is blunted."],
        "well_formed": True,
    }
    assert (first["prompt_tokens"], first["completion_tokens"], first["attempts"]) == (42, 7, 1)
    assert first["latency_ms"] >= 0
    # The case's evaluation fields travel with the row, so `score` can read the file as is.
    assert first["answer"] == "A" and first["reason_steps"][1] == "No pneumothorax is seen."
    assert first["item_id"] == "item-1"


def test_it_sends_the_training_prompt_with_images_first(
    endpoint: FakeEndpoint, cases_file: Path, tmp_path: Path
) -> None:
    run(_config(endpoint, cases_file, tmp_path / "out.jsonl", temperature=0.7, seed=3))
    sent = {json.dumps(r["messages"][1]["content"][-1]): r for r in endpoint.requests}
    with_image = next(r for r in endpoint.requests if len(r["messages"][1]["content"]) == 2)
    system, user = with_image["messages"]
    assert system == {"role": "system", "content": SYSTEM_PROMPT}
    assert user["content"][0]["type"] == "image_url"
    assert user["content"][0]["image_url"]["url"].startswith("data:image/png;base64,iVBOR")
    assert user["content"][1] == {
        "type": "text",
        "text": "Does this chest X-ray show pleural effusion? Options:\nA) Yes\nB) No",
    }
    assert (with_image["temperature"], with_image["seed"], with_image["max_tokens"]) == (
        0.7,
        3,
        1024,
    )
    assert len(sent) == 2


def test_it_retries_after_429_and_5xx_with_backoff(
    endpoint: FakeEndpoint, cases_file: Path, tmp_path: Path
) -> None:
    endpoint.script = [Reply(429, headers={"Retry-After": "0"}), Reply(503)]
    waits: list[float] = []
    result = run(
        _config(endpoint, cases_file, tmp_path / "out.jsonl"), backend=_backend(endpoint, waits)
    )
    rows = read_rows(tmp_path / "out.jsonl")
    assert result.failed == 0
    assert sorted(row["attempts"] for row in rows) in (
        [1, 3],
        [2, 2],
    )  # two workers share the failures
    assert 0 in waits  # the 429's Retry-After is honoured; the 503 waits the backoff
    assert len(waits) == 2
    assert len(endpoint.requests) == 4


def test_it_gives_up_after_its_retries_and_reports_the_case(
    endpoint: FakeEndpoint, cases_file: Path, tmp_path: Path
) -> None:
    endpoint.script = [Reply(500)] * 3
    waits: list[float] = []
    backend = _backend(endpoint, waits, max_retries=1)
    result = run(
        _config(endpoint, cases_file, tmp_path / "out.jsonl", concurrency=1), backend=backend
    )
    rows = read_rows(tmp_path / "out.jsonl")
    assert result.failed == 1
    failed = [row for row in rows if "error" in row]
    assert len(failed) == 1 and "gave up after 2 attempts" in failed[0]["error"]
    assert failed[0]["pred"] == ""
    # One retry per case, each after the first backoff (the third 500 hits the second case).
    assert waits == pytest.approx([1.0, 1.0], rel=0.3)


def test_it_does_not_retry_a_client_error(endpoint: FakeEndpoint) -> None:
    endpoint.script = [Reply(400)]
    client = ChatClient(base_url=endpoint.url, model="m", sleep=lambda s: None)
    with pytest.raises(EndpointError, match="HTTP 400"):
        client.complete([{"role": "user", "content": "hi"}])
    assert len(endpoint.requests) == 1


def test_it_keeps_garbage_output_and_parses_what_it_can(
    endpoint: FakeEndpoint, cases_file: Path, tmp_path: Path
) -> None:
    endpoint.answer = lambda messages: "<think><think>lorem </answer> ipsum <answer>"
    out = tmp_path / "out.jsonl"
    assert (
        main(["generate", "--model", endpoint.url, "--cases", str(cases_file), "--out", str(out)])
        == 0
    )
    row = read_rows(out)[0]
    assert row["pred"] == "<think><think>lorem </answer> ipsum <answer>"  # kept verbatim
    assert row["parsed"]["letters"] == [] and row["parsed"]["well_formed"] is False


def test_it_reports_a_missing_image_as_a_failed_case(
    endpoint: FakeEndpoint, cases_file: Path, tmp_path: Path
) -> None:
    (cases_file.parent / "images" / "effusion.png").unlink()
    out = tmp_path / "out.jsonl"
    assert (
        main(["generate", "--model", endpoint.url, "--cases", str(cases_file), "--out", str(out)])
        == 1
    )
    rows = read_rows(out)
    assert "effusion.png" in rows[0]["error"]
    assert "error" not in rows[1]


def test_it_resumes_where_a_run_stopped(
    endpoint: FakeEndpoint, cases_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    run(_config(endpoint, cases_file, out, limit=1))
    assert len(endpoint.requests) == 1
    result = run(_config(endpoint, cases_file, out, resume=True))
    assert (result.skipped, result.written) == (1, 1)
    assert [row["case_id"] for row in read_rows(out)] == ["case-effusion", "case-edema"]
    assert len(endpoint.requests) == 2


def test_it_reads_a_grpo_export(endpoint: FakeEndpoint, tmp_path: Path) -> None:
    from cxr.prompts import conversation

    (tmp_path / "grpo").mkdir()
    (tmp_path / "images").mkdir()
    from tests.inference.conftest import tiny_png

    tiny_png(tmp_path / "images" / "abc.png")
    row = {
        "id": "chain-1",
        "case_id": "3f0c3a8e-0000-4000-8000-000000000001",
        "task_type": "binary",
        "prompt": conversation("Does this chest X-ray show edema? Options:\nA) Yes\nB) No", 1),
        "images": ["images/abc.png"],
        "answer": "B",
        "reference_steps": ["No edema."],
        "reference_findings": [{"observation": "Edema", "status": "absent"}],
    }
    cases = tmp_path / "grpo" / "test.jsonl"
    cases.write_text(json.dumps(row) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    run(_config(endpoint, cases, out))
    written = read_rows(out)[0]
    assert written["case_id"] == "3f0c3a8e-0000-4000-8000-000000000001"
    assert written["question"].startswith("Does this chest X-ray show edema?")
    assert (
        endpoint.requests[0]["messages"][1]["content"][0]["type"] == "image_url"
    )  # found above grpo/


# --- bad input and settings: a clear line, never a traceback, nothing sent unasked ------------


def _generate(endpoint_url: str, cases: Path, out: Path, *extra: str) -> int:
    return main(
        ["generate", "--model", endpoint_url, "--cases", str(cases), "--out", str(out), *extra]
    )


def test_it_reports_a_case_line_that_is_not_utf8(
    endpoint: FakeEndpoint, cases_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = cases_file.read_bytes().splitlines()
    cases_file.write_bytes(
        b"\xef\xbb\xbf" + lines[0] + b"\n" + lines[1].replace(b"edema", b"\xe9") + b"\n"
    )
    out = tmp_path / "out.jsonl"
    assert _generate(endpoint.url, cases_file, out) == 1
    assert [row["case_id"] for row in read_rows(out)] == ["case-effusion"]  # BOM and all
    captured = capsys.readouterr()
    assert f"{cases_file}:2: not UTF-8 text" in captured.err and "Traceback" not in captured.err
    assert "1 bad case lines not run" in captured.out
    assert len(endpoint.requests) == 1


def test_it_reports_cases_it_cannot_run(
    endpoint: FakeEndpoint, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = {"case_key": "k1", "question": "Is there edema? A) Yes B) No"}
    cases = tmp_path / "cases.jsonl"
    cases.write_text(
        "".join(
            json.dumps(row) + "\n"
            for row in (
                good,
                {"case_key": "k2", "answer": "A"},  # no question: nothing to ask
                {"case_key": "k3", "question": "Q? A) Yes B) No", "image_path": 7},
                {**good, "answer": "B"},  # k1 again: its rows would be mixed up
            )
        ),
        encoding="utf-8",
    )
    out = tmp_path / "out.jsonl"
    assert _generate(endpoint.url, cases, out) == 1
    assert [row["case_id"] for row in read_rows(out)] == ["k1"]
    err = capsys.readouterr().err
    assert f"{cases}:2: missing question" in err
    assert f"{cases}:3: `image_path` should be a path or a list of paths, not a number" in err
    assert f"{cases}:4: case id 'k1' already given on line 1" in err
    assert len(endpoint.requests) == 1


def test_it_refuses_a_model_that_is_neither_a_folder_nor_a_url(
    cases_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A name such as this one would be looked up on the Hugging Face Hub by transformers.
    with pytest.raises(SystemExit) as stopped:
        _generate("Qwen/Qwen2-VL-2B-Instruct", cases_file, tmp_path / "out.jsonl")
    assert stopped.value.code == 2
    assert "--model Qwen/Qwen2-VL-2B-Instruct: no such checkpoint folder" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--concurrency", "0", "--concurrency must be at least 1, not 0"),
        ("--limit", "-1", "--limit must be at least 1, not -1"),
        ("--max-retries", "-1", "--max-retries must be at least 0, not -1"),
        ("--timeout", "0", "--timeout must be more than 0, not 0.0"),
        ("--top-p", "1.5", "--top-p must be at most 1, not 1.5"),
        ("--batch-size", "0", "--batch-size must be at least 1, not 0"),
        ("--top-p", "nan", "--top-p must be a finite number, not nan"),
    ],
)
def test_it_rejects_an_out_of_range_option(
    endpoint: FakeEndpoint,
    cases_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    flag: str,
    value: str,
    message: str,
) -> None:
    with pytest.raises(SystemExit) as stopped:
        _generate(endpoint.url, cases_file, tmp_path / "out.jsonl", flag, value)
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err
    assert endpoint.requests == []


def test_it_ends_with_one_line_when_the_endpoint_is_down(
    closed_url: str, cases_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _generate(closed_url, cases_file, tmp_path / "out.jsonl", "--max-retries", "0")
    assert code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("python -m inference generate: error: endpoint: http://127.0.0.1:")
    assert "gave up after 1 attempts" in err and len(err.splitlines()) == 1


def test_it_reruns_a_case_whose_row_was_cut_short(
    endpoint: FakeEndpoint, cases_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.jsonl"
    run(_config(endpoint, cases_file, out))
    first, second = out.read_text(encoding="utf-8").splitlines()
    out.write_text(first + "\n" + second[: len(second) // 2], encoding="utf-8")  # a crash
    result = run(_config(endpoint, cases_file, out, resume=True))
    assert (result.skipped, result.written) == (1, 1)
    assert [row["case_id"] for row in read_rows(out)] == ["case-effusion", "case-edema"]
    assert f"{out}:2: unreadable JSON" in capsys.readouterr().err
