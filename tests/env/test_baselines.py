"""Baselines: signals against pandas/numpy reference indicators, seeding, parameter errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from env.baselines import make_strategy
from env.config import BrokerConfig
from env.engine import run_backtest
from env.errors import ConfigError
from env.market import MarketData

SAME_CLOSE = BrokerConfig(fill="same_close", commission_bps=0)


def gbm(n: int, seed: int, tickers: tuple[str, ...] = ("A",)) -> MarketData:
    rng = np.random.default_rng(seed)
    frames = {}
    for t in tickers:
        close = 30 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
        frames[t] = pd.DataFrame(
            {"open": close, "high": close * 1.01, "low": close * 0.99, "close": close, "volume": 1.0},
            index=pd.bdate_range("2019-01-01", periods=n),
        )
    return MarketData(frames)


def decisions(result) -> list[tuple[int, float]]:
    return list(zip(result.orders["decided_index"].tolist(), result.orders["requested"].tolist()))


def test_sma_cross_matches_pandas_rolling_crossovers() -> None:
    data = gbm(600, 1)
    close = pd.Series(data.array("A", "close"))
    fast, slow = close.rolling(7).mean().to_numpy(), close.rolling(25).mean().to_numpy()
    expected = []
    for i in range(25, len(close)):
        if fast[i - 1] < slow[i - 1] and fast[i] > slow[i]:
            expected.append((i, 1.0))
        elif fast[i - 1] > slow[i - 1] and fast[i] < slow[i]:
            expected.append((i, 0.0))
    result = run_backtest(data, make_strategy("sma_cross", fast=7, slow=25), SAME_CLOSE)
    assert decisions(result) == expected
    assert len(expected) > 10


def test_sma_cross_started_late_rebuilds_from_history() -> None:
    data = gbm(400, 2)
    strategy = make_strategy("sma_cross", fast=5, slow=20)
    full = decisions(run_backtest(data, strategy, SAME_CLOSE))
    # The same object, reused from session 150: it must replay the history it missed.
    late = decisions(run_backtest(data, strategy, SAME_CLOSE, start=150))
    assert late == [d for d in full if d[0] >= 150]


def test_macd_matches_pandas_ewm() -> None:
    data = gbm(500, 3)
    close = pd.Series(data.array("A", "close"))
    macd = close.ewm(span=12, adjust=False).mean() - close.ewm(span=26, adjust=False).mean()
    diff = (macd - macd.ewm(span=9, adjust=False).mean()).to_numpy()
    expected = []
    for i in range(26 + 9, len(close)):
        if diff[i - 1] <= 0 < diff[i]:
            expected.append((i, 1.0))
        elif diff[i - 1] >= 0 > diff[i]:
            expected.append((i, 0.0))
    result = run_backtest(data, make_strategy("macd"), SAME_CLOSE)
    assert decisions(result) == expected


def test_rsi_matches_wilder_reference() -> None:
    data = gbm(500, 4)
    close = data.array("A", "close")
    change = np.diff(close)
    gain, loss = np.maximum(change, 0), np.maximum(-change, 0)
    avg_g, avg_l = gain[:14].mean(), loss[:14].mean()
    rsi = {14: 100 - 100 / (1 + avg_g / avg_l)}
    for i in range(15, len(close)):
        avg_g = (avg_g * 13 + gain[i - 1]) / 14
        avg_l = (avg_l * 13 + loss[i - 1]) / 14
        rsi[i] = 100 - 100 / (1 + avg_g / avg_l)
    expected, held = [], False
    for i in range(14, len(close)):
        if rsi[i] < 40 and not held:
            expected.append((i, 1.0))
            held = True
        elif rsi[i] > 60 and held:
            expected.append((i, 0.0))
            held = False
    result = run_backtest(data, make_strategy("rsi", lower=40, upper=60), SAME_CLOSE)
    assert decisions(result) == expected
    assert len(expected) >= 4


def test_random_is_reproducible_from_its_seed() -> None:
    data = gbm(300, 5)
    a = decisions(run_backtest(data, make_strategy("random", seed=1, trade_prob=0.1), SAME_CLOSE))
    b = decisions(run_backtest(data, make_strategy("random", seed=1, trade_prob=0.1), SAME_CLOSE))
    c = decisions(run_backtest(data, make_strategy("random", seed=2, trade_prob=0.1), SAME_CLOSE))
    assert a == b and a != c and 10 < len(a) < 60


def test_buy_and_hold_splits_equally_and_fills_next_open() -> None:
    data = gbm(50, 6, ("A", "B"))
    result = run_backtest(data, make_strategy("buy_and_hold"), BrokerConfig(commission_bps=0))
    assert decisions(result) == [(0, 0.5), (0, 0.5)]
    assert result.fills["index"].tolist() == [1, 1]
    values = result.fills["quantity"] * result.fills["price"]
    assert values.tolist() == pytest.approx([50_000, 50_000], abs=50)


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("sma", {}, "unknown strategy 'sma'"),
        ("sma_cross", {"fst": 3}, "param 'fst'"),
        ("sma_cross", {"fast": "abc"}, "param 'fast'"),
        ("sma_cross", {"fast": 30, "slow": 10}, r"fast \(30\) must be smaller than slow \(10\)"),
        ("rsi", {"lower": 80}, r"lower \(80.0\) must be smaller than upper"),
        ("random", {"trade_prob": 0}, "param 'trade_prob'"),
        ("macd", {"signal": 0}, "param 'signal'"),
    ],
)
def test_bad_params_name_the_param(name: str, params: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_strategy(name, **params)


def test_string_params_from_the_command_line_are_accepted() -> None:
    strategy = make_strategy("sma_cross", fast="3", slow="9")
    assert (strategy.params.fast, strategy.params.slow) == (3, 9)
