"""Fixtures for the training tests: a small export snapshot in the exporter's layout, built here
(the web app is not needed), and the tiny models, built once per session.

The training tests need no Django and no database (``-p no:django``), so they opt out of the
repository-wide autouse fixture that points Django's media settings at a temporary folder.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cxr.prompts import assistant_text, conversation
from tests.loopback import chat_completion, error, loopback_server


@pytest.fixture(autouse=True)
def _media() -> None:
    """Overrides tests/conftest.py's fixture of the same name, which needs pytest-django."""


# The cases every snapshot holds: one per task shape. Steps are what radiologists verified;
# "wrong" steps are what they marked incorrect (they reach the PRM data with label False).
CASES: list[dict[str, Any]] = [
    {
        "case_id": "case-effusion",
        "task_type": "binary",
        "question": "Does this chest X-ray show pleural effusion? Options:\nA) Yes\nB) No",
        "options": [{"key": "A", "text": "Yes"}, {"key": "B", "text": "No"}],
        "answer": "A",
        "steps": [
            "The costophrenic angles are examined.",
            "There is a small left pleural effusion.",
            "There is no pneumothorax.",
        ],
        "wrong": ["There is no pleural effusion.", "There is a large pneumothorax."],
        "findings": [
            {"observation": "Pleural Effusion", "status": "present"},
            {"observation": "Pneumothorax", "status": "absent"},
        ],
        "report": "Small left pleural effusion. No pneumothorax.",
    },
    {
        "case_id": "case-edema",
        "task_type": "single_choice",
        "question": (
            "Which finding is shown? Options:\nA) Edema\nB) Pneumothorax\nC) Fracture\nD) No Finding"
        ),
        "options": [
            {"key": "A", "text": "Edema"},
            {"key": "B", "text": "Pneumothorax"},
            {"key": "C", "text": "Fracture"},
            {"key": "D", "text": "No Finding"},
        ],
        "answer": "A",
        "steps": [
            "There is mild pulmonary edema.",
            "There is no pneumothorax.",
            "No fracture is seen.",
        ],
        "wrong": ["There is no pulmonary edema.", "There is a rib fracture."],
        "findings": [
            {"observation": "Edema", "status": "present"},
            {"observation": "Pneumothorax", "status": "absent"},
            {"observation": "Fracture", "status": "absent"},
        ],
        "report": "Mild pulmonary edema. No pneumothorax. No fracture.",
    },
    {
        "case_id": "case-multi",
        "task_type": "multiple_choice",
        "question": (
            "Which findings are shown? Options:\nA) Cardiomegaly\nB) Pneumothorax\nC) Edema\n"
            "D) Fracture"
        ),
        "options": [
            {"key": "A", "text": "Cardiomegaly"},
            {"key": "B", "text": "Pneumothorax"},
            {"key": "C", "text": "Edema"},
            {"key": "D", "text": "Fracture"},
        ],
        "answer": "A, C",
        "steps": [
            "The heart is enlarged, consistent with cardiomegaly.",
            "There is mild pulmonary edema.",
            "There is no pneumothorax.",
        ],
        "wrong": ["The heart size is normal.", "There is a large pneumothorax."],
        "findings": [
            {"observation": "Cardiomegaly", "status": "present"},
            {"observation": "Edema", "status": "present"},
            {"observation": "Pneumothorax", "status": "absent"},
        ],
        "report": "Cardiomegaly with mild pulmonary edema. No pneumothorax.",
    },
    {
        "case_id": "case-open",
        "task_type": "open",
        "question": "Which findings are present in this chest X-ray?",
        "options": [],
        "answer": "Cardiomegaly, Pleural Effusion",
        "steps": [
            "The heart is enlarged, consistent with cardiomegaly.",
            "There is a small right pleural effusion.",
        ],
        "wrong": ["There is no pleural effusion.", "There is a left lower lobe consolidation."],
        "findings": [
            {"observation": "Cardiomegaly", "status": "present"},
            {"observation": "Pleural Effusion", "status": "present"},
        ],
        "report": "Cardiomegaly. Small right pleural effusion.",
    },
]
# Which cases each split holds (the validation split repeats training cases: the tests look at
# mechanics and memorisation, not at generalisation).
SPLIT_CASES = {"train": [0, 1, 2, 3], "validation": [0, 1], "test": [3]}


