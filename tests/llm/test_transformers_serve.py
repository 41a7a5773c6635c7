"""The openai backend against a real server not written here: ``transformers serve`` (the
``serving`` extra) on 127.0.0.1, serving the embedded SmolLM2's converted folder on the CPU.

This server ignores ``response_format`` and returns no logprobs (FACTS.md), and without a cap
it generates 1,024 tokens; the regression of issue 14 was ``openai.LengthFinishReasonError``
escaping into the direction node. Each call here is capped to a few tokens (~1 s).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Literal

import httpx
import pytest
from pydantic import BaseModel, Field

from agents.llm.base import ChatMessage
from agents.llm.config import LLMConfig, OpenAIBackendConfig, RetryConfig
from agents.llm.doctor import diagnose
from agents.llm.local_model import converted_model_folder
from agents.llm.openai_backend import OpenAIBackend

pytestmark = pytest.mark.slow

MESSAGES = [
    ChatMessage(role="system", content="You are a trading assistant."),
    ChatMessage(role="user", content="ACME beat earnings estimates. Should we buy, sell or hold?"),
]
OPTIONS = ["buy", "sell", "hold"]


class Signal(BaseModel):
    action: Literal["buy", "sell", "hold"] = Field(description="Direction.")
    conviction: float = Field(ge=0, le=1, description="Confidence.")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(base_url, model name) of a `transformers serve` subprocess, stopped after the module."""
    folder = str(converted_model_folder()) + "/"  # the server names its model by the path it was given
    port = _free_port()
    log = (tmp_path_factory.mktemp("serve") / "serve.log").open("wb")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TRANSFORMERS_VERBOSITY": "error"}
    command = [sys.executable, "-m", "transformers.cli.transformers", "serve", folder, "--port", str(port), "--device", "cpu"]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, f"transformers serve exited with {process.returncode}; see {log.name}"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"transformers serve not healthy after 120 s; see {log.name}"
            time.sleep(0.3)
        yield f"http://127.0.0.1:{port}/v1", folder
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def backend(served: tuple[str, str], **overrides: object) -> OpenAIBackend:
    base_url, model = served
    settings: dict[str, object] = {"model": model, "base_url": base_url, "api_key_env": None, "timeout_s": 30.0}
    settings.update(overrides)
    return OpenAIBackend(
        OpenAIBackendConfig(**settings),  # type: ignore[arg-type]
        name="served", retry=RetryConfig(max_attempts=2, base_delay_s=0.1),
    )


def test_text_is_capped_by_max_tokens(served: tuple[str, str]) -> None:
    result = backend(served).text(MESSAGES, agent="reflection", max_tokens=6)
    assert result.text.strip() and not result.record.fallback
    assert 1 <= result.record.tokens_out <= 6 and result.record.tokens_in > 10


def test_length_cut_structured_answer_is_a_recorded_fallback(served: tuple[str, str]) -> None:
    fallback = Signal(action="hold", conviction=0.0)
    result = backend(served, max_tokens=3).structured(MESSAGES, Signal, agent="news", fallback=fallback)
    assert result.value is fallback and result.record.fallback
    assert "length limit" in (result.record.error or "") and result.record.attempts == 2
    assert result.record.tokens_out <= 2 * 3


def test_choose_returns_an_option_or_a_recorded_fallback_quickly(served: tuple[str, str]) -> None:
    started = time.perf_counter()
    # The preset knows this server honours no schema, tools or logprobs: the option is parsed from free text.
    result = backend(served, provider="transformers", choose_max_tokens=12).choose(
        MESSAGES, OPTIONS, agent="direction", fallback="hold"
    )
    assert result.choice in OPTIONS and abs(sum(result.probs.values()) - 1) < 1e-9
    assert result.record.path == "text" and result.record.raw_output
    assert not result.record.fallback or "none of the options" in (result.record.error or "")
    assert result.record.tokens_out <= 2 * 12
    assert time.perf_counter() - started < 60  # uncapped, one call alone took ~50 s


def test_doctor_measures_what_this_server_honours(served: tuple[str, str]) -> None:
    base_url, model = served
    declared_all = LLMConfig.model_validate(
        {"backends": {"s": {"kind": "openai", "model": model, "base_url": base_url}}, "default": "s"}
    )
    checks = {check.check: check for check in diagnose(declared_all, {"s"})}
    assert [checks[name].status for name in ("key set", "reachable", "model known", "latency")] == ["ok"] * 4
    # Measured (FACTS.md): it ignores json_schema and returns no logprobs; declared by default, so warnings.
    assert checks["json_schema honoured"].status == "warn"
    assert checks["tools honoured"].status == "warn"
    assert checks["logprobs returned"].status == "ok" and checks["logprobs returned"].detail.startswith("no")
    preset = LLMConfig.model_validate(
        {"backends": {"s": {"kind": "openai", "provider": "transformers", "model": model, "base_url": base_url}},
         "default": "s"}
    )
    assert all(check.status in ("ok", "skip") for check in diagnose(preset, {"s"}))  # the preset matches the server
