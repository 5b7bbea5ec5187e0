"""Export snapshots read as datasets, with images, and checked against their manifest."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("trl")

from training.data import Snapshot, SnapshotError, load_split  # noqa: E402


def test_it_loads_rows_with_images_from_the_snapshot_folder(snapshot_dir: Path) -> None:
    from PIL import Image

    snapshot = Snapshot.open(snapshot_dir)
    dataset = load_split(snapshot, "sft", "train")
    assert len(dataset) == 4
    row = dataset[0]
    assert isinstance(row["images"][0], Image.Image)
    assert row["images"][0].size == (64, 64)
    assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant"]


def test_it_reads_prm_rows_without_images(snapshot_dir: Path) -> None:
    dataset = load_split(Snapshot.open(snapshot_dir), "prm", "train", with_images=False)
    assert "images" not in dataset.column_names
    assert dataset[1]["labels"][0] is False


def test_it_keeps_at_most_max_rows(snapshot_dir: Path) -> None:
    assert len(load_split(Snapshot.open(snapshot_dir), "grpo", "train", max_rows=2)) == 2


def test_it_accepts_an_untouched_snapshot(snapshot_dir: Path) -> None:
    for fmt in ("sft", "prm", "grpo"):
        Snapshot.open(snapshot_dir).verify(fmt)


def test_it_rejects_a_data_file_changed_since_export(
    tmp_path: Path, make_snapshot: Callable[[Path], Path]
) -> None:
    root = make_snapshot(tmp_path / "snap")
    with open(root / "sft" / "train.jsonl", "a", encoding="utf-8") as handle:
        handle.write("\n")
    with pytest.raises(SnapshotError, match="sft/train.jsonl differs"):
        Snapshot.open(root).verify("sft")


def test_it_rejects_a_folder_without_manifest(tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match="no manifest.json"):
        Snapshot.open(tmp_path)


def test_it_rejects_a_missing_image(tmp_path: Path, make_snapshot: Callable[[Path], Path]) -> None:
    root = make_snapshot(tmp_path / "snap")
    for image in (root / "images").iterdir():
        image.unlink()
    with pytest.raises(SnapshotError, match="missing from the snapshot"):
        load_split(Snapshot.open(root), "sft", "train")


def test_it_refuses_image_paths_outside_the_snapshot(
    tmp_path: Path, make_snapshot: Callable[[Path], Path]
) -> None:
    root = make_snapshot(tmp_path / "snap")
    path = root / "grpo" / "test.jsonl"
    row = json.loads(path.read_text().splitlines()[0])
    row["images"] = ["../outside.png"]
    (tmp_path / "outside.png").write_bytes(b"x")
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(SnapshotError, match="leaves the snapshot folder"):
        load_split(Snapshot.open(root), "grpo", "test")


def test_it_describes_the_snapshot_for_provenance(snapshot_dir: Path) -> None:
    provenance = Snapshot.open(snapshot_dir).provenance()
    manifest = json.loads((snapshot_dir / "manifest.json").read_text())
    assert provenance["uuid"] == manifest["uuid"]
    assert provenance["number"] == 7
    assert {f["path"]: f["sha256"] for f in provenance["files"]} == {
        f["path"]: f["sha256"] for f in manifest["files"]
    }


def test_it_reads_the_exporters_snapshot_key_for_the_uuid(
    tmp_path: Path, make_snapshot: Callable[[Path], Path]
) -> None:
    root = make_snapshot(tmp_path / "snap")
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["snapshot"] = manifest.pop("uuid")  # the exporter's own name for it
    (root / "manifest.json").write_text(json.dumps(manifest))
    assert Snapshot.open(root).uuid == manifest["snapshot"]


def test_it_drops_rows_without_images_only_beside_rows_with_images(
    tmp_path: Path, make_snapshot: Callable[[Path], Path]
) -> None:
    from training.data import drop_rows_without_images

    mixed = make_snapshot(tmp_path / "mixed", images_per_case=(2, 1, 1, 0))
    dataset = load_split(Snapshot.open(mixed), "grpo", "train")
    kept, dropped = drop_rows_without_images(dataset)
    assert dropped == 1 and len(kept) == 3
    assert [len(row["images"]) for row in kept] == [2, 1, 1]
    text_only = make_snapshot(tmp_path / "text", images_per_case=(0, 0, 0, 0))
    dataset = load_split(Snapshot.open(text_only), "grpo", "train")
    assert drop_rows_without_images(dataset)[1] == 0  # nothing to mix with: kept whole
