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