def _png(seed: int, size: int = 64) -> bytes:
    from PIL import Image

    pixels = bytes((x * 3 + y * 5 + seed * 40) % 256 for y in range(size) for x in range(size))
    buffer = io.BytesIO()
    Image.frombytes("L", (size, size), pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _rows(case: dict[str, Any], index: int, images: list[str], split: str) -> dict[str, list[dict]]:
    base = {"case_id": case["case_id"], "task_type": case["task_type"]}
    sft = {
        "id": f"sft-{split}-{index}",
        **base,
        "messages": [
            *conversation(case["question"], len(images)),
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": assistant_text(case["steps"], case["answer"])}
                ],
            },
        ],
        "images": images,
    }
    prm_common = {**base, "prompt": case["question"], "images": images, "source": "fixture"}
    prm = [
        {
            "id": f"prm-{split}-{index}-verified",
            "chain_id": f"chain-{index}",
            "origin": "mined_llm",
            **prm_common,
            "completions": case["steps"],
            "labels": [True] * len(case["steps"]),
        },
        {
            # A chain a radiologist corrected: the first step was wrong, the rest right.
            "id": f"prm-{split}-{index}-corrected",
            "chain_id": f"chain-{index}-b",
            "origin": "model",
            **prm_common,
            "completions": [case["wrong"][0], *case["steps"][1:], case["wrong"][1]],
            "labels": [False] * 1 + [True] * (len(case["steps"]) - 1) + [False],
        },
    ]
    grpo = {
        "id": f"grpo-{split}-{index}",
        **base,
        "prompt": conversation(case["question"], len(images)),
        "images": images,
        "answer": case["answer"],
        "options": case["options"],
        "reference_steps": case["steps"],
        "reference_findings": case["findings"],
    }
    return {"sft": [sft], "prm": prm, "grpo": [grpo]}


def build_snapshot(root: Path, images_per_case: tuple[int, ...] = (1, 1, 1, 1)) -> Path:
    """Write a snapshot in the export layout under `root`; returns `root`.

    `images_per_case`: how many images each case has (a temporal case has two; a case whose
    image could not be imported has none).
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / "images").mkdir(exist_ok=True)
    image_paths: list[list[str]] = []
    for index, count in enumerate(images_per_case):
        paths = []
        for number in range(count):
            data = _png(index * 3 + number)
            digest = hashlib.sha256(data).hexdigest()
            (root / "images" / f"{digest}.png").write_bytes(data)
            paths.append(f"images/{digest}.png")
        image_paths.append(paths)
    counts: dict[str, dict[str, int]] = {}
    for fmt in ("sft", "prm", "grpo"):
        (root / fmt).mkdir(exist_ok=True)
        counts[fmt] = {}
        for split, indices in SPLIT_CASES.items():
            rows = [row for i in indices for row in _rows(CASES[i], i, image_paths[i], split)[fmt]]
            with open(root / fmt / f"{split}.jsonl", "w", encoding="utf-8") as handle:
                for row in rows:
                    handle.write(json.dumps(row) + "\n")
            counts[fmt][split] = len(rows)
    files = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != "manifest.json"):
        data = path.read_bytes()
        files.append(
            {
                "path": path.relative_to(root).as_posix(),
                "sha256": hashlib.sha256(data).hexdigest(),
                "bytes": len(data),
            }
        )
    manifest = {
        "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, "training-test-snapshot")),
        "number": 7,
        "options": {"status": "verified"},
        "counts": counts,
        "files": files,
        "code_revision": "fixture",
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return root


@pytest.fixture
def make_snapshot() -> Callable[[Path], Path]:
    return build_snapshot


@pytest.fixture(scope="session")
def snapshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A shared read-only snapshot (tests that alter one build their own with make_snapshot)."""
    return build_snapshot(tmp_path_factory.mktemp("snapshot"))


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The tiny Qwen2-VL and text model, built once per session."""
    from training.tiny import build_tiny

    return build_tiny(tmp_path_factory.mktemp("tiny"))


CONFIGS = Path(__file__).resolve().parents[2] / "training" / "configs"


def stage_argv(stage: str, tiny: Any, snapshot: Path, output_dir: Path, *extra: str) -> list[str]:
    """Arguments for a stage's main(): its tiny config, the tiny model, a snapshot, a run folder."""
    model = tiny.text if stage == "prm" else tiny.vlm
    return [
        "--config",
        str(CONFIGS / f"{stage}_tiny.yaml"),
        "--model_name_or_path",
        str(model),
        "--snapshot_dir",
        str(snapshot),
        "--output_dir",
        str(output_dir),
        *extra,
    ]


