"""LLM scores per ticker-day from the real local model; a replay serves them from the cache with 0 model calls."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agents.config import apply_overrides, parse_scenario
from agents.llm.cache import LLMCache
from agents.llm.factory import LLMPool, make_llm
from agents.rl.deepseek import RECOMMENDATION_AGENT, RISK_AGENT, score_news
from agents.runtime import load_data

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_scores_come_from_the_model_then_from_the_cache_on_replay(tmp_path: Path) -> None:
    scenario = parse_scenario(apply_overrides({
        "name": "scores", "cache_dir": str(REPO / ".cache" / "tradegraph"),
        "data": {"kind": "synthetic", "tickers": ["ACME"], "days": 40, "seed": 5, "signal": 0.8, "news_per_day": 0.6},
        "llm": {"backends": {"local": {"kind": "local", "threads": 2, "calibrate": False}}},
        "episode": {"warmup_days": 10, "train_days": 10, "test_days": 10},
    }, {}), "scores scenario")
    data = load_data(scenario)
    last = 2
    path = tmp_path / "llm_cache.sqlite"
    tables, stats, created = [], [], []
    for mode in ("record", "replay"):
        with LLMCache(path, mode) as cache, LLMPool(scenario.llm) as pool:
            rec = make_llm(scenario.llm, RECOMMENDATION_AGENT, cache=cache, pool=pool)
            risk = make_llm(scenario.llm, RISK_AGENT, cache=cache, pool=pool)
            table, stat = score_news(data, rec, risk, last=last)
            tables.append(table)
            stats.append(stat)
            created.append(pool.created())
    recorded, replayed = stats
    news_days = {i for i in range(last + 1) if data.view(i).news("ACME", since=i - 1 if i else None)}
    assert recorded.sessions_with_news == len(news_days) >= 1
    assert recorded.prompts == 2 * len(news_days) and recorded.model_calls >= 1 and recorded.cache_hits == 0
    assert replayed.model_calls == 0 and replayed.cache_hits == recorded.prompts
    assert created == [["local"], []]  # the replay never even loads the model
    np.testing.assert_array_equal(tables[0].recommendation, tables[1].recommendation)
    np.testing.assert_array_equal(tables[0].risk, tables[1].risk)
    quiet = [i for i in range(len(data)) if i not in news_days]
    assert (tables[0].recommendation[quiet] == 3).all() and (tables[0].risk[quiet] == 3).all()
    assert set(tables[0].recommendation[sorted(news_days), 0].tolist()) <= {1, 2, 3, 4, 5}
