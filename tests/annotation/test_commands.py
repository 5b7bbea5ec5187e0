"""Management commands refuse bad arguments with a CommandError, before they change anything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from annotation.models import ExportSnapshot
from tests.annotation.test_export import reviewed_chain


def test_export_refuses_an_out_that_is_a_file(db: Any, tmp_path: Path) -> None:
    # NotADirectoryError with a traceback, after a snapshot number was taken.
    existing = tmp_path / "notes.txt"
    existing.write_text("x")
    with pytest.raises(CommandError, match="notes.txt is a file, not a folder"):
        call_command("export", "--out", str(existing), "--format", "sft")
    with pytest.raises(CommandError, match="cannot create this folder"):
        call_command("export", "--out", str(existing / "inside"), "--format", "sft")
    assert not ExportSnapshot.objects.exists()


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs Linux's /proc")
def test_export_refuses_an_out_it_cannot_create_and_takes_no_snapshot_number(db: Any) -> None:
    # FileNotFoundError with a traceback, and a failed snapshot row left in the database.
    with pytest.raises(CommandError, match=r"--out /proc/xx/snap: cannot create this folder \(No such file"):
        call_command("export", "--out", "/proc/xx/snap", "--format", "sft")
    assert not ExportSnapshot.objects.exists()


def test_export_refuses_a_folder_that_is_not_empty(db: Any, tmp_path: Path) -> None:
    (tmp_path / "x").write_text("x")
    with pytest.raises(CommandError, match="is not empty"):
        call_command("export", "--out", str(tmp_path), "--format", "sft")
    assert not ExportSnapshot.objects.exists()


def test_export_writes_a_snapshot_into_a_new_folder(make_chain: Any, alice: Any, tmp_path: Path, capsys: Any) -> None:
    reviewed_chain(make_chain, alice)
    out = tmp_path / "new" / "v1"
    call_command("export", "--out", str(out), "--format", "sft,prm", "--verbosity", "0")
    assert "Exported snapshot v1: 1 chains" in capsys.readouterr().out
    assert (out / "manifest.json").is_file() and sorted(p.name for p in out.iterdir() if p.is_dir()) == ["images", "prm", "sft"]
    assert ExportSnapshot.objects.get().status == ExportSnapshot.Status.DONE
