from __future__ import annotations

import pytest
from pydantic import ValidationError

from agents.llm.config import (
    LLMConfig,
    LocalBackendConfig,
    OpenAIBackendConfig,
    RetryConfig,
    VLLMBackendConfig,
)


def test_default_config_is_the_embedded_local_backend() -> None:
    config = LLMConfig()
    assert isinstance(config.backends["local"], LocalBackendConfig)
    assert config.backend_name("anyone") == "local"


def test_backends_are_discriminated_on_kind() -> None:
    config = LLMConfig.model_validate(
        {
            "backends": {
                "local": {"kind": "local", "threads": 1},
                "gpt": {"kind": "openai", "model": "gpt-4o-mini"},
                "v": {"kind": "vllm", "serve": {"model": "Qwen/Qwen2.5-7B-Instruct", "port": 8123}},
            },
            "agents": {"news_analyst": "gpt"},
        }
    )
    assert isinstance(config.backends["gpt"], OpenAIBackendConfig)
    assert isinstance(config.backends["v"], VLLMBackendConfig)
    assert config.backends["v"].request_model == "Qwen/Qwen2.5-7B-Instruct"
    assert config.backend_name("news_analyst") == "gpt"
    assert config.backend_name("direction") == "local"


def test_unknown_backend_in_agents_names_the_field() -> None:
    with pytest.raises(ValidationError, match=r"llm\.agents\.news_analyst: unknown backend 'gtp'"):
        LLMConfig(agents={"news_analyst": "gtp"})


def test_unknown_default_backend_names_the_field() -> None:
    with pytest.raises(ValidationError, match=r"llm\.default: unknown backend 'remote'"):
        LLMConfig(default="remote")


def test_unknown_fields_are_rejected() -> None:
    with pytest.raises(ValidationError, match="api_key"):
        OpenAIBackendConfig(model="m", api_key="sk-should-not-be-here")  # type: ignore[call-arg]


def test_vllm_needs_exactly_one_of_base_url_and_serve() -> None:
    with pytest.raises(ValidationError, match="exactly one of base_url"):
        VLLMBackendConfig(model="m")
    with pytest.raises(ValidationError, match="model is required"):
        VLLMBackendConfig(base_url="http://127.0.0.1:1/v1")


def test_retry_delay_doubles_and_is_capped() -> None:
    retry = RetryConfig(max_attempts=6, base_delay_s=0.5, max_delay_s=3.0)
    assert [retry.delay_s(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_every_config_field_has_a_description() -> None:
    from agents.llm import config as module

    for model in (
        module.LocalBackendConfig, module.OpenAIBackendConfig, module.VLLMBackendConfig, module.VLLMServeConfig,
        module.LLMCacheConfig, module.BudgetConfig, module.ModelPrice, module.RetryConfig, module.LLMConfig,
    ):
        missing = [name for name, field in model.model_fields.items() if not field.description]
        assert not missing, f"{model.__name__}: {missing}"
