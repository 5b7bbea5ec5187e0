"""An OpenAI-compatible HTTP server on 127.0.0.1 for tests, whose every answer the test decides.

Mining (LLM stages), inference (generation over HTTP) and training (the LLM judge) all talk to
such an endpoint; their tests share this server and differ only in the `respond` function:

    def respond(method, path, body, headers):
        return 200, chat_completion("hello", body["model"]), {}

    with loopback_server(respond) as base_url:   # "http://127.0.0.1:PORT/v1"
        ...

No Django, no database: the inference tests run with ``-p no:django``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# (method, path, JSON body ({} for a GET), request headers in lower case)
#   -> (HTTP status, JSON payload, extra response headers)
Respond = Callable[
    [str, str, dict[str, Any], dict[str, str]], tuple[int, dict[str, Any], dict[str, str]]
]


def chat_completion(
    content: str,
    model: str,
    *,
    completion_id: str = "chatcmpl-1",
    prompt_tokens: int = 1,
    completion_tokens: int = 1,
) -> dict[str, Any]:
    """An OpenAI `chat.completion` object with one choice holding `content`."""
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def error(status: int, message: str) -> tuple[int, dict[str, Any], dict[str, str]]:
    """An OpenAI-style error answer."""
    return status, {"error": {"message": message}}, {}


@contextmanager
def loopback_server(respond: Respond) -> Iterator[str]:
    """Serve `respond` on a free port of 127.0.0.1; yields the base URL (ending in /v1)."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output quiet
            pass

        def _answer(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}") if length else {}
            headers = {name.lower(): value for name, value in self.headers.items()}
            status, payload, extra = respond(method, self.path, body, headers)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self._answer("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._answer("POST")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
