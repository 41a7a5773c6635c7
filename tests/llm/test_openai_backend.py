"""The openai backend against a real HTTP server on 127.0.0.1 (tests/llm/openai_stub.py), scripted per test."""

from __future__ import annotations

import json
import logging
from typing import Literal

import pytest
from openai_stub import Reply, StubOpenAIServer, completion, error, token_logprobs
from pydantic import BaseModel, Field

from agents.llm.base import ChatMessage
from agents.llm.config import OpenAIBackendConfig, RetryConfig
from agents.llm.openai_backend import OpenAIBackend
from env.errors import LLMConfigError

KEY = "sk-test-SECRET-5f2c9a"
MESSAGES = [ChatMessage(role="system", content="You are an analyst."), ChatMessage(role="user", content="AAPL beat.")]


class Signal(BaseModel):
    action: Literal["buy", "sell", "hold"] = Field(description="Direction.")
    conviction: float = Field(ge=0, le=1, description="Confidence.")


FALLBACK = Signal(action="hold", conviction=0.0)


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TG_TEST_KEY", KEY)


def make_backend(stub: StubOpenAIServer, sleeps: list[float], **overrides: object) -> OpenAIBackend:
    settings: dict[str, object] = {
        "model": "stub-model", "base_url": stub.base_url, "api_key_env": "TG_TEST_KEY", "timeout_s": 5.0,
    }
    settings.update(overrides)
    return OpenAIBackend(
        OpenAIBackendConfig(**settings),  # type: ignore[arg-type]
        name="remote",
        retry=RetryConfig(max_attempts=3, base_delay_s=0.25, max_delay_s=0.4),
        sleep=sleeps.append,
    )


def test_text_returns_content_and_usage(stub: StubOpenAIServer, sleeps: list[float]) -> None:
    stub.push(completion("Buy the dip.", usage=(42, 5)))
    result = make_backend(stub, sleeps).text(MESSAGES, agent="news", max_tokens=20)
    assert result.text == "Buy the dip."
    assert (result.record.tokens_in, result.record.tokens_out, result.record.attempts) == (42, 5, 1)
    assert result.record.backend == "openai" and result.record.agent == "news" and not result.record.fallback
    sent = stub.requests[0]
    assert sent["model"] == "stub-model" and sent.get("max_completion_tokens", sent.get("max_tokens")) == 20
    assert [m["role"] for m in sent["messages"]] == ["system", "user"]
    assert {k.lower(): v for k, v in stub.headers[0].items()}["authorization"] == f"Bearer {KEY}"
    assert sleeps == []


@pytest.mark.parametrize("method", ["json_schema", "json_mode"])
def test_structured_valid_json(stub: StubOpenAIServer, sleeps: list[float], method: str) -> None:
    stub.push(completion('{"action": "buy", "conviction": 0.8}'))
    result = make_backend(stub, sleeps, structured_method=method).structured(
        MESSAGES, Signal, agent="news", fallback=FALLBACK
    )
    assert result.value == Signal(action="buy", conviction=0.8)
    assert not result.record.fallback and result.record.attempts == 1
    assert stub.requests[0]["response_format"]["type"] == ("json_schema" if method == "json_schema" else "json_object")


def test_structured_tool_call_answer(stub: StubOpenAIServer, sleeps: list[float]) -> None:
    stub.push(completion(tool_call=("Signal", {"action": "sell", "conviction": 0.3})))
    result = make_backend(stub, sleeps, structured_method="function_calling").structured(
        MESSAGES, Signal, agent="news", fallback=FALLBACK
    )
    assert result.value == Signal(action="sell", conviction=0.3)
    assert stub.requests[0]["tools"][0]["function"]["name"] == "Signal"
    assert json.loads(result.record.raw_output or "") == [{"action": "sell", "conviction": 0.3}]


