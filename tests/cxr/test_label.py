"""The `python -m cxr.label` command."""

import json
from pathlib import Path

import pytest

from cxr.label import main


def test_it_adds_findings_to_each_record(tmp_path: Path) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text(
        json.dumps({"id": "alice", "report": "Small left effusion."})
        + "\n\n"
        + json.dumps({"id": "bob", "original_report": "No pneumothorax."})
        + "\n"
    )
    assert main([str(source), str(target)]) == 0
    records = [json.loads(line) for line in target.read_text().splitlines()]
    assert [record["id"] for record in records] == ["alice", "bob"]
    effusion = next(f for f in records[0]["findings"] if f["observation"] == "Pleural Effusion")
    assert effusion["status"] == "present"
    assert effusion["laterality"] == "left"
    assert effusion["evidence"] == "Small left effusion."


def test_it_reports_bad_lines_and_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text('{"report": "No effusion."}\nnot json\n{"text": "no report"}\n')
    assert main([str(source), str(target)]) == 1
    errors = capsys.readouterr().err
    assert "line 2: not JSON" in errors
    assert "line 3: no text field" in errors
    assert len(target.read_text().splitlines()) == 1
