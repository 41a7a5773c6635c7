"""vLLM: an OpenAI-compatible server, either already running or started here as a subprocess.

``VLLMServer`` runs ``vllm serve MODEL --port P ARGS``, polls ``GET /health`` until ready and
stops the server (SIGTERM to its process group, then SIGKILL) on ``stop()``, on leaving the
``with`` block, or at interpreter exit. The ``vllm`` package is an optional extra for GPU
hosts; only starting a server needs it: the client side is the OpenAI backend.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx
from pydantic import BaseModel

from env.errors import LLMConfigError, LLMError

from .base import ChatMessage, ChoiceRequest, ChoiceResult, StructuredResult, TextResult
from .config import RetryConfig, VLLMBackendConfig, VLLMServeConfig
from .openai_backend import OpenAIBackend


class VLLMServer:
    """A ``vllm serve`` subprocess on 127.0.0.1. Use as a context manager or call start/stop."""

    def __init__(self, config: VLLMServeConfig, *, name: str = "vllm") -> None:
        self.config = config
        self.name = name
        self.process: subprocess.Popen[bytes] | None = None
        self._log_path: Path | None = None

    @property
    def base_url(self) -> str:
        """OpenAI-compatible root of the server."""
        return f"http://127.0.0.1:{self.config.port}/v1"

    def command(self) -> list[str]:
        """The command line that starts the server."""
        executable = shutil.which("vllm")
        if executable is None:
            raise LLMConfigError(
                f"llm.backends.{self.name}.serve: the `vllm` command is not installed. "
                "Run `pip install tradegraph[vllm]` on a GPU host, or set base_url to a running server."
            )
        return [executable, "serve", self.config.model, "--port", str(self.config.port), *self.config.args]

    def start(self) -> VLLMServer:
        """Start the server and wait until ``GET /health`` answers 200."""
        if self.process is not None:
            return self
        command = self.command()
        handle, log_name = tempfile.mkstemp(prefix="tradegraph-vllm-", suffix=".log")
        self._log_path = Path(log_name)
        with os.fdopen(handle, "wb") as log_file:
            # New session: SIGTERM/SIGKILL reach vLLM's worker processes too.
            self.process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
        atexit.register(self.stop)
        try:
            self._wait_healthy()
        except LLMError:
            self.stop()
            raise
        return self

    def _log_tail(self) -> str:
        if self._log_path is None or not self._log_path.exists():
            return ""
        return self._log_path.read_text(errors="replace")[-2000:]

    def _wait_healthy(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.config.startup_timeout_s
        health = f"http://127.0.0.1:{self.config.port}/health"
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                raise LLMError(
                    f"llm.backends.{self.name}.serve: `vllm serve` exited with code {code} before becoming ready; "
                    f"log tail:\n{self._log_tail()}"
                )
            try:
                if httpx.get(health, timeout=self.config.poll_interval_s).status_code == 200:
                    return
            except httpx.TransportError:
                pass  # not listening yet
            time.sleep(self.config.poll_interval_s)
        raise LLMError(
            f"llm.backends.{self.name}.serve.startup_timeout_s: server not healthy after "
            f"{self.config.startup_timeout_s}s; log tail:\n{self._log_tail()}"
        )

    def stop(self) -> None:
        """SIGTERM the server's process group, then SIGKILL after ``stop_timeout_s``. Idempotent."""
        process, self.process = self.process, None
        if process is None:
            return
        atexit.unregister(self.stop)
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=self.config.stop_timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            except ProcessLookupError:
                pass  # already gone
        if self._log_path is not None:
            self._log_path.unlink(missing_ok=True)

    def __enter__(self) -> VLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class VLLMBackend:
    """The OpenAI backend pointed at a vLLM server, which is started on first use if configured."""

    kind = "vllm"

    def __init__(
        self,
        config: VLLMBackendConfig,
        *,
        name: str,
        retry: RetryConfig | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.name = name
        self.model_name = config.request_model
        self._retry = retry
        self._sleep = sleep
        self.server = VLLMServer(config.serve, name=name) if config.serve is not None else None
        self._client: OpenAIBackend | None = None

    def __repr__(self) -> str:
        return f"VLLMBackend(name={self.name!r}, model={self.model_name!r})"

    @property
    def client(self) -> OpenAIBackend:
        """The OpenAI-compatible client, starting the server first if this backend owns one."""
        if self._client is None:
            base_url = self.config.base_url
            if self.server is not None:
                base_url = self.server.start().base_url
            assert base_url is not None  # VLLMBackendConfig guarantees base_url or serve
            self._client = OpenAIBackend(
                self.config.as_openai(base_url), name=self.name, retry=self._retry, sleep=self._sleep, kind="vllm"
            )
        return self._client

    def close(self) -> None:
        """Stop the server if this backend started it."""
        if self.server is not None:
            self.server.stop()
        self._client = None

    def text(
        self, messages: Sequence[ChatMessage], *, agent: str, max_tokens: int = 128, temperature: float = 0.0
    ) -> TextResult:
        """See ``OpenAIBackend.text``."""
        return self.client.text(messages, agent=agent, max_tokens=max_tokens, temperature=temperature)

    def structured(
        self, messages: Sequence[ChatMessage], schema: type[BaseModel], *, agent: str, fallback: BaseModel
    ) -> StructuredResult:
        """See ``OpenAIBackend.structured``."""
        return self.client.structured(messages, schema, agent=agent, fallback=fallback)

    def choose(
        self, messages: Sequence[ChatMessage], options: Sequence[str], *, agent: str, fallback: str
    ) -> ChoiceResult:
        """See ``OpenAIBackend.choose``."""
        return self.client.choose(messages, options, agent=agent, fallback=fallback)

    def choose_many(self, requests: Sequence[ChoiceRequest], *, agent: str) -> list[ChoiceResult]:
        """See ``OpenAIBackend.choose_many``."""
        return self.client.choose_many(requests, agent=agent)
