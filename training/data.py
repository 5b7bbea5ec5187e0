"""Export snapshots as datasets: the files the workbench exports, read without a database.

A snapshot folder holds ``manifest.json`` (``uuid``, ``number``, ``options``, ``counts``, ``files``:
``[{path, sha256, bytes}]``, ``code_revision``), ``images/<sha256>.png`` and one folder per format
(``sft/``, ``prm/``, ``grpo/``) with ``train.jsonl``, ``validation.jsonl``, ``test.jsonl``. Image
paths in rows are relative to the snapshot folder; `load_split` turns them into PIL images
(decoded lazily by `datasets`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

MANIFEST: Final = "manifest.json"
FORMATS: Final = ("sft", "prm", "grpo")
SPLITS: Final = ("train", "validation", "test")


class SnapshotError(Exception):
    """A snapshot folder that is missing, incomplete or altered since export."""


@dataclass(frozen=True)
class Snapshot:
    root: Path
    manifest: dict[str, Any]

    @classmethod
    def open(cls, root: str | Path) -> Snapshot:
        root = Path(root)
        path = root / MANIFEST
        if not path.is_file():
            raise SnapshotError(f"{root} is not an export snapshot: no {MANIFEST}")
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise SnapshotError(f"{path}: not JSON: {error}") from error
        if not isinstance(manifest, dict) or not (manifest.get("uuid") or manifest.get("snapshot")):
            raise SnapshotError(f"{path}: no snapshot uuid")
        return cls(root, manifest)

    @property
    def uuid(self) -> str:
        # The exporter names the snapshot's uuid "snapshot"; "uuid" is accepted as well.
        return str(self.manifest.get("uuid") or self.manifest["snapshot"])

    @property
    def number(self) -> int | None:
        return self.manifest.get("number")

    @property
    def files(self) -> list[dict[str, Any]]:
        return list(self.manifest.get("files", []))

    def split_path(self, fmt: str, split: str) -> Path:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")
        return self.root / fmt / f"{split}.jsonl"

    def has_split(self, fmt: str, split: str) -> bool:
        path = self.split_path(fmt, split)
        return path.is_file() and path.stat().st_size > 0

    def verify(self, fmt: str) -> None:
        """Check the format's data files against the manifest's hashes (images are named by theirs).

        Raises SnapshotError naming the first file that is missing or differs.
        """
        listed = {entry["path"]: entry for entry in self.files}
        for split in SPLITS:
            path = self.split_path(fmt, split)
            relative = path.relative_to(self.root).as_posix()
            if relative not in listed:
                if path.exists():
                    raise SnapshotError(f"{relative} is not listed in {MANIFEST}")
                continue
            if not path.is_file():
                raise SnapshotError(f"{relative} is listed in {MANIFEST} but missing")
            if sha256_file(path) != listed[relative]["sha256"]:
                raise SnapshotError(f"{relative} differs from the sha256 in {MANIFEST}")

    def provenance(self) -> dict[str, Any]:
        """What a run records about its data: snapshot id, number, options and file hashes."""
        return {
            "path": str(self.root.resolve()),
            "uuid": self.uuid,
            "number": self.number,
            "format_version": self.manifest.get("format_version"),
            "options": self.manifest.get("options"),
            "counts": self.manifest.get("counts"),
            "code_revision": self.manifest.get("code_revision"),
            "files": [
                {"path": f["path"], "sha256": f["sha256"], "bytes": f.get("bytes")}
                for f in self.files
            ],
        }


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_rows(path: Path, max_rows: int | None = None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise SnapshotError(f"{path}:{number}: not JSON: {error}") from error
            if max_rows is not None and len(rows) >= max_rows:
                break
    return rows


def load_split(
    snapshot: Snapshot,
    fmt: str,
    split: str,
    *,
    max_rows: int | None = None,
    with_images: bool = True,
) -> Any:
    """One split of one format as a `datasets.Dataset`.

    With `with_images`, the ``images`` column holds PIL images (``datasets.Image`` features
    decode them on access) read from the snapshot folder; without it the column is dropped
    (the PRM reads text only).
    """
    import datasets

    path = snapshot.split_path(fmt, split)
    if not path.is_file():
        raise SnapshotError(f"{path.relative_to(snapshot.root)} is missing from the snapshot")
    rows = read_rows(path, max_rows)
    if not rows:
        raise SnapshotError(f"{path.relative_to(snapshot.root)} has no rows")
    for row in rows:
        images = row.get("images") or []
        if with_images:
            row["images"] = [_image_path(snapshot, image) for image in images]
        else:
            row.pop("images", None)
    dataset = datasets.Dataset.from_list(rows)
    if with_images and "images" in dataset.column_names:
        dataset = dataset.cast_column("images", datasets.List(datasets.Image()))
    return dataset


def drop_rows_without_images(dataset: Any) -> tuple[Any, int]:
    """(dataset, rows dropped): the rows without images go when others have some.

    TRL's GRPOTrainer cannot put prompts with and without images in one batch (the processor
    refuses the mix), and a chest X-ray question without its film teaches the model nothing.
    A dataset with no images at all is kept whole (text-only training).
    """
    if "images" not in dataset.column_names:
        return dataset, 0
    # Count through Arrow: nothing is decoded.
    column = dataset.select_columns(["images"]).with_format("arrow")[:]["images"]
    counts = [len(images or []) for images in column.to_pylist()]
    if not any(counts) or all(counts):
        return dataset, 0
    keep = [index for index, count in enumerate(counts) if count]
    return dataset.select(keep), len(counts) - len(keep)


def _image_path(snapshot: Snapshot, relative: str) -> str:
    path = (snapshot.root / relative).resolve()
    if snapshot.root.resolve() not in path.parents:
        raise SnapshotError(f"image path {relative!r} leaves the snapshot folder")
    if not path.is_file():
        raise SnapshotError(f"image {relative} is missing from the snapshot")
    return str(path)
