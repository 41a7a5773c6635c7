"""Engine: loop order, result tables, no same-bar cheating, point-in-time strategies."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from env.baselines import STRATEGY_NAMES, make_strategy
from env.broker import MarketOrder, PortfolioSnapshot, TargetWeightOrder
from env.config import BrokerConfig
from env.engine import run_backtest
from env.errors import ConfigError, LookaheadError
from env.market import MarketData, MarketView
from env.metrics import METRIC_KEYS


def gbm(n: int, seed: int, tickers: tuple[str, ...] = ("A",)) -> MarketData:
    rng = np.random.default_rng(seed)
    frames = {}
    for t in tickers:
        close = 50 * np.exp(np.cumsum(rng.normal(0, 0.015, n)))
        open_ = np.r_[50, close[:-1]] * np.exp(rng.normal(0, 0.004, n))
        frames[t] = pd.DataFrame(
            {"open": open_, "high": np.maximum(open_, close) * 1.002, "low": np.minimum(open_, close) * 0.998,
             "close": close, "volume": 1e5},
            index=pd.bdate_range("2020-01-01", periods=n),
        )
    return MarketData(frames, origin="gbm")


class Recorder:
    """Buys one share on every bar; remembers what it saw."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, float]] = []

    def on_bar(self, view: MarketView, portfolio: PortfolioSnapshot) -> list[MarketOrder]:
        self.seen.append((view.index, portfolio.positions.get("A", 0.0)))
        return [MarketOrder("A", 1)]


def test_loop_calls_strategy_after_fills_and_returns_tables() -> None:
    data = gbm(30, 1)
    rec = Recorder()
    result = run_backtest(data, rec, BrokerConfig(commission_bps=0), start=5, end=20)
    # At the close of session i the strategy sees the fills made at the open of i.
    assert rec.seen == [(i, float(i - 5)) for i in range(5, 20)]
    assert list(result.equity.index) == list(pd.DatetimeIndex(data.dates[5:20]))
    assert result.equity.iloc[0] == 100_000
    assert len(result.fills) == 14
    assert result.orders["status"].value_counts().to_dict() == {"filled": 14, "unfilled": 1}
    assert "window ended" in result.orders["reason"].iloc[-1]
    assert set(result.metrics) == set(METRIC_KEYS)
    closes = data.array("A", "close")[5:20]
    assert result.daily["gross_exposure"].to_numpy() == pytest.approx(np.arange(15) * closes)


def test_bad_window_names_the_argument() -> None:
    data = gbm(10, 1)
    with pytest.raises(ConfigError, match="start=10"):
        run_backtest(data, Recorder(), BrokerConfig(), start=10)
    with pytest.raises(ConfigError, match="end=3"):
        run_backtest(data, Recorder(), BrokerConfig(), start=5, end=3)


class Prophet:
    """Cheats: reads tomorrow's close from the full arrays and buys before every rise."""

    def __init__(self, data: MarketData) -> None:
        self.close = data.array("A", "close")

    def on_bar(self, view: MarketView, portfolio: PortfolioSnapshot) -> list[TargetWeightOrder]:
        i = view.index
        up = i + 1 < len(self.close) and self.close[i + 1] > self.close[i]
        return [TargetWeightOrder("A", 1.0 if up else 0.0)]


def test_regression_next_open_fill_cannot_profit_from_the_decision_bar_move() -> None:
    # Every close-to-close move happens overnight (open == close of the same day), so the only
    # way to earn it is to fill at the decision bar's close: same-bar cheating.
    rng = np.random.default_rng(5)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, 120)))
    frame = pd.DataFrame(
        {"open": close, "high": close, "low": close, "close": close, "volume": 1.0},
        index=pd.bdate_range("2021-01-01", periods=120),
    )
    data = MarketData({"A": frame})
    honest = run_backtest(data, Prophet(data), BrokerConfig(commission_bps=0, fractional=True))
    cheating = run_backtest(data, Prophet(data), BrokerConfig(commission_bps=0, fractional=True, fill="same_close"))
    # Filled a session late, the "knowledge" is stale: the prophet cannot gain (here it loses).
    assert honest.equity.iloc[-1] <= 100_000
    assert cheating.equity.iloc[-1] > 1.5 * 100_000


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_baselines_only_read_the_past(name: str) -> None:
    data = gbm(260, 2, ("A", "B"))
    cut = 180
    poisoned_frames = {}
    for t in data.tickers:
        frame = data.bars[t].copy()
        frame.iloc[cut + 1 :, :4] = frame.iloc[cut + 1 :, :4].to_numpy()[::-1] * 3.0
        frame["high"] = frame[["open", "high", "low", "close"]].max(axis=1)
        frame["low"] = frame[["open", "high", "low", "close"]].min(axis=1)
        poisoned_frames[t] = frame
    poisoned = MarketData(poisoned_frames)
    params = {"fast": 5, "slow": 20} if name == "sma_cross" else {"trade_prob": 0.2} if name == "random" else {}
    config = BrokerConfig(fill="same_close")
    clean = run_backtest(data, make_strategy(name, **params), config)
    dirty = run_backtest(poisoned, make_strategy(name, **params), config)
    decided = clean.orders["decided_index"] <= cut
    pd.testing.assert_frame_equal(
        clean.orders[decided].drop(columns=["reason"]), dirty.orders[dirty.orders["decided_index"] <= cut].drop(columns=["reason"])
    )
    pd.testing.assert_series_equal(clean.equity.iloc[: cut + 1], dirty.equity.iloc[: cut + 1])
    assert len(clean.orders) > 0


class Peeker:
    def on_bar(self, view: MarketView, portfolio: PortfolioSnapshot) -> list[MarketOrder]:
        view.price_on("A", view.dates[-1])
        view.at(view.index + 1)
        return []


def test_views_handed_to_strategies_refuse_the_future() -> None:
    with pytest.raises(LookaheadError):
        run_backtest(gbm(10, 3), Peeker(), BrokerConfig())


def test_progress_bar_runs(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_backtest(gbm(50, 4), make_strategy("buy_and_hold"), BrokerConfig(), progress=True)
    assert "backtest" in capsys.readouterr().err
    assert len(result.fills) == 1