def test_garbage_json_gets_one_repair_retry(stub: StubOpenAIServer, sleeps: list[float]) -> None:
    stub.push(completion("I think you should buy {"), completion('{"action": "buy", "conviction": 0.6}'))
    result = make_backend(stub, sleeps).structured(MESSAGES, Signal, agent="news", fallback=FALLBACK)
    assert result.value == Signal(action="buy", conviction=0.6)
    assert result.record.attempts == 2 and not result.record.fallback
    repair = stub.requests[1]["messages"]
    assert repair[-2] == {"role": "assistant", "content": "I think you should buy {"}
    assert "not valid" in repair[-1]["content"]
    assert sleeps == []  # a repair is not a transport retry


def test_wrong_schema_twice_returns_recorded_fallback(stub: StubOpenAIServer, sleeps: list[float]) -> None:
    stub.push(completion('{"action": "moon"}', usage=(10, 3)), completion('{"action": "up", "conviction": 7}', usage=(20, 4)))
    result = make_backend(stub, sleeps).structured(MESSAGES, Signal, agent="news", fallback=FALLBACK)
    assert result.value is FALLBACK
    record = result.record
    assert record.fallback and record.attempts == 2 and len(stub.requests) == 2
    assert record.raw_output == '{"action": "up", "conviction": 7}'
    assert "ValidationError" in (record.error or "") and "repair" in (record.fallback_reason or "")
    assert (record.tokens_in, record.tokens_out) == (30, 7)


def test_rate_limit_then_success_is_retried_with_backoff(stub: StubOpenAIServer, sleeps: list[float]) -> None:
    stub.push(error(429, "Rate limit reached", err_type="requests"), completion("fine"))
    result = make_backend(stub, sleeps).text(MESSAGES, agent="news")
    assert result.text == "fine" and result.record.attempts == 2
    assert sleeps == [0.25]


def test_server_errors_exhaust_retries(stub: StubOpenAIServer, sleeps: list[float]) -> None:
    stub.push(*(error(500, "boom", err_type="server_error") for _ in range(6)))
    backend = make_backend(stub, sleeps)
    text = backend.text(MESSAGES, agent="news")
    assert text.text == "" and text.record.fallback and text.record.attempts == 3
    assert "retries exhausted" in (text.record.fallback_reason or "")
    assert sleeps == [0.25, 0.4]  # doubled, then capped at max_delay_s
    result = backend.structured(MESSAGES, Signal, agent="news", fallback=FALLBACK)
    assert result.value is FALLBACK and result.record.fallback and result.record.attempts == 3
    assert (result.record.error or "").startswith("HTTP 500")
    assert len(stub.requests) == 6


def test_hang_past_timeout_is_retried(stub: StubOpenAIServer, sleeps: list[float]) -> None:
    stub.push(Reply(delay_s=3.0, body=completion("late").body), completion("on time"))
    result = make_backend(stub, sleeps, timeout_s=0.3).text(MESSAGES, agent="news")
    assert result.text == "on time" and result.record.attempts == 2
    assert sleeps == [0.25]


def test_unauthorized_fails_fast_naming_api_key_env(stub: StubOpenAIServer, sleeps: list[float]) -> None:
    stub.push(error(401, f"Incorrect API key provided: {KEY}", code="invalid_api_key"))
    with pytest.raises(LLMConfigError, match=r"llm\.backends\.remote\.api_key_env") as info:
        make_backend(stub, sleeps).text(MESSAGES, agent="news")
    assert KEY not in str(info.value)
    assert len(stub.requests) == 1 and sleeps == []


def test_forbidden_fails_fast(stub: StubOpenAIServer, sleeps: list[float]) -> None:
    stub.push(error(403, "project has no access"))
    with pytest.raises(LLMConfigError, match="api_key_env"):
        make_backend(stub, sleeps).structured(MESSAGES, Signal, agent="news", fallback=FALLBACK)
    assert len(stub.requests) == 1


