"""An OpenAI-protocol server on loopback, started by the tests, and small case files.

The inference tests need no Django and no database (``-p no:django`` works), so they opt out of
the repository-wide autouse fixture that points Django's media settings at a temporary folder.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.loopback import chat_completion, error, loopback_server


@pytest.fixture(autouse=True)
def _media() -> None:
    """Overrides tests/conftest.py's fixture of the same name, which needs pytest-django."""


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No endpoint, key or model from the developer's shell, and var/ in the test's folder."""
    for name in (
        "JUDGE_BASE_URL",
        "JUDGE_API_KEY",
        "JUDGE_MODEL",
        "OPENAI_BASE_URL",
        "OPENAI_API_KEY",
        "OPENAI_MODEL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORKBENCH_VAR_DIR", str(tmp_path / "var"))


@pytest.fixture
def closed_url() -> str:
    """The base URL of a loopback port nothing listens on: every connection is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@dataclass
class Reply:
    """One scripted answer: an HTTP status, the assistant's text, and headers."""

    status: int = 200
    text: str = ""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeEndpoint:
    """What the server received, and how it answers.

    `script` is consumed first, one reply per request; after it, `answer(messages)` decides.
    """

    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    script: list[Reply] = field(default_factory=list)
    answer: Callable[[list[dict[str, Any]]], str] = lambda messages: (
        "<think>\nThe costophrenic angle is blunted.\n</think>\n<answer>A</answer>"
    )
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_reply(self, body: dict[str, Any]) -> Reply:
        with self.lock:
            self.requests.append(body)
            if self.script:
                return self.script.pop(0)
        return Reply(text=self.answer(body.get("messages", [])))


@pytest.fixture
def endpoint() -> Iterator[FakeEndpoint]:
    """A loopback server speaking /v1/models and /v1/chat/completions."""
    state = FakeEndpoint(url="")

    def respond(
        method: str, path: str, body: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        if method == "GET" and path.rstrip("/") == "/v1/models":
            return 200, {"object": "list", "data": [{"id": "tiny-served", "object": "model"}]}, {}
        if method != "POST" or path.rstrip("/") != "/v1/chat/completions":
            return error(404, "not found")
        reply = state.next_reply(body)
        if reply.status != 200:
            return reply.status, error(reply.status, f"scripted {reply.status}")[1], reply.headers
        completion = chat_completion(
            reply.text,
            body.get("model", "tiny-served"),
            completion_id=f"chatcmpl-{len(state.requests)}",
            prompt_tokens=42,
            completion_tokens=7,
        )
        return 200, completion, reply.headers

    with loopback_server(respond) as url:
        state.url = url
        yield state


def tiny_png(path: Path, shade: int = 128) -> Path:
    """A 4x4 grey PNG written by hand (no imaging library needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = b"".join(b"\x00" + bytes([shade]) * 4 for _ in range(4))
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
    return path


EFFUSION_CASE: dict[str, Any] = {
    "case_key": "case-effusion",
    "item_id": "item-1",
    "task": "chexpert_binary",
    "question": "Does this chest X-ray show pleural effusion? Options:\nA) Yes\nB) No",
    "answer": "A",
    "reason_steps": [
        "The left costophrenic angle is blunted, indicating a left pleural effusion.",
        "No pneumothorax is seen.",
    ],
    "original_report": "FINDINGS: Small left pleural effusion. No pneumothorax.",
    "image_path": ["images/effusion.png"],
}
EDEMA_CASE: dict[str, Any] = {
    "case_key": "case-edema",
    "task": "chexpert_binary",
    "question": "Does this chest X-ray show edema? Options:\nA) Yes\nB) No",
    "answer": "B",
    "reason_steps": ["The vessels are sharp.", "There is no pulmonary edema."],
    "original_report": "FINDINGS: Lungs are clear. No edema.",
    "image_path": [],
}


@pytest.fixture
def cases_file(tmp_path: Path) -> Path:
    """A radrbench-style file with two cases, one with an image relative to the file's folder."""
    (tmp_path / "images").mkdir()
    tiny_png(tmp_path / "images" / "effusion.png")
    path = tmp_path / "cases.jsonl"
    path.write_text(
        "".join(json.dumps(c) + "\n" for c in (EFFUSION_CASE, EDEMA_CASE)), encoding="utf-8"
    )
    return path


def read_rows(path: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
