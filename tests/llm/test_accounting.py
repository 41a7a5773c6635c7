from __future__ import annotations

import pytest
from openai_stub import StubOpenAIServer, completion

from agents.llm.accounting import Accounting
from agents.llm.base import CallRecord, ChatMessage
from agents.llm.config import BudgetConfig, LLMConfig, ModelPrice, OpenAIBackendConfig
from agents.llm.factory import LLMPool, make_accounting, make_llm
from env.errors import BudgetExceededError


def record(agent: str, tokens_in: int, tokens_out: int, cost: float = 0.0, hit: bool = False) -> CallRecord:
    return CallRecord(
        agent=agent, backend="openai", model="m", kind="text", tokens_in=tokens_in, tokens_out=tokens_out,
        latency_s=0.5, cache_hit=hit, cost_usd=cost, fallback=False, attempts=1,
    )


def test_totals_per_agent_and_run_and_resume() -> None:
    accounting = Accounting()
    accounting.add(record("news", 100, 10, 0.01))
    accounting.add(record("news", 50, 5, 0.005))
    accounting.add(record("risk", 7, 3, 0.0, hit=True))
    assert accounting.per_agent("news").tokens == 165 and accounting.per_agent("news").calls == 2
    assert accounting.per_agent("risk").cache_hits == 1 and accounting.per_agent("risk").tokens == 0
    assert accounting.total.calls == 3 and accounting.total.cost_usd == pytest.approx(0.015)
    saved = accounting.state().model_dump(mode="json")
    resumed = Accounting.from_state(saved)
    resumed.add(record("news", 1, 1))
    assert resumed.per_agent("news").tokens == 167 and resumed.total.calls == 4


def test_budget_raises_after_the_crossing_call_then_before_the_next() -> None:
    accounting = Accounting(BudgetConfig(max_tokens=200))
    accounting.check("news")
    accounting.add(record("news", 100, 20))
    paid = object()
    with pytest.raises(BudgetExceededError, match="llm.budget.max_tokens=200") as info:
        accounting.add(record("news", 70, 20), paid)
    assert info.value.result is paid  # type: ignore[attr-defined]
    assert accounting.total.tokens == 210  # the crossing call is counted
    with pytest.raises(BudgetExceededError, match="cannot call"):
        accounting.check("risk")


def test_cost_and_dollar_budget_through_the_client(stub: StubOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TG_KEY", "sk-x")
    config = LLMConfig(
        backends={"remote": OpenAIBackendConfig(model="stub-model", base_url=stub.base_url, api_key_env="TG_KEY")},
        default="remote",
        prices={"stub-model": ModelPrice(input_per_1k=1.0, output_per_1k=2.0)},
        budget=BudgetConfig(max_usd=0.05),
    )
    accounting = make_accounting(config)
    stub.push(completion("one", usage=(20, 5)), completion("two", usage=(20, 5)))
    with LLMPool(config) as pool:
        llm = make_llm(config, "news", accounting=accounting, pool=pool)
        messages = [ChatMessage(role="user", content="hi")]
        first = llm.text(messages, agent="news")
        assert first.record.cost_usd == pytest.approx(0.02 + 0.01)
        with pytest.raises(BudgetExceededError, match="max_usd"):
            llm.text(messages, agent="news")  # $0.06 > $0.05: raised right after the call
        assert len(stub.requests) == 2
        with pytest.raises(BudgetExceededError, match="cannot call"):
            llm.text(messages, agent="news")
        assert len(stub.requests) == 2  # refused before any request
    assert accounting.per_agent("news").cost_usd == pytest.approx(0.06)
