"""Metrics against empyrical on the same returns; turnover/exposure by hand; degenerate inputs."""

from __future__ import annotations

import math

import empyrical
import numpy as np
import pandas as pd
import pytest

from env.broker import MarketOrder
from env.config import BrokerConfig
from env.engine import run_backtest
from env.errors import DataError
from env.market import MarketData
from env.metrics import METRIC_KEYS, compute_metrics


def curve(seed: int, n: int = 500) -> pd.Series:
    rng = np.random.default_rng(seed)
    returns = rng.normal(0.0004, 0.012, n)
    values = 1000.0 * np.cumprod(np.r_[1.0, 1.0 + returns])
    return pd.Series(values, index=pd.bdate_range("2015-01-01", periods=n + 1))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("rf_annual", [0.0, 0.03])
def test_matches_empyrical(seed: int, rf_annual: float) -> None:
    equity = curve(seed)
    returns = equity.pct_change().dropna()
    rf = (1 + rf_annual) ** (1 / 252) - 1
    got = compute_metrics(equity, risk_free_annual=rf_annual)
    expected = {
        "cumulative_return": empyrical.cum_returns_final(returns),
        "annual_return": empyrical.annual_return(returns),
        "sharpe": empyrical.sharpe_ratio(returns, risk_free=rf),
        "sortino": empyrical.sortino_ratio(returns, required_return=rf),
        "annual_volatility": empyrical.annual_volatility(returns),
        "max_drawdown": empyrical.max_drawdown(returns),
        "calmar": empyrical.calmar_ratio(returns),
    }
    for key, value in expected.items():
        assert got[key] == pytest.approx(float(value), rel=1e-9, abs=1e-12), key
    assert got["win_rate"] == pytest.approx(float((returns > 0).mean()), abs=1e-15)
    assert list(got) == list(METRIC_KEYS)


def test_max_drawdown_counts_the_starting_value() -> None:
    got = compute_metrics(pd.Series([100.0, 90.0, 95.0, 120.0, 60.0]))
    assert got["max_drawdown"] == pytest.approx(-0.5)
    assert compute_metrics(pd.Series([100.0, 80.0, 85.0]))["max_drawdown"] == pytest.approx(-0.2)


def test_turnover_and_exposure_from_a_backtest_by_hand() -> None:
    close = np.array([10.0, 10.0, 12.0, 12.0, 15.0])
    frame = pd.DataFrame(
        {"open": close, "high": close, "low": close, "close": close, "volume": 1.0},
        index=pd.bdate_range("2020-01-01", periods=5),
    )

    class BuyTenThenSellFive:
        def on_bar(self, view, portfolio):
            return {0: [MarketOrder("A", 10)], 2: [MarketOrder("A", -5)]}.get(view.index, [])

    result = run_backtest(MarketData({"A": frame}), BuyTenThenSellFive(), BrokerConfig(initial_cash=1000, commission_bps=0))
    equity = [1000.0, 1000.0, 1020.0, 1020.0, 1035.0]
    assert result.equity.tolist() == pytest.approx(equity)
    traded = [0.0, 100.0, 0.0, 60.0, 0.0]
    gross = [0.0, 100.0, 120.0, 60.0, 75.0]
    assert result.metrics["turnover"] == pytest.approx(np.mean(np.divide(traded, equity)))
    assert result.metrics["exposure"] == pytest.approx(np.mean(np.divide(gross, equity)))


def test_degenerate_inputs_give_documented_values() -> None:
    one = compute_metrics(pd.Series([100.0]))
    assert one["cumulative_return"] == 0.0 and one["max_drawdown"] == 0.0
    assert all(math.isnan(one[k]) for k in ("annual_return", "sharpe", "sortino", "annual_volatility", "calmar", "win_rate"))
    flat = compute_metrics(pd.Series([100.0] * 30))
    assert flat["cumulative_return"] == 0.0 and flat["annual_volatility"] == 0.0 and flat["win_rate"] == 0.0
    assert math.isnan(flat["sharpe"]) and math.isnan(flat["sortino"]) and math.isnan(flat["calmar"])
    rising = compute_metrics(pd.Series(100.0 * 1.001 ** np.arange(30)))
    assert rising["annual_volatility"] == pytest.approx(0.0, abs=1e-12)
    assert math.isnan(rising["sortino"]) and math.isnan(rising["calmar"]) and rising["win_rate"] == 1.0
    two = compute_metrics([100.0, 101.0])
    assert math.isnan(two["sharpe"]) and two["cumulative_return"] == pytest.approx(0.01)
    assert math.isnan(compute_metrics([1.0, 2.0])["turnover"])


def test_bad_equity_names_the_point() -> None:
    equity = curve(0, 10)
    equity.iloc[4] = np.nan
    with pytest.raises(DataError, match=str(equity.index[4].date())):
        compute_metrics(equity)
    with pytest.raises(DataError, match="at 1 is"):
        compute_metrics([1.0, 0.0, 2.0])
