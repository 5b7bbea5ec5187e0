"""An export snapshot loads with `datasets.load_dataset`, JSONL and Parquet alike (the `ml` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from annotation.exporting import ExportOptions, export
from tests.annotation.test_export import reviewed_chain, stored_image

datasets = pytest.importorskip("datasets")

SPLITS = ("train", "validation", "test")


@pytest.fixture
def snapshot(make_chain: Any, alice: Any, bob: Any, tmp_path: Path, monkeypatch: Any) -> Path:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from annotation import services
    from annotation.models import Report

    reviewed_chain(make_chain, alice, images=(stored_image(tmp_path, 1),))
    # Every row has images: a split whose rows all have none would be typed list<null> by the
    # JSON loader and clash with the others (Parquet has a fixed schema and does not care).
    reviewed_chain(make_chain, bob, patient="patient-2", images=(stored_image(tmp_path, 4),))
    temporal = make_chain(steps=("The effusion is larger.",), readers=(bob,), task_type="temporal",
                          images=(stored_image(tmp_path, 2), stored_image(tmp_path, 3)))
    temporal.case.prior_report = Report.objects.create(text="FINDINGS: Small effusion.")
    temporal.case.save()
    step = temporal.live_steps()[0]
    step.mark("correct", by=bob, expected=step.version)
    services.finish_chain(temporal, bob, "verify")
    return Path(export(ExportOptions(), tmp_path / "snap").path)


@pytest.mark.parametrize("fmt", ["sft", "prm", "grpo", "radrbench"])
@pytest.mark.parametrize("kind", ["json", "parquet"])
def test_it_loads_every_format_with_datasets(snapshot: Path, tmp_path: Path, fmt: str, kind: str) -> None:
    ext = "jsonl" if kind == "json" else "parquet"
    files = {s: str(snapshot / fmt / f"{s}.{ext}") for s in SPLITS if (snapshot / fmt / f"{s}.jsonl").stat().st_size}
    loaded = datasets.load_dataset(kind, data_files=files, cache_dir=str(tmp_path / "hf"))
    assert sum(len(split) for split in loaded.values()) == 3
    row = next(r for split in loaded.values() for r in split if r.get("images") or r.get("image_path"))
    images = row.get("images") or row.get("image_path")
    assert all((snapshot / path).is_file() for path in images)
    if fmt == "prm":
        assert all(len(r["completions"]) == len(r["labels"]) for s in loaded.values() for r in s)
    if fmt == "sft":
        assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant"]
        assert row["messages"][2]["content"][0]["text"].startswith("<think>")
