"""Realism check: the paper's released predictions, scored and imported against its real cases.

Skipped where ../shared/data/radrbench-dev is absent (never copied into the repository).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from annotation import predictions
from annotation.importing import import_cases
from annotation.models import Chain, Prediction
from inference.score import ScoreConfig, run

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "radrbench-dev"

pytestmark = pytest.mark.skipif(
    not (DATA / "predictions.jsonl").exists(), reason=f"{DATA} is absent"
)


def test_the_real_predictions_import_and_reimport(db: Any, tmp_path: Path) -> None:
    assert import_cases(DATA / "cases.jsonl", source="radrbench-dev").rejected == 0
    # One model's predictions, scored offline and joined with their cases (item ids, questions).
    subset = tmp_path / "chestx.jsonl"
    lines = (DATA / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    subset.write_text(
        "\n".join(line for line in lines if '"model": "chestx-reasoner-7b"' in line) + "\n",
        encoding="utf-8",
    )
    scored = tmp_path / "scored.jsonl"
    result = run(ScoreConfig(predictions=subset, cases=DATA / "cases.jsonl", out=scored))
    assert result.failed == 0 and not result.bad_lines
    imported = predictions.import_predictions(
        scored, run="chestx-reasoner-7b", source="radrbench-dev"
    )
    assert imported.rejected == 0, imported.problems[:5]
    assert imported.created == result.scored == 468
    assert Chain.objects.filter(origin=Chain.Origin.MODEL).count() == 468
    accuracy = sum(p.correct for p in Prediction.objects.all()) / 468
    assert 0.6 < accuracy < 0.95  # the paper reports 0.76 across these tasks
    again = predictions.import_predictions(scored, run="chestx-reasoner-7b", source="radrbench-dev")
    assert (again.created, again.duplicates) == (0, 468)
    rows = predictions.leaderboard()
    assert {row.task for row in rows} == {"binary", "single", "multi", "open", "all"}
    first = json.loads(scored.read_text(encoding="utf-8").splitlines()[0])
    assert first["judge"] == "offline"

    # The same rows without their scores, scored by the import itself: the same numbers.
    unscored = tmp_path / "unscored.jsonl"
    unscored.write_text(
        "".join(
            json.dumps({k: v for k, v in row.items() if k not in predictions.METRICS}) + "\n"
            for row in map(json.loads, scored.read_text(encoding="utf-8").splitlines())
        ),
        encoding="utf-8",
    )
    here = predictions.import_predictions(unscored, run="rescored", source="radrbench-dev")
    assert here.created == 468, here.problems[:5]
    by_cli = {p.case_id: p for p in Prediction.objects.filter(run__name="chestx-reasoner-7b")}
    differing = [
        (p.case_id, name)
        for p in Prediction.objects.filter(run__name="rescored")
        for name in predictions.METRICS
        if getattr(p, name) != pytest.approx(getattr(by_cli[p.case_id], name), abs=1e-6)
    ]
    assert not differing, differing[:5]
