"""SFT on the verified chains of a snapshot, with images, on the tiny Qwen2-VL."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("torch")
pytest.importorskip("trl")

from tests.training.conftest import stage_argv  # noqa: E402
from training import sft  # noqa: E402
from training.data import Snapshot, load_split  # noqa: E402
from training.runs import RUN_FILE, read_run  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def _run(tiny: Any, snapshot: Path, out: Path, *extra: str) -> Any:
    return sft.train(
        *sft.make_parser().parse_args_and_config(stage_argv("sft", tiny, snapshot, out, *extra))
    )


def _losses(trainer: Any) -> list[float]:
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]


def test_it_memorises_the_verified_chains_and_the_loss_falls(sft_run: Any) -> None:
    _, trainer = sft_run
    losses = _losses(trainer)
    assert trainer.state.global_step == 60
    assert losses[0] > 3.0  # a random model: close to log(vocabulary)
    assert losses[-1] < 0.1 * losses[0]
    assert all(later < earlier for earlier, later in zip(losses, losses[1:]))


def test_it_computes_the_loss_on_the_assistant_turn_only(sft_run: Any, snapshot_dir: Path) -> None:
    _, trainer = sft_run
    rows = load_split(Snapshot.open(snapshot_dir), "sft", "train")
    batch = trainer.data_collator([rows[0], rows[3]])
    tokenizer = trainer.processing_class.tokenizer
    for index, row in enumerate((rows[0], rows[3])):
        learned = batch["labels"][index][batch["labels"][index] != -100]
        assistant = row["messages"][-1]["content"][0]["text"]
        assert tokenizer.decode(learned) == assistant + "<|im_end|>\n"
    assert "pixel_values" in batch and "image_grid_thw" in batch


def test_it_records_provenance_in_the_run_and_every_checkpoint(
    tiny: Any, snapshot_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    _run(tiny, snapshot_dir, out, "--max_steps", "2", "--save_steps", "2")
    manifest = json.loads((snapshot_dir / "manifest.json").read_text())
    for folder in (out, out / "checkpoint-2"):
        run = read_run(folder)
        assert run["stage"] == "sft"
        assert run["snapshot"]["uuid"] == manifest["uuid"]
        assert run["snapshot"]["files"] == manifest["files"]  # path, sha256 and bytes of each
        assert re.fullmatch(r"[0-9a-f]{40}", run["code_revision"]["commit"])
        assert run["versions"]["trl"]
        config = yaml.safe_load((folder / "config.yaml").read_text())
        assert config["snapshot_dir"] == str(snapshot_dir)
        assert config["max_steps"] == 2 and config["assistant_only_loss"] is True
    # The saved config is itself a config file: it reproduces the run's settings.
    again = sft.make_parser().parse_args_and_config(["--config", str(out / "config.yaml")])
    assert again[1].max_steps == 2 and again[2].model_name_or_path == str(tiny.vlm)
    assert (out / "model.safetensors").is_file() and (out / "processor_config.json").is_file()


def test_it_resumes_from_the_last_checkpoint(tiny: Any, snapshot_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    _run(tiny, snapshot_dir, out, "--max_steps", "2", "--save_steps", "2", "--eval_strategy", "no")
    state_file = out / "checkpoint-2" / "trainer_state.json"
    state = json.loads(state_file.read_text())
    state["log_history"][0]["marker"] = "from checkpoint-2"  # only a resumed run can carry it
    state_file.write_text(json.dumps(state))

    trainer = _run(
        tiny,
        snapshot_dir,
        out,
        "--max_steps",
        "4",
        "--save_steps",
        "2",
        "--eval_strategy",
        "no",
        "--resume_from_checkpoint",
        "last",
    )
    assert trainer.state.global_step == 4
    assert trainer.state.log_history[0].get("marker") == "from checkpoint-2"
    assert [e["step"] for e in trainer.state.log_history if "loss" in e] == [1, 2, 3, 4]
    assert (out / "checkpoint-4" / RUN_FILE).is_file()


def test_it_starts_fresh_when_asked_to_resume_without_a_checkpoint(
    tiny: Any, snapshot_dir: Path, tmp_path: Path
) -> None:
    trainer = _run(
        tiny,
        snapshot_dir,
        tmp_path / "new",
        "--max_steps",
        "1",
        "--eval_strategy",
        "no",
        "--save_strategy",
        "no",
        "--resume_from_checkpoint",
        "last",
    )
    assert trainer.state.global_step == 1


def test_it_trains_a_lora_adapter(tiny: Any, snapshot_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "lora"
    _run(
        tiny,
        snapshot_dir,
        out,
        "--max_steps",
        "2",
        "--eval_strategy",
        "no",
        "--save_strategy",
        "no",
        "--use_peft",
        "true",
        "--lora_r",
        "4",
        "--lora_alpha",
        "8",
        "--lora_target_modules",
        "q_proj",
        "v_proj",
    )
    adapter = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert adapter["r"] == 4 and set(adapter["target_modules"]) == {"q_proj", "v_proj"}
    # The run folder itself is the merged model: GRPO starts from it like from any checkpoint.
    from transformers import AutoModelForImageTextToText

    merged = AutoModelForImageTextToText.from_pretrained(out)
    assert not hasattr(merged, "peft_config")
    base = AutoModelForImageTextToText.from_pretrained(tiny.vlm).state_dict()
    after = merged.state_dict()
    changed = {name for name in base if not base[name].equal(after[name])}
    assert changed and all("q_proj" in name or "v_proj" in name for name in changed)
    assert (out / "processor_config.json").is_file()


def test_it_runs_from_the_command_line(tiny: Any, snapshot_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli"
    argv = stage_argv("sft", tiny, snapshot_dir, out, "--max_steps", "1", "--eval_strategy", "no")
    result = subprocess.run(
        [sys.executable, "-m", "training", "sft", *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert read_run(out)["stage"] == "sft"


def test_it_refuses_a_run_without_a_snapshot(tiny: Any, tmp_path: Path) -> None:
    from training.data import SnapshotError

    parsed = sft.make_parser().parse_args_and_config(
        [
            "--config",
            str(Path(sft.__file__).parent / "configs" / "sft_tiny.yaml"),
            "--model_name_or_path",
            str(tiny.vlm),
            "--output_dir",
            str(tmp_path),
        ]
    )
    with pytest.raises(SnapshotError, match="no snapshot"):
        sft.train(*parsed)


def test_it_trains_on_cases_with_two_images_or_none(
    tiny: Any, tmp_path: Path, make_snapshot: Any
) -> None:
    # A temporal case shows the prior and the current film; a case may have lost its image.
    snapshot = make_snapshot(tmp_path / "snap", images_per_case=(2, 1, 1, 0))
    trainer = _run(
        tiny,
        snapshot,
        tmp_path / "run",
        "--max_steps",
        "2",
        "--per_device_train_batch_size",
        "4",
        "--eval_strategy",
        "no",
        "--save_strategy",
        "no",
    )
    assert trainer.state.global_step == 2
    assert read_run(tmp_path / "run")["data"] == {"train_rows": 4, "eval_rows": 0}


def test_it_trains_data_parallel_in_two_processes(
    tiny: Any, snapshot_dir: Path, tmp_path: Path
) -> None:
    # DDP over two CPU processes (gloo), as accelerate launch / torchrun run it on GPUs.
    import socket

    with socket.socket() as probe:  # a free loopback port for the rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = tmp_path / "ddp"
    argv = stage_argv(
        "sft", tiny, snapshot_dir, out, "--max_steps", "2", "--per_device_train_batch_size", "1"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(port),
            "-m",
            "training",
            "sft",
            *argv,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = out / "checkpoint-2"
    assert (checkpoint / "rng_state_0.pth").is_file() and (checkpoint / "rng_state_1.pth").is_file()
    assert read_run(checkpoint)["stage"] == "sft"
