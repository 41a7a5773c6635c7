"""agents/evaluation.py: cost per ticker-day from hand-built trace records; the metrics.json blocks."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from agents.evaluation import cost_metrics, json_safe, run_summary


def _call(tokens_in: int, tokens_out: int, cost: float, hit: bool = False) -> dict:
    return {"tokens_in": tokens_in, "tokens_out": tokens_out, "cost_usd": cost, "cache_hit": hit, "latency_s": 0.1}


RECORDS = [
    {"day": 5, "phase": "train", "node": "open_session", "latency_s": 0.5},
    {"day": 5, "phase": "train", "node": "news_analyst", "ticker": "A", "model_calls": 1, "latency_s": 2.0,
     "llm_calls": [_call(100, 0, 0.01), _call(50, 0, 0.005)]},
    {"day": 6, "phase": "test", "node": "open_session", "latency_s": 0.5},
    {"day": 6, "phase": "test", "node": "direction", "ticker": "A", "model_calls": 1, "latency_s": 1.0,
     "llm_calls": [_call(200, 10, 0.02)]},
    {"day": 6, "phase": "test", "node": "direction", "ticker": "B", "model_calls": 0, "latency_s": 0.25,
     "llm_calls": [_call(200, 10, 0.0, hit=True)]},  # replayed: free
    {"day": 7, "phase": "test", "node": "open_session", "latency_s": 0.25},
    {"day": 7, "phase": "done", "node": "finish", "model_calls": 1, "latency_s": 3.0, "llm_calls": [_call(30, 5, 0.001)]},
]


def test_cost_metrics_by_hand() -> None:
    out = cost_metrics(RECORDS, n_tickers=2, accounting={"total": {"tokens_in": 380, "calls": 5}})
    train, test, total = out["train"], out["test"], out["all"]
    assert train["sessions"] == 1 and train["ticker_days"] == 2
    assert train["tokens"] == 150 and train["cost_usd"] == pytest.approx(0.015) and train["seconds"] == 2.5
    assert train["per_ticker_day"]["tokens"] == 75 and train["per_ticker_day"]["model_calls"] == 0.5
    assert test["sessions"] == 2 and test["ticker_days"] == 4
    assert test["tokens_in"] == 200 and test["tokens_out"] == 10  # the cache hit costs nothing
    assert test["llm_calls"] == 2 and test["cache_hits"] == 1 and test["model_calls"] == 1
    assert test["seconds"] == pytest.approx(2.0) and test["per_ticker_day"]["seconds"] == pytest.approx(0.5)
    # the finish node counts only in the whole run
    assert total["tokens"] == 150 + 210 + 35 and total["model_calls"] == 3 and total["ticker_days"] == 6
    assert total["seconds"] == pytest.approx(7.5)
    assert out["accounting"] == {"tokens_in": 380, "calls": 5}


def test_cost_metrics_without_sessions_is_nan_per_day() -> None:
    out = cost_metrics([], n_tickers=1)
    assert out["test"]["tokens"] == 0 and math.isnan(out["test"]["per_ticker_day"]["tokens"])
    with pytest.raises(ValueError, match="n_tickers"):
        cost_metrics([], n_tickers=0)


def test_run_summary_is_json_and_seeded() -> None:
    equity = 1e5 * np.cumprod(1 + np.random.default_rng(2).normal(0, 0.01, 40))
    a = json_safe(run_summary(equity, RECORDS, 2, seed=3, n_boot=100))
    b = json_safe(run_summary(equity, RECORDS, 2, seed=3, n_boot=100))
    assert a == b  # a resumed run writes the same statistics
    text = json.dumps(a, allow_nan=False)  # no NaN left: strict JSON
    assert '"per_ticker_day"' in text
    ci = a["statistics"]["ci"]["sharpe"]
    assert ci["lo"] <= ci["point"] <= ci["hi"]
    flat = json_safe(run_summary(np.full(10, 1e5), [], 1, seed=0, n_boot=50))
    assert flat["statistics"]["psr"] is None and flat["cost"]["test"]["per_ticker_day"]["tokens"] is None
