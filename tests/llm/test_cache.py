"""Record/replay: a recorded run replays bit-identically without creating a backend or loading the model."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from agents.llm.base import ChatMessage, ChoiceRequest
from agents.llm.cache import LLMCache, cache_key
from agents.llm.config import CacheMode, LLMCacheConfig, LLMConfig, LocalBackendConfig
from agents.llm.factory import LLMPool, make_llm
from env.errors import LLMError


class Outlook(BaseModel):
    direction: str = Field(description="up or down")


def ask(text: str) -> list[ChatMessage]:
    return [ChatMessage(role="system", content="Answer buy, sell or hold."), ChatMessage(role="user", content=text)]


def run_session(config: LLMConfig, cache: LLMCache, pool: LLMPool) -> tuple[list[object], int]:
    llm = make_llm(config, "direction", cache=cache, pool=pool)
    results: list[object] = [
        llm.text(ask("Summarise: Apple beats estimates."), agent="direction", max_tokens=6),
        llm.choose(ask("Apple beats estimates."), ["buy", "sell", "hold"], agent="direction", fallback="hold"),
        llm.choose(ask("Tesla recalls cars."), ["buy", "sell", "hold", "strong sell"], agent="direction", fallback="hold"),
        *llm.choose_many(
            [
                ChoiceRequest(messages=tuple(ask("Oil spikes.")), options=("up", "down"), fallback="down"),
                ChoiceRequest(messages=tuple(ask("Fed cuts rates.")), options=("up", "down"), fallback="down"),
            ],
            agent="direction",
        ),
        llm.structured(ask("Is the outlook up or down?"), Outlook, agent="direction", fallback=Outlook(direction="flat")),
    ]
    return results, llm.model_calls


def test_replay_is_bit_identical_and_never_loads_the_model(tmp_path: Path, local_config: LocalBackendConfig) -> None:
    path = tmp_path / "llm_cache.sqlite"
    config = LLMConfig(
        backends={"local": local_config.model_copy(update={"max_new_tokens": 12})},
        cache=LLMCacheConfig(mode=CacheMode.RECORD, path=str(path)),
    )
    with LLMCache(path, CacheMode.RECORD) as cache, LLMPool(config) as pool:
        recorded, calls = run_session(config, cache, pool)
        assert calls == 5 and pool.created() == ["local"] and len(cache) == 6

    with LLMCache(path, CacheMode.REPLAY) as cache, LLMPool(config) as pool:
        replayed, calls = run_session(config, cache, pool)
        assert calls == 0 and pool.created() == []  # no backend, hence no model load

    for before, after in zip(recorded, replayed, strict=True):
        assert after.record.cache_hit and not before.record.cache_hit
        assert after.model_dump(exclude={"record"}) == before.model_dump(exclude={"record"})
        ignore = {"cache_hit", "latency_s", "cost_usd"}
        assert after.record.model_dump(exclude=ignore) == before.record.model_dump(exclude=ignore)
    for before, after in zip(recorded[1:5], replayed[1:5]):
        assert list(after.probs) == list(before.probs)  # option order survives storage
        assert [p.hex() for p in after.probs.values()] == [p.hex() for p in before.probs.values()]
    assert type(replayed[-1].value) is Outlook


def test_replay_miss_names_agent_and_prompt(tmp_path: Path, local_config: LocalBackendConfig) -> None:
    path = tmp_path / "c.sqlite"
    LLMCache(path, CacheMode.RECORD).close()
    config = LLMConfig(backends={"local": local_config})
    with LLMCache(path, CacheMode.REPLAY) as cache, LLMPool(config) as pool:
        llm = make_llm(config, "risk", cache=cache, pool=pool)
        with pytest.raises(LLMError, match=r"agent 'risk' .*prompt 'Never recorded question'"):
            llm.choose(ask("Never recorded question"), ["a", "b"], agent="risk", fallback="a")
        assert pool.created() == []


def test_replay_needs_an_existing_file(tmp_path: Path) -> None:
    with pytest.raises(LLMError, match="does not exist"):
        LLMCache(tmp_path / "missing.sqlite", CacheMode.REPLAY)


def test_auto_mode_calls_once_then_replays(tmp_path: Path, local_config: LocalBackendConfig) -> None:
    config = LLMConfig(backends={"local": local_config})
    with LLMCache(tmp_path / "c.sqlite", CacheMode.AUTO) as cache, LLMPool(config) as pool:
        llm = make_llm(config, "a", cache=cache, pool=pool)
        first = llm.choose(ask("Gold rallies."), ["buy", "sell"], agent="a", fallback="sell")
        second = llm.choose(ask("Gold rallies."), ["buy", "sell"], agent="b", fallback="sell")
        assert llm.model_calls == 1 and not first.record.cache_hit and second.record.cache_hit
        assert second.record.agent == "b" and second.probs == first.probs


def test_cache_is_wal_and_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    request = {"backend": "local", "call": "text", "messages": [["user", "hi"]]}
    key = cache_key(request)
    value = {"x": 0.1 + 0.2, "y": 1e-300, "z": [1 / 3]}
    with LLMCache(path, CacheMode.RECORD) as cache:
        cache.put(key, kind="text", agent="a", request=request, result=value)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with LLMCache(path, CacheMode.REPLAY) as cache:
        assert cache.get(key) == value  # floats round-trip exactly
        assert cache.get(cache_key({**request, "messages": [["user", "hi!"]]})) is None


def test_cache_key_is_order_independent_and_content_sensitive() -> None:
    assert cache_key({"a": 1, "b": [1, 2]}) == cache_key({"b": [1, 2], "a": 1})
    assert cache_key({"a": 1}) != cache_key({"a": 1.5})
