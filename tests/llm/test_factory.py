from __future__ import annotations

import subprocess
import sys

import pytest
from openai_stub import StubOpenAIServer, completion

from agents.llm import LLM
from agents.llm.base import ChatMessage
from agents.llm.config import LLMConfig
from agents.llm.factory import LLMPool, make_llm


def test_importing_the_package_loads_no_provider() -> None:
    code = (
        "import sys, agents.llm; "
        "print(','.join(m for m in ('torch', 'transformers', 'openai', 'langchain_openai') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_switching_one_agent_to_openai_is_one_config_line(
    stub: StubOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TG_KEY", "sk-x")
    base = {
        "backends": {
            "local": {"kind": "local", "threads": 1},
            "remote": {"kind": "openai", "model": "stub-model", "base_url": stub.base_url, "api_key_env": "TG_KEY"},
        },
    }
    before = LLMConfig.model_validate(base)
    after = LLMConfig.model_validate({**base, "agents": {"news_analyst": "remote"}})  # the one line
    assert make_llm(before, "news_analyst").identity["backend"] == "local"
    stub.push(completion("from the server"))
    with LLMPool(after) as pool:
        news = make_llm(after, "news_analyst", pool=pool)
        direction = make_llm(after, "direction", pool=pool)
        assert isinstance(news, LLM)
        result = news.text([ChatMessage(role="user", content="hi")], agent="news_analyst")
        assert result.text == "from the server" and result.record.backend == "openai"
        assert direction.identity["backend"] == "local"
        assert pool.created() == ["remote"]  # the local model was never touched


def test_agents_on_one_backend_share_it(stub: StubOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TG_KEY", "sk-x")
    config = LLMConfig.model_validate(
        {
            "backends": {"remote": {"kind": "openai", "model": "m", "base_url": stub.base_url, "api_key_env": "TG_KEY"}},
            "default": "remote",
        }
    )
    with LLMPool(config) as pool:
        a, b = make_llm(config, "a", pool=pool), make_llm(config, "b", pool=pool)
        assert a.backend is b.backend


def test_pool_creates_one_backend_for_parallel_first_callers(stub: StubOpenAIServer) -> None:
    # Regression (issue 14): parallel analysts each got a backend of their own on the first session.
    from concurrent.futures import ThreadPoolExecutor

    config = LLMConfig.model_validate(
        {"backends": {"remote": {"kind": "openai", "model": "m", "base_url": stub.base_url, "api_key_env": None}},
         "default": "remote"}
    )
    with LLMPool(config) as pool, ThreadPoolExecutor(max_workers=6) as threads:
        backends = list(threads.map(lambda _: pool.backend("remote"), range(6)))
    assert len({id(backend) for backend in backends}) == 1