@pytest.fixture(scope="session")
def sft_run(tiny: Any, snapshot_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A tiny Qwen2-VL that memorised the fixture's chains (60 steps): (run folder, trainer)."""
    from training import sft

    out = tmp_path_factory.mktemp("sft-memorised")
    parser = sft.make_parser()
    args = parser.parse_args_and_config(
        stage_argv(
            "sft",
            tiny,
            snapshot_dir,
            out,
            "--max_steps",
            "60",
            "--per_device_train_batch_size",
            "4",
            "--learning_rate",
            "3e-3",
            "--eval_strategy",
            "no",
            "--save_strategy",
            "no",
            "--logging_steps",
            "5",
        )
    )
    return out, sft.train(*args)


@pytest.fixture(scope="session")
def prm_run(tiny: Any, snapshot_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A tiny PRM trained on the fixture's step verdicts: (run folder, trainer)."""
    from training import prm

    out = tmp_path_factory.mktemp("prm")
    args = prm.make_parser().parse_args_and_config(stage_argv("prm", tiny, snapshot_dir, out))
    return out, prm.train(*args)


class FakeJudgeServer:
    """A loopback stand-in for an OpenAI-compatible endpoint. Its "LLM" is a rule written here:
    a model step that repeats a reference step is correct, any other is incorrect, and a reference
    finding is recalled when a correct step names its observation. It records every request."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.reply: str | None = None  # set to force a reply text
        self.status = 200
        self.base_url = ""  # set while the server runs

    def respond(
        self, method: str, path: str, body: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        self.requests.append({"path": path, "headers": headers, "body": body})
        if self.status != 200:
            return error(self.status, "bad request")
        content = self.reply or self.judge(body["messages"][-1]["content"])
        return 200, chat_completion(content, body["model"], completion_id="judge-1"), {}

    @staticmethod
    def _section(prompt: str, title: str) -> list[str]:
        block = prompt.split(title, 1)[1].split("\n\n", 1)[0]
        return [re.sub(r"^\d+\. ", "", line) for line in block.strip().splitlines() if line.strip()]

    def judge(self, prompt: str) -> str:
        reference = self._section(prompt, "Reference steps (verified):")
        findings = self._section(prompt, "Reference findings (numbered):")
        steps = self._section(prompt, "Model steps (numbered):")
        verdicts = ["correct" if step in reference else "incorrect" for step in steps]
        correct_text = " ".join(s for s, v in zip(steps, verdicts) if v == "correct").lower()
        recalled = [
            number
            for number, finding in enumerate(findings, start=1)
            if finding.split(":")[0].lower() in correct_text
        ]
        return json.dumps(
            {
                "steps": [{"step": i, "verdict": v} for i, v in enumerate(verdicts, start=1)],
                "recalled_findings": recalled,
            }
        )


@pytest.fixture
def judge_server() -> Iterator[FakeJudgeServer]:
    server = FakeJudgeServer()
    with loopback_server(server.respond) as url:
        server.base_url = url
        yield server
