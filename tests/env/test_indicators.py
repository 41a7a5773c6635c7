"""One indicator module: Wilder's RSI and MACD, hand-computed, and shared by analyst and baselines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from env.indicators import MacdLine, WilderRsi, macd_histogram, rsi


def test_wilder_rsi_hand_computed():
    closes = [10, 11, 10.5, 11.5, 12, 11]  # changes +1, -0.5, +1, +0.5, -1
    # period 3: first averages over (+1, -0.5, +1): gain 2/3, loss 0.5/3; then Wilder smoothing.
    g, l = 2 / 3, 0.5 / 3
    first = 100 - 100 / (1 + g / l)
    g, l = (g * 2 + 0.5) / 3, (l * 2 + 0) / 3
    second = 100 - 100 / (1 + g / l)
    g, l = (g * 2 + 0) / 3, (l * 2 + 1) / 3
    third = 100 - 100 / (1 + g / l)
    ind = WilderRsi(3)
    values = [ind.update(c) for c in closes]
    assert values[:3] == [None, None, None]
    assert values[3:] == pytest.approx([first, second, third])
    assert rsi(closes, 3) == pytest.approx(third)
    assert rsi([1, 2, 3, 4], 3) == 100.0 and rsi([5, 5, 5, 5], 3) == 50.0 and rsi([1, 2], 3) is None


def test_macd_matches_pandas_ewm():
    closes = 100 * np.exp(np.cumsum(np.random.default_rng(1).normal(0, 0.01, 80)))
    s = pd.Series(closes)
    macd = s.ewm(span=12, adjust=False).mean() - s.ewm(span=26, adjust=False).mean()
    hist = macd - macd.ewm(span=9, adjust=False).mean()
    line = MacdLine()
    out = [line.update(c) for c in closes]
    assert out[33] is None and out[34] == pytest.approx(hist.iloc[34])
    assert macd_histogram(closes) == pytest.approx(hist.iloc[-1])


def test_market_analyst_rsi_is_wilders_like_the_rsi_baseline_regression():
    """The market analyst's "RSI(14)" was a mean of percentage returns while the ``rsi`` baseline
    used Wilder's RSI: same name, different numbers."""
    from agents.analysts import technical_indicators
    from env.baselines import Rsi, RsiParams

    closes = list(100 * np.exp(np.cumsum(np.random.default_rng(2).normal(0, 0.02, 60))))
    baseline = Rsi(RsiParams(period=14))
    baseline._tickers = ["X"]
    baseline._reset()
    last = None
    for c in closes:
        last = baseline._update(0, c)
    assert technical_indicators(closes)["rsi14"] == pytest.approx(last)
