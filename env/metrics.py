"""Performance metrics of an equity curve, as pure numpy/pandas functions.

Conventions follow empyrical / quantstats (see /work/shared/FACTS.md):

- returns are simple daily returns of the equity curve, ``N = len(equity) - 1`` of them;
- 252 periods a year; CAGR uses ``years = N / 252``;
- ``risk_free_annual`` is converted per period as ``(1 + rf) ** (1 / 252) - 1`` and subtracted
  from every return before Sharpe and Sortino (quantstats' ``rf``; empyrical's per-period
  ``risk_free`` / ``required_return`` given that converted value);
- Sharpe = mean / std(ddof=1) * sqrt(252); Sortino = mean / sqrt(mean(min(r, 0)^2)) * sqrt(252),
  the downside deviation taken over **all** periods with target 0;
- max drawdown is a negative fraction (or 0) measured from the running peak, the starting value
  included; Calmar = annual_return / |max_drawdown|;
- win_rate is the share of all periods with a strictly positive return;
- turnover is the mean over sessions of traded notional / equity at that close;
- exposure is the mean over sessions of gross exposure (sum of |position value|) / equity at
  that close -- a fraction of equity invested, not the share of days invested.

Degenerate inputs never crash. With fewer than two equity points there are no returns:
``cumulative_return`` and ``max_drawdown`` are 0 and every ratio is NaN. A zero standard
deviation gives NaN Sharpe (and annual_volatility 0); a zero downside deviation gives NaN
Sortino; a zero drawdown gives NaN Calmar. turnover / exposure are NaN when not supplied.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from env.errors import DataError

PERIODS_PER_YEAR = 252
METRIC_KEYS = (
    "cumulative_return", "annual_return", "sharpe", "sortino", "annual_volatility",
    "max_drawdown", "calmar", "win_rate", "turnover", "exposure",
)


def _values(equity: pd.Series | Sequence[float] | np.ndarray) -> np.ndarray:
    values = np.asarray(equity, dtype=float)
    if values.ndim != 1:
        raise DataError(f"equity must be one-dimensional, got shape {values.shape}")
    bad = ~np.isfinite(values) | (values <= 0)
    if bad.any():
        pos = int(np.argmax(bad))
        label = equity.index[pos] if isinstance(equity, pd.Series) else pos
        raise DataError(f"equity at {label} is {values[pos]!r}; metrics need finite, positive equity values")
    return values


def _mean_or_nan(series: pd.Series | Sequence[float] | np.ndarray | None) -> float:
    if series is None:
        return math.nan
    arr = np.asarray(series, dtype=float)
    return float(arr.mean()) if arr.size else math.nan


def compute_metrics(
    equity: pd.Series | Sequence[float] | np.ndarray,
    *,
    risk_free_annual: float = 0.0,
    turnover: pd.Series | Sequence[float] | np.ndarray | None = None,
    exposure: pd.Series | Sequence[float] | np.ndarray | None = None,
) -> dict[str, float]:
    """Metrics of a daily equity curve, keyed exactly by ``METRIC_KEYS``.

    ``turnover`` and ``exposure`` are per-session fractions of equity (their mean is reported).
    Raises ``DataError`` naming the point if equity has a NaN, infinite or non-positive value.
    """
    values = _values(equity)
    out = dict.fromkeys(METRIC_KEYS, math.nan)
    out["turnover"] = _mean_or_nan(turnover)
    out["exposure"] = _mean_or_nan(exposure)
    if values.size < 2:
        out["cumulative_return"] = 0.0
        out["max_drawdown"] = 0.0
        return out
    returns = values[1:] / values[:-1] - 1.0
    n = returns.size
    cumulative = values[-1] / values[0] - 1.0
    annual = (values[-1] / values[0]) ** (PERIODS_PER_YEAR / n) - 1.0
    rf = (1.0 + risk_free_annual) ** (1.0 / PERIODS_PER_YEAR) - 1.0
    excess = returns - rf
    mean = excess.mean()
    std = excess.std(ddof=1) if n > 1 else math.nan
    sharpe = mean / std * math.sqrt(PERIODS_PER_YEAR) if n > 1 and std > 0 else math.nan
    downside = math.sqrt(np.mean(np.minimum(excess, 0.0) ** 2))
    sortino = mean / downside * math.sqrt(PERIODS_PER_YEAR) if downside > 0 else math.nan
    vol = returns.std(ddof=1) * math.sqrt(PERIODS_PER_YEAR) if n > 1 else math.nan
    peaks = np.maximum.accumulate(values)
    max_dd = float((values / peaks - 1.0).min())
    out.update(
        cumulative_return=float(cumulative),
        annual_return=float(annual),
        sharpe=float(sharpe),
        sortino=float(sortino),
        annual_volatility=float(vol),
        max_drawdown=max_dd,
        calmar=float(annual / abs(max_dd)) if max_dd < 0 else math.nan,
        win_rate=float((returns > 0).mean()),
    )
    return out