def test_unknown_model_fails_fast_naming_model(stub: StubOpenAIServer, sleeps: list[float]) -> None:
    stub.push(error(404, "The model `gpt-9` does not exist", code="model_not_found"))
    with pytest.raises(LLMConfigError, match=r"llm\.backends\.remote\.model: model 'gpt-9' not found"):
        make_backend(stub, sleeps, model="gpt-9").text(MESSAGES, agent="news")
    assert len(stub.requests) == 1


def test_missing_key_variable_names_the_field(
    stub: StubOpenAIServer, sleeps: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TG_TEST_KEY")
    with pytest.raises(LLMConfigError, match=r"llm\.backends\.remote\.api_key_env: .*'TG_TEST_KEY'"):
        make_backend(stub, sleeps)


def test_key_never_in_records_logs_or_reprs(
    stub: StubOpenAIServer, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    # The server echoes the key in its errors (some do); it must be scrubbed everywhere we write.
    stub.push(
        error(500, f"upstream rejected {KEY}", err_type="server_error"),
        completion(f"not json, key={KEY}"),
        error(503, f"overloaded for {KEY}", err_type="server_error"),
        completion("still not json"),
    )
    backend = make_backend(stub, sleeps)
    with caplog.at_level(logging.DEBUG):
        result = backend.structured(MESSAGES, Signal, agent="news", fallback=FALLBACK)
    assert result.record.fallback
    assert "upstream rejected ***" in caplog.text
    dumped = result.model_dump_json() + caplog.text + repr(backend) + repr(result) + str(backend.__dict__.get("_chat"))
    assert KEY not in dumped.replace(f"key={KEY}", "")  # the model's own raw text is kept verbatim
    assert KEY not in (result.record.error or "")


def test_choose_with_logprobs_uses_answer_token_mass(stub: StubOpenAIServer, sleeps: list[float]) -> None:
    pieces = token_logprobs(
        [
            ('{"', -0.01, {'{"': -0.01}),
            ("choice", -0.01, {"choice": -0.01}),
            ('":"', -0.01, {'":"': -0.01}),
            ("sell", -0.5, {"sell": -0.5, "buy": -1.2, "hold": -2.5, "S": -4.0}),
            ('"}', -0.01, {'"}': -0.01}),
        ]
    )
    stub.push(completion('{"choice":"sell"}', logprobs=pieces))
    result = make_backend(stub, sleeps, logprobs=True, choice_smoothing=0.0).choose(
        MESSAGES, ["buy", "sell", "hold"], agent="direction", fallback="hold"
    )
    assert result.choice == "sell"
    assert stub.requests[0]["logprobs"] is True and stub.requests[0]["top_logprobs"] == 5
    mass = {"sell": 0.6065306597, "buy": 0.3011942119, "hold": 0.0820849986}
    total = sum(mass.values())
    for option, value in mass.items():
        assert result.probs[option] == pytest.approx(value / total, rel=1e-6)
    enum = stub.requests[0]["response_format"]["json_schema"]["schema"]["properties"]["choice"]["enum"]
    assert enum == ["buy", "sell", "hold"]


def test_choose_without_logprobs_is_smoothed_one_hot(stub: StubOpenAIServer, sleeps: list[float]) -> None:
    stub.push(completion('{"choice": "buy"}'))
    result = make_backend(stub, sleeps, choice_smoothing=0.09).choose(
        MESSAGES, ["buy", "sell", "hold"], agent="direction", fallback="hold"
    )
    assert result.choice == "buy"
    assert result.probs == pytest.approx({"buy": 0.94, "sell": 0.03, "hold": 0.03})


def test_choose_outside_options_falls_back(stub: StubOpenAIServer, sleeps: list[float]) -> None:
    stub.push(completion('{"choice": "short"}'), completion('{"choice": "yolo"}'))
    result = make_backend(stub, sleeps, choice_smoothing=0.0).choose(
        MESSAGES, ["buy", "sell", "hold"], agent="direction", fallback="hold"
    )
    assert result.choice == "hold" and result.record.fallback and result.record.attempts == 2
    assert result.probs == {"buy": 0.0, "sell": 0.0, "hold": 1.0}
