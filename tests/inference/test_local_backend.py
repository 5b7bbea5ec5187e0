"""The local transformers backend on tiny models built offline (skipped without the `ml` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.inference.conftest import read_rows

pytest.importorskip("torch")
pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The training module's tiny Qwen2-VL and Qwen2 text model (random weights, a few seconds)."""
    tiny_module = pytest.importorskip("training.tiny")
    return tiny_module.build_tiny(tmp_path_factory.mktemp("tiny"))


def test_it_generates_in_batches_with_a_tiny_vision_language_model(
    tiny: Any, cases_file: Path, tmp_path: Path
) -> None:
    from inference.__main__ import main

    out = tmp_path / "predictions.jsonl"
    code = main(
        [
            "generate",
            "--model",
            str(tiny.vlm),
            "--cases",
            str(cases_file),
            "--out",
            str(out),
            "--batch-size",
            "2",
            "--max-new-tokens",
            "8",
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    rows = read_rows(out)
    assert [row["case_id"] for row in rows] == ["case-effusion", "case-edema"]
    for row in rows:
        assert row["settings"]["backend"] == "transformers" and row["settings"]["images"] is True
        assert isinstance(row["pred"], str)  # random weights: any text, parsed without error
        assert 1 <= row["completion_tokens"] <= 8
        assert row["prompt_tokens"] > 10 and row["latency_ms"] > 0
        assert set(row["parsed"]) == {"answer_text", "letters", "steps", "well_formed"}
    # The case with an image has a longer prompt: its image tokens are in it.
    assert rows[0]["prompt_tokens"] > rows[1]["prompt_tokens"]


def test_greedy_decoding_is_deterministic(tiny: Any, cases_file: Path, tmp_path: Path) -> None:
    from inference.generate import GenerateConfig, run

    texts = []
    for name in ("a.jsonl", "b.jsonl"):
        config = GenerateConfig(
            model=str(tiny.vlm),
            cases=cases_file,
            out=tmp_path / name,
            max_new_tokens=6,
            batch_size=1,
            device="cpu",
        )
        run(config)
        texts.append([row["pred"] for row in read_rows(tmp_path / name)])
    assert texts[0] == texts[1]


def test_it_runs_a_text_only_checkpoint_without_the_images(
    tiny: Any, cases_file: Path, tmp_path: Path
) -> None:
    from inference.generate import GenerateConfig, run

    out = tmp_path / "text.jsonl"
    result = run(
        GenerateConfig(
            model=str(tiny.text),
            cases=cases_file,
            out=out,
            max_new_tokens=4,
            temperature=0.9,
            device="cpu",
        )
    )
    assert result.failed == 0
    row = read_rows(out)[0]
    assert row["settings"]["images"] is False and row["settings"]["temperature"] == 0.9
