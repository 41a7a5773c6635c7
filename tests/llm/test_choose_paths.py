"""choose picks the best path a server supports and records it; provider presets fill the defaults."""

from __future__ import annotations

import pytest
from openai_stub import StubOpenAIServer, completion, token_logprobs

from agents.llm.base import ChatMessage
from agents.llm.config import Capabilities, OpenAIBackendConfig, RetryConfig
from agents.llm.openai_backend import OpenAIBackend, parse_option

MESSAGES = [ChatMessage(role="system", content="You are a trader."), ChatMessage(role="user", content="ACME beat.")]
OPTIONS = ["buy", "sell", "hold"]
NOTHING = {"logprobs": False, "json_schema": False, "tools": False, "json_mode": False}


def make_backend(stub: StubOpenAIServer, **overrides: object) -> OpenAIBackend:
    settings: dict[str, object] = {"model": "m", "base_url": stub.base_url, "choice_smoothing": 0.0}
    settings.update(overrides)
    return OpenAIBackend(OpenAIBackendConfig(**settings), name="srv", retry=RetryConfig(max_attempts=1))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I would BUY this one.", "buy"),
        ("Strong sell, then hold.", "strong sell"),  # the longer option starting at the same place
        ("sellers are out; hold", "hold"),  # whole words only
        ("no idea", None),
    ],
)
def test_parse_option(text: str, expected: str | None) -> None:
    assert parse_option(text, ["buy", "sell", "strong sell", "hold"]) == expected


def test_server_with_no_capabilities_gets_the_option_parsed_from_free_text(stub: StubOpenAIServer) -> None:
    stub.push(completion("Given the beat, I would buy."))
    backend = make_backend(stub, provider="transformers")
    result = backend.choose(MESSAGES, OPTIONS, agent="direction", fallback="hold")
    assert result.choice == "buy" and result.record.path == "text" and not result.record.fallback
    sent = stub.requests[0]
    assert "response_format" not in sent and "tools" not in sent and "logprobs" not in sent
    assert sent["messages"][-1]["content"].startswith("Answer with exactly one of: buy, sell, hold")
    assert sent["max_completion_tokens"] == 48


def test_free_text_without_an_option_gets_a_repair_then_the_fallback(stub: StubOpenAIServer) -> None:
    stub.push(completion("The market is uncertain."), completion("Still uncertain."))
    result = make_backend(stub, capabilities=NOTHING).choose(MESSAGES, OPTIONS, agent="direction", fallback="hold")
    assert result.choice == "hold" and result.record.fallback and result.record.attempts == 2
    assert "named none of the options" in stub.requests[1]["messages"][-1]["content"]


def test_logprobs_over_free_text_when_schemas_are_ignored(stub: StubOpenAIServer) -> None:
    pieces = token_logprobs([(" Sell", -0.4, {" Sell": -0.4, " Buy": -1.3, "hold": -2.2, " S": -3.0}), (".", -0.1, {})])
    stub.push(completion(" Sell.", logprobs=pieces))
    backend = make_backend(stub, provider="deepseek", base_url=stub.base_url, api_key_env=None)
    result = backend.choose(MESSAGES, OPTIONS, agent="direction", fallback="hold")
    assert result.record.path == "logprobs" and result.choice == "sell"
    # e^-0.4 + e^-3.0 (" S" starts only "sell"), e^-1.3, e^-2.2; the "." token comes later and is ignored
    mass = {"sell": 0.670320046 + 0.049787068, "buy": 0.272531793, "hold": 0.110803158}
    for option, value in mass.items():
        assert result.probs[option] == pytest.approx(value / sum(mass.values()), rel=1e-6)
    assert stub.requests[0]["logprobs"] is True and "response_format" not in stub.requests[0]


def test_missing_logprobs_fall_back_to_the_next_path(stub: StubOpenAIServer) -> None:
    stub.push(completion("hold"), completion(tool_call=("Choice", {"choice": "buy"})))
    backend = make_backend(stub, capabilities={**NOTHING, "logprobs": True, "tools": True})
    first = backend.choose(MESSAGES, OPTIONS, agent="direction", fallback="sell")
    assert first.choice == "hold" and first.record.path == "text"
    assert backend.choose_path() == "function_calling"
    second = backend.choose(MESSAGES, OPTIONS, agent="direction", fallback="sell")
    assert second.choice == "buy" and second.record.path == "function_calling"
    assert stub.requests[1]["tools"][0]["function"]["name"] == "Choice"


@pytest.mark.parametrize(
    ("capabilities", "path"),
    [
        ({"logprobs": True, "json_schema": True, "tools": True, "json_mode": True}, "logprobs"),
        ({**NOTHING, "json_schema": True, "tools": True}, "json_schema"),
        ({**NOTHING, "tools": True, "json_mode": True}, "function_calling"),
        ({**NOTHING, "json_mode": True}, "json_mode"),
        (NOTHING, "text"),
    ],
)
def test_auto_takes_the_best_supported_path(stub: StubOpenAIServer, capabilities: dict, path: str) -> None:
    assert make_backend(stub, capabilities=capabilities).choose_path() == path
    assert make_backend(stub, capabilities=capabilities, choose_method="json_mode").choose_path() == "json_mode"


def test_provider_presets() -> None:
    local = OpenAIBackendConfig(model="m", base_url="http://127.0.0.1:8000/v1")
    assert local.api_key_env is None  # no key asked of a server on this machine
    assert OpenAIBackendConfig(model="m").api_key_env == "OPENAI_API_KEY"
    deepseek = OpenAIBackendConfig(model="deepseek-chat", provider="deepseek")
    assert (deepseek.base_url, deepseek.api_key_env, deepseek.structured_method) == (
        "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY", "json_mode"
    )
    assert deepseek.resolved_capabilities.json_schema is False
    ollama = OpenAIBackendConfig(model="llama3", provider="ollama", base_url="http://127.0.0.1:9999/v1")
    assert ollama.base_url == "http://127.0.0.1:9999/v1" and ollama.api_key_env is None  # given fields win
    served = OpenAIBackendConfig(model="m", provider="transformers")
    assert served.resolved_capabilities == Capabilities(**NOTHING)
    assert OpenAIBackendConfig.model_validate(served.model_dump()) == served  # config.json round-trips
