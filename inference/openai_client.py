"""Chat completions through any OpenAI-compatible endpoint (OpenAI, a vLLM server, a proxy).

The official `openai` client does the HTTP; this wrapper adds what long evaluation runs need:
retries with exponential backoff (and the server's ``Retry-After``) on 429, 5xx, timeouts and
dropped connections; no retry on other 4xx, which will not get better; latency and token counts
per call. Settings come from arguments, else from the environment (``OPENAI_BASE_URL``,
``OPENAI_API_KEY``, ``OPENAI_MODEL``), so a key never has to appear on a command line. There is
no default endpoint: without a base URL the client refuses to start (ConfigError) rather than
send anything to the public OpenAI service.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from inference.config import ConfigError, endpoint_url

# A local vLLM server accepts any key; the client refuses to start without one.
PLACEHOLDER_KEY = "not-needed"


class EndpointError(RuntimeError):
    """A request that failed for good: a 4xx other than 429, or retries exhausted."""


class EndpointUnavailable(EndpointError):
    """Retries exhausted on 429/5xx/timeouts/connection errors: the endpoint, not the request."""


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: float  # the successful attempt's round trip
    attempts: int  # 1 when the first try succeeded
    finish_reason: str | None = None


@dataclass
class ChatClient:
    base_url: str | None = None  # e.g. http://127.0.0.1:8000/v1; None: OPENAI_BASE_URL, required
    api_key: str | None = None  # None: OPENAI_API_KEY, else a placeholder (local servers)
    model: str | None = None  # None: OPENAI_MODEL, else the first model the server lists
    timeout: float = 120.0  # seconds per attempt
    max_retries: int = 5  # retries after the first attempt, on 429/5xx/timeouts only
    backoff: float = 1.0  # first wait in seconds; doubles each retry, with jitter
    max_backoff: float = 60.0
    sleep: Callable[[float], None] = time.sleep  # tests pass a recorder instead of waiting

    def __post_init__(self) -> None:
        import openai  # the web app never loads this module; keep import cost off `score`

        if self.max_retries < 0 or self.timeout <= 0:
            raise ConfigError(
                f"retries must be 0 or more and the timeout positive, not {self.max_retries} "
                f"and {self.timeout}"
            )
        # Fail closed: the openai package would fall back to api.openai.com.
        self.base_url = endpoint_url(
            self.base_url or os.environ.get("OPENAI_BASE_URL"),
            "pass a base URL or set OPENAI_BASE_URL",
        )
        self.api_key = self.api_key or os.environ.get("OPENAI_API_KEY") or PLACEHOLDER_KEY
        self._openai = openai
        self._client = openai.OpenAI(
            base_url=self.base_url, api_key=self.api_key, timeout=self.timeout, max_retries=0
        )
        self.model = self.model or os.environ.get("OPENAI_MODEL") or None

    def resolve_model(self) -> str:
        """The model name to send: as configured, else the first one the server lists."""
        if not self.model:
            listed = self._call(lambda: self._client.models.list())[0]
            names = [model.id for model in listed.data]
            if not names:
                raise EndpointError(f"{self.base_url} lists no models: name the model to use")
            self.model = names[0]
        return self.model

    def complete(self, messages: list[dict[str, Any]], **params: Any) -> Completion:
        """One chat completion, retried on transient failures; raises EndpointError otherwise."""
        model = self.resolve_model()
        response, attempts, latency = self._call(
            lambda: self._client.chat.completions.create(model=model, messages=messages, **params)
        )
        choice = response.choices[0] if response.choices else None
        usage = getattr(response, "usage", None)
        return Completion(
            text=(choice.message.content or "") if choice else "",
            prompt_tokens=getattr(usage, "prompt_tokens", None),
            completion_tokens=getattr(usage, "completion_tokens", None),
            latency_ms=latency,
            attempts=attempts,
            finish_reason=getattr(choice, "finish_reason", None),
        )

    def _call(self, request: Callable[[], Any]) -> tuple[Any, int, float]:
        openai = self._openai
        for attempt in range(1, self.max_retries + 2):
            started = time.perf_counter()
            try:
                response = request()
            except openai.APIStatusError as exc:
                status = exc.status_code
                if status != 429 and status < 500:
                    raise EndpointError(
                        f"HTTP {status} from {self.base_url}: {exc.message}"
                    ) from exc
                failure: Exception = exc
                wait = _retry_after(exc.response) if exc.response is not None else None
            except (openai.APIConnectionError, openai.APITimeoutError) as exc:
                failure, wait = exc, None
            else:
                return response, attempt, (time.perf_counter() - started) * 1000
            if attempt > self.max_retries:
                raise EndpointUnavailable(
                    f"{self.base_url}: gave up after {attempt} attempts: {failure}"
                ) from failure
            if wait is None:
                wait = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
                wait *= 1 + random.random() * 0.25  # spread retries of concurrent workers
            self.sleep(min(wait, self.max_backoff))
        raise AssertionError("unreachable")  # the loop returns or raises


def _retry_after(response: Any) -> float | None:
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff
