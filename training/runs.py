"""Provenance of a run: the resolved config, the code revision, the snapshot and its file hashes.

Every run folder (and every checkpoint in it) holds ``config.yaml`` (every field of every config
dataclass, flat, in the shape ``--config`` reads: feeding it back reproduces the run's settings)
and ``run.json`` (stage, code revision, snapshot id and file hashes, library versions).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import yaml
from transformers import TrainerCallback

from training.data import Snapshot

CONFIG_FILE: Final = "config.yaml"
RUN_FILE: Final = "run.json"
REPO_ROOT: Final = Path(__file__).resolve().parents[1]
# Never written to disk: credentials. (The LLM judge's key is read from an environment variable
# whose *name* is the config value.)
_SECRET_FIELDS: Final = frozenset({"hub_token"})
# Filled in by a config's __post_init__ from another field, and refused beside it when given
# both: saved empty, so that reading the saved config derives it again the same way
# (GRPOConfig's generation_batch_size, from steps_per_generation).
_DERIVED_FIELDS: Final = frozenset({"generation_batch_size"})


def code_revision(root: Path = REPO_ROOT) -> dict[str, Any]:
    """``{"commit": sha or None, "dirty": bool or None}`` from git, when the code is a checkout."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(status.strip())}


def _plain(value: Any) -> Any:
    """A YAML-safe copy of a config value (enums by value, dataclasses as mappings)."""
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def config_dict(*configs: Any) -> dict[str, Any]:
    """Every init field of the given dataclasses, flat (later dataclasses win on a shared name)."""
    resolved: dict[str, Any] = {}
    for config in configs:
        for field in dataclasses.fields(config):
            if not field.init or field.name in _SECRET_FIELDS or field.name.startswith("_"):
                continue
            value = None if field.name in _DERIVED_FIELDS else getattr(config, field.name)
            resolved[field.name] = _plain(value)
    return resolved


def save_config(path: Path, *configs: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(config_dict(*configs), handle, sort_keys=True, allow_unicode=True)


def _versions() -> dict[str, str]:
    import importlib.metadata

    versions = {}
    for name in ("torch", "transformers", "trl", "peft", "datasets", "accelerate"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def start_run(
    output_dir: str | Path,
    stage: str,
    configs: tuple[Any, ...],
    snapshot: Snapshot,
    data: dict[str, Any] | None = None,
    *,
    write: bool = True,
) -> Path:
    """Write ``config.yaml`` and ``run.json`` into the run folder; returns the folder.

    `data` records what was read of the snapshot (rows per split, rows left out and why). In a
    distributed run only the process that saves writes (`write`, from ``args.should_save``).
    """
    out = Path(output_dir)
    if not write:
        return out
    out.mkdir(parents=True, exist_ok=True)
    save_config(out / CONFIG_FILE, *configs)
    run = {
        "stage": stage,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "code_revision": code_revision(),
        "snapshot": snapshot.provenance(),
        "data": data or {},
        "versions": _versions(),
    }
    (out / RUN_FILE).write_text(json.dumps(run, indent=2) + "\n", encoding="utf-8")
    return out


def read_run(folder: str | Path) -> dict[str, Any]:
    return json.loads((Path(folder) / RUN_FILE).read_text(encoding="utf-8"))


class ProvenanceCallback(TrainerCallback):
    """Copies the run's config and provenance into every checkpoint folder as it is saved."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not args.should_save:
            return
        checkpoint = self.run_dir / f"checkpoint-{state.global_step}"
        if checkpoint.is_dir():
            for name in (CONFIG_FILE, RUN_FILE):
                shutil.copy2(self.run_dir / name, checkpoint / name)


def resume_checkpoint(value: str | None, output_dir: str | Path) -> str | None:
    """`resume_from_checkpoint` as the trainer wants it: "last"/"true" means the newest checkpoint
    in the run folder (none yet: start fresh), anything else a checkpoint folder."""
    from transformers.trainer_utils import get_last_checkpoint

    if value is None or str(value).lower() in {"", "false", "none", "no"}:
        return None
    if str(value).lower() in {"last", "true", "yes"}:
        if not Path(output_dir).is_dir():
            return None
        return get_last_checkpoint(str(output_dir))
    if not Path(value).is_dir():
        raise FileNotFoundError(f"checkpoint {value} does not exist")
    return str(value)
