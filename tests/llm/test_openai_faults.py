"""Every fault class a real OpenAI-compatible server produces, scripted on the loopback stub
(tests/llm/openai_stub.py): each is retried, then a recorded fallback; too many failed calls in a
row on one backend raise ``BackendUnavailableError`` naming it and its last errors."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest
from openai_stub import Reply, StubOpenAIServer, completion, cut_off, error, no_choices, raw
from pydantic import BaseModel, Field

from agents.llm.base import ChatMessage
from agents.llm.cache import LLMCache
from agents.llm.config import CacheMode, LLMConfig, OpenAIBackendConfig, RetryConfig
from agents.llm.factory import LLMPool, make_llm
from agents.llm.openai_backend import OpenAIBackend
from env.errors import BackendUnavailableError

MESSAGES = [ChatMessage(role="system", content="You are an analyst."), ChatMessage(role="user", content="ACME beat.")]
OPTIONS = ["buy", "sell", "hold"]


class Signal(BaseModel):
    action: Literal["buy", "sell", "hold"] = Field(description="Direction.")
    conviction: float = Field(ge=0, le=1, description="Confidence.")


FALLBACK = Signal(action="hold", conviction=0.0)

# One reply per fault class a request can fail with (the answer-level ones are below).
TRANSPORT_FAULTS = {
    "http_400": (error(400, "context_length_exceeded"), "HTTP 400"),
    "http_409": (error(409, "conflict"), "HTTP 409"),
    "http_422": (error(422, "unprocessable"), "HTTP 422"),
    "http_429": (error(429, "slow down", err_type="requests"), "HTTP 429"),
    "http_500": (error(500, "boom", err_type="server_error"), "HTTP 500"),
    "http_503": (error(503, "overloaded", err_type="server_error"), "HTTP 503"),
    "html_502": (raw(b"<html><body>502 Bad Gateway</body></html>", status=502, content_type="text/html"), "HTTP 502"),
    "html_200": (raw(b"<html>maintenance</html>", content_type="text/html"), "unparseable response body"),
    "truncated_json": (raw(b'{"id": "chatcmpl-1", "choices": [{"index": 0, "mess'), "unparseable response body"),
    "empty_choices": (no_choices(), "without choices"),
}


def make_backend(stub: StubOpenAIServer, sleeps: list[float], *, cap: int = 6, **overrides: object) -> OpenAIBackend:
    settings: dict[str, object] = {"model": "stub-model", "base_url": stub.base_url, "api_key_env": None, "timeout_s": 5.0}
    settings.update(overrides)
    return OpenAIBackend(
        OpenAIBackendConfig(**settings),  # type: ignore[arg-type]
        name="remote",
        retry=RetryConfig(max_attempts=2, base_delay_s=0.1, max_delay_s=0.1, max_consecutive_failures=cap),
        sleep=sleeps.append,
    )


@pytest.mark.parametrize("fault", sorted(TRANSPORT_FAULTS))
def test_transport_fault_is_retried_then_answered(stub: StubOpenAIServer, sleeps: list[float], fault: str) -> None:
    reply, _ = TRANSPORT_FAULTS[fault]
    stub.push(reply, completion('{"choice": "sell"}'))
    result = make_backend(stub, sleeps).choose(MESSAGES, OPTIONS, agent="direction", fallback="hold")
    assert result.choice == "sell" and not result.record.fallback
    assert result.record.attempts == 2 and sleeps == [0.1]


@pytest.mark.parametrize("fault", sorted(TRANSPORT_FAULTS))
def test_transport_fault_twice_is_a_recorded_fallback(stub: StubOpenAIServer, sleeps: list[float], fault: str) -> None:
    reply, described = TRANSPORT_FAULTS[fault]
    stub.push(reply, reply, reply, reply)
    backend = make_backend(stub, sleeps)
    choice = backend.choose(MESSAGES, OPTIONS, agent="direction", fallback="hold")
    assert choice.choice == "hold" and choice.record.fallback
    assert described in (choice.record.error or "") and "retries exhausted" in (choice.record.fallback_reason or "")
    text = backend.text(MESSAGES, agent="reflection")
    assert text.text == "" and text.record.fallback and described in (text.record.error or "")
    assert len(stub.requests) == 4


def test_null_content_in_text_is_retried(stub: StubOpenAIServer, sleeps: list[float]) -> None:
    stub.push(completion(None), completion("A lesson."))
    result = make_backend(stub, sleeps).text(MESSAGES, agent="reflection")
    assert result.text == "A lesson." and result.record.attempts == 2 and not result.record.fallback


def test_null_content_in_choose_gets_a_repair_then_falls_back(stub: StubOpenAIServer, sleeps: list[float]) -> None:
    stub.push(completion(None), completion(None))
    result = make_backend(stub, sleeps).choose(MESSAGES, OPTIONS, agent="direction", fallback="hold")
    assert result.choice == "hold" and result.record.fallback and result.record.attempts == 2
    assert "repair" in (result.record.fallback_reason or "")


@pytest.mark.parametrize("method", ["json_schema", "json_mode"])
def test_length_cut_answer_is_repaired_not_raised(stub: StubOpenAIServer, sleeps: list[float], method: str) -> None:
    # The regression of issue 14: the SDK's parser raised LengthFinishReasonError inside the node.
    stub.push(cut_off('{"action": "buy", "conviction": 0.'), completion('{"action": "buy", "conviction": 0.7}'))
    result = make_backend(stub, sleeps, structured_method=method).structured(
        MESSAGES, Signal, agent="news", fallback=FALLBACK
    )
    assert result.value == Signal(action="buy", conviction=0.7) and result.record.attempts == 2
    assert "length limit" in stub.requests[1]["messages"][-1]["content"]
    assert result.record.tokens_out == 48 + 7  # the cut answer's tokens are counted too


def test_length_cut_twice_is_a_recorded_fallback(stub: StubOpenAIServer, sleeps: list[float]) -> None:
    stub.push(cut_off("I think the stock will"), cut_off("As an AI"))
    result = make_backend(stub, sleeps).choose(MESSAGES, OPTIONS, agent="direction", fallback="hold")
    assert result.choice == "hold" and result.record.fallback
    assert result.record.raw_output == "As an AI" and "length limit" in (result.record.error or "")


def test_choose_and_structured_send_their_max_tokens(stub: StubOpenAIServer, sleeps: list[float]) -> None:
    stub.push(completion('{"choice": "buy"}'), completion('{"action": "buy", "conviction": 0.5}'))
    backend = make_backend(stub, sleeps, max_tokens=200, choose_max_tokens=24)
    backend.choose(MESSAGES, OPTIONS, agent="direction", fallback="hold")
    backend.structured(MESSAGES, Signal, agent="news", fallback=FALLBACK)
    sent = [request.get("max_completion_tokens", request.get("max_tokens")) for request in stub.requests]
    assert sent == [24, 200]


def test_hang_then_fault_then_answer(stub: StubOpenAIServer, sleeps: list[float]) -> None:
    stub.push(Reply(delay_s=2.0, body=completion("late").body), no_choices(), completion("on time"))
    backend = OpenAIBackend(
        OpenAIBackendConfig(model="m", base_url=stub.base_url, api_key_env=None, timeout_s=0.3),
        name="remote", retry=RetryConfig(max_attempts=3, base_delay_s=0.1), sleep=sleeps.append,
    )
    result = backend.text(MESSAGES, agent="reflection")
    assert result.text == "on time" and result.record.attempts == 3


def test_consecutive_failures_stop_naming_backend_and_errors(stub: StubOpenAIServer, sleeps: list[float]) -> None:
    stub.default = error(503, "overloaded", err_type="server_error")
    backend = make_backend(stub, sleeps, cap=3)
    first = backend.choose(MESSAGES, OPTIONS, agent="direction", fallback="hold")
    second = backend.text(MESSAGES, agent="reflection")
    assert first.record.fallback and second.record.fallback
    with pytest.raises(BackendUnavailableError) as info:
        backend.choose(MESSAGES, OPTIONS, agent="news_analyst", fallback="hold")
    assert info.value.backend == "remote" and info.value.failures == 3
    assert "'remote'" in str(info.value) and "news_analyst: HTTP 503" in str(info.value)


def test_an_answered_request_resets_the_failure_count(stub: StubOpenAIServer, sleeps: list[float]) -> None:
    down = error(500, "boom", err_type="server_error")
    backend = make_backend(stub, sleeps, cap=2)
    stub.push(down, down, completion('{"choice": "buy"}'), down, down)
    assert backend.choose(MESSAGES, OPTIONS, agent="a", fallback="hold").record.fallback
    assert backend.choose(MESSAGES, OPTIONS, agent="a", fallback="hold").choice == "buy"
    assert backend.choose(MESSAGES, OPTIONS, agent="a", fallback="hold").record.fallback  # 1 in a row again


def test_a_server_failure_is_not_cached_so_a_rerun_asks_again(stub: StubOpenAIServer, tmp_path: Path) -> None:
    config = LLMConfig(
        backends={"remote": OpenAIBackendConfig(model="stub-model", base_url=stub.base_url, api_key_env=None)},
        default="remote",
        retry=RetryConfig(max_attempts=1, base_delay_s=0.0),
    )
    down = error(503, "overloaded", err_type="server_error")
    stub.push(down, completion('{"choice": "sell"}'), completion('{"choice": "buy"}'))
    with LLMCache(tmp_path / "cache.sqlite", CacheMode.AUTO) as cache, LLMPool(config) as pool:
        llm = make_llm(config, "direction", cache=cache, pool=pool)
        first = llm.choose(MESSAGES, OPTIONS, agent="direction", fallback="hold")
        second = llm.choose(MESSAGES, OPTIONS, agent="direction", fallback="hold")
        third = llm.choose(MESSAGES, OPTIONS, agent="direction", fallback="hold")
    assert first.record.fallback and first.record.server_failure
    assert second.choice == "sell" and not second.record.cache_hit
    assert third.choice == "sell" and third.record.cache_hit  # a real answer is replayed
    assert len(stub.requests) == 2
