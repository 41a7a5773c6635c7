"""Baseline strategies that run through the same engine and broker as the agents.

``make_strategy(name, **params)`` builds one: buy_and_hold, random, macd, rsi, sma_cross.
Every strategy trades each of its tickers with an equal weight (1 / number of tickers), is
long-only, and reads prices only through the ``MarketView`` it is given. Indicators are
updated incrementally, one close per bar; if a strategy is called out of sequence (a new
run, or skipped sessions) it rebuilds its state from the view's history.

Parameters are validated by pydantic models (unknown or out-of-range values raise
``ConfigError`` naming the parameter). Values may be strings, as from the command line.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import deque
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from env.broker import Order, PortfolioSnapshot, TargetWeightOrder
from env.errors import ConfigError
from env.indicators import MacdLine, WilderRsi
from env.market import MarketView


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tickers: tuple[str, ...] | None = Field(
        None, description="Tickers to trade (default: every ticker of the data), each with weight 1/len."
    )


class BuyAndHoldParams(_Params):
    """Buy every ticker at the first bar and hold."""


class RandomParams(_Params):
    """Flip each ticker between flat and long at random moments (a noise baseline)."""

    seed: int = Field(0, description="Seed of the strategy's own random generator.")
    trade_prob: float = Field(0.05, gt=0, le=1, description="Chance per bar and ticker of drawing a new target (flat or long).")


class MacdParams(_Params):
    """Long while the MACD line is above its signal line; flat otherwise (acts on crossings)."""

    fast: int = Field(12, ge=1, description="Span of the fast EMA of closes, in bars.")
    slow: int = Field(26, ge=2, description="Span of the slow EMA of closes, in bars.")
    signal: int = Field(9, ge=1, description="Span of the EMA of the MACD line, in bars.")

    @model_validator(mode="after")
    def _order(self) -> MacdParams:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be smaller than slow ({self.slow})")
        return self


class RsiParams(_Params):
    """Go long when Wilder's RSI falls below ``lower``; go flat when it rises above ``upper``."""

    period: int = Field(14, ge=2, description="RSI look-back, in bars (Wilder smoothing).")
    lower: float = Field(30.0, gt=0, lt=100, description="Oversold level: RSI below it opens a long.")
    upper: float = Field(70.0, gt=0, lt=100, description="Overbought level: RSI above it closes the long.")

    @model_validator(mode="after")
    def _order(self) -> RsiParams:
        if self.lower >= self.upper:
            raise ValueError(f"lower ({self.lower}) must be smaller than upper ({self.upper})")
        return self


class SmaCrossParams(_Params):
    """All-in when the fast SMA crosses above the slow one; flat when it crosses below."""

    fast: int = Field(10, ge=1, description="Window of the fast simple moving average, in bars.")
    slow: int = Field(30, ge=2, description="Window of the slow simple moving average, in bars.")

    @model_validator(mode="after")
    def _order(self) -> SmaCrossParams:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be smaller than slow ({self.slow})")
        return self


class _Baseline(ABC):
    """Equal-weight, long-only strategy; state is rebuilt whenever it is called out of sequence."""

    def __init__(self, params: _Params) -> None:
        self.params = params
        self._last_index = -2
        self._tickers: tuple[str, ...] = ()
        self._weight = 0.0

    def on_bar(self, view: MarketView, portfolio: PortfolioSnapshot) -> list[Order]:
        """Orders for the close of ``view.index``."""
        if view.index != self._last_index + 1:
            self._tickers = self.params.tickers or view.tickers
            self._weight = 1.0 / len(self._tickers)
            self._restart(view)
        self._last_index = view.index
        orders: list[Order] = []
        for k, ticker in enumerate(self._tickers):
            order = self._decide(k, ticker, view.close(ticker), portfolio)
            if order is not None:
                orders.append(order)
        return orders

    @abstractmethod
    def _restart(self, view: MarketView) -> None:
        """Start over at ``view.index`` (a new run or a gap in the sessions)."""

    @abstractmethod
    def _decide(self, k: int, ticker: str, close: float, portfolio: PortfolioSnapshot) -> Order | None:
        """Take today's close of ticker number ``k``; return an order or None."""


class _Indicator(_Baseline):
    """A baseline whose state is an indicator fed one close at a time."""

    def _restart(self, view: MarketView) -> None:
        """Reset and replay the closes before today (today's arrives through ``_decide``)."""
        self._reset()
        for k, ticker in enumerate(self._tickers):
            for close in view.series(ticker, "close")[:-1].tolist():
                self._update(k, close)

    @abstractmethod
    def _reset(self) -> None:
        """Empty the indicator state for every ticker."""

    @abstractmethod
    def _update(self, k: int, close: float) -> Any:
        """Feed one close of ticker number ``k``; return the indicator value (None while warming up)."""


class BuyAndHold(_Baseline):
    """Buy each ticker at its equal weight on the first bar of a run, then hold."""

    def _restart(self, view: MarketView) -> None:
        self._pending_buy = set(self._tickers)

    def _decide(self, k: int, ticker: str, close: float, portfolio: PortfolioSnapshot) -> Order | None:
        if ticker not in self._pending_buy:
            return None
        self._pending_buy.discard(ticker)
        return TargetWeightOrder(ticker, self._weight)


class RandomStrategy(_Baseline):
    """At random bars, target flat or long for a ticker. Reproducible from ``seed``."""

    def _restart(self, view: MarketView) -> None:
        self._rng = np.random.default_rng(self.params.seed)

    def _decide(self, k: int, ticker: str, close: float, portfolio: PortfolioSnapshot) -> Order | None:
        draw, side = self._rng.random(2)
        if draw >= self.params.trade_prob:
            return None
        return TargetWeightOrder(ticker, self._weight if side < 0.5 else 0.0)


class _SmaWindow:
    """Fast and slow simple moving averages of one ticker, from running sums.

    The sums are re-added exactly (``math.fsum``) every ``slow`` closes so rounding cannot drift.
    """

    __slots__ = ("fast", "slow", "window", "fast_sum", "slow_sum", "count", "prev")

    def __init__(self, fast: int, slow: int) -> None:
        self.fast, self.slow = fast, slow
        self.window: deque[float] = deque(maxlen=slow)
        self.fast_sum = self.slow_sum = 0.0
        self.count = 0
        self.prev: tuple[float, float] | None = None

    def update(self, close: float) -> int:
        """Add one close; +1 if fast just crossed above slow, -1 if below, else 0."""
        window, fast, slow = self.window, self.fast, self.slow
        n = len(window)
        if n >= fast:
            self.fast_sum -= window[-fast]
        if n == slow:
            self.slow_sum -= window[0]
        window.append(close)
        self.fast_sum += close
        self.slow_sum += close
        self.count += 1
        if self.count % slow == 0:
            values = list(window)
            self.fast_sum = math.fsum(values[-fast:])
            self.slow_sum = math.fsum(values)
        if n + 1 < slow:
            return 0
        f1, s1 = self.fast_sum / fast, self.slow_sum / slow
        prev, self.prev = self.prev, (f1, s1)
        if prev is None:
            return 0
        f0, s0 = prev
        if f0 < s0 and f1 > s1:
            return 1
        if f0 > s0 and f1 < s1:
            return -1
        return 0


class SmaCross(_Indicator):
    """Simple-moving-average crossover: all-in (equal weight) on a cross above, flat on a cross below."""

    def _reset(self) -> None:
        self._smas = [_SmaWindow(self.params.fast, self.params.slow) for _ in self._tickers]

    def _update(self, k: int, close: float) -> int:
        return self._smas[k].update(close)

    def _decide(self, k: int, ticker: str, close: float, portfolio: PortfolioSnapshot) -> Order | None:
        signal = self._smas[k].update(close)
        if signal == 0:
            return None
        return TargetWeightOrder(ticker, self._weight if signal > 0 else 0.0)


class Macd(_Indicator):
    """MACD against its signal EMA (``env.indicators.MacdLine``): long on a cross above, flat below."""

    def _reset(self) -> None:
        p = self.params
        self._lines = [MacdLine(p.fast, p.slow, p.signal) for _ in self._tickers]
        self._diff_prev: list[float | None] = [None] * len(self._tickers)

    def _update(self, k: int, close: float) -> float | None:
        """Add one close; return MACD - signal once warmed up (slow + signal bars), else None."""
        return self._lines[k].update(close)

    def _decide(self, k: int, ticker: str, close: float, portfolio: PortfolioSnapshot) -> Order | None:
        previous, diff = self._diff_prev[k], self._update(k, close)
        self._diff_prev[k] = diff
        if previous is None or diff is None:
            return None
        if previous <= 0 < diff:
            return TargetWeightOrder(ticker, self._weight)
        if previous >= 0 > diff:
            return TargetWeightOrder(ticker, 0.0)
        return None


class Rsi(_Indicator):
    """Wilder's RSI (``env.indicators.WilderRsi``): long below ``lower``, flat above ``upper``."""

    def _reset(self) -> None:
        self._rsis = [WilderRsi(self.params.period) for _ in self._tickers]

    def _update(self, k: int, close: float) -> float | None:
        """Add one close; return the RSI once ``period`` changes are in, else None."""
        return self._rsis[k].update(close)

    def _decide(self, k: int, ticker: str, close: float, portfolio: PortfolioSnapshot) -> Order | None:
        rsi = self._update(k, close)
        if rsi is None:
            return None
        held = portfolio.positions.get(ticker, 0.0) > 0
        if rsi < self.params.lower and not held:
            return TargetWeightOrder(ticker, self._weight)
        if rsi > self.params.upper and held:
            return TargetWeightOrder(ticker, 0.0)
        return None


_REGISTRY: dict[str, tuple[type[_Baseline], type[_Params]]] = {
    "buy_and_hold": (BuyAndHold, BuyAndHoldParams),
    "random": (RandomStrategy, RandomParams),
    "macd": (Macd, MacdParams),
    "rsi": (Rsi, RsiParams),
    "sma_cross": (SmaCross, SmaCrossParams),
}
STRATEGY_NAMES = tuple(_REGISTRY)


def make_strategy(name: str, **params: Any) -> _Baseline:
    """Build the baseline ``name`` with ``params`` (``ConfigError`` naming a bad name or parameter)."""
    if name not in _REGISTRY:
        raise ConfigError(f"unknown strategy {name!r}; choose one of {list(STRATEGY_NAMES)}")
    cls, schema = _REGISTRY[name]
    try:
        validated = schema.model_validate(params)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(part) for part in err["loc"]) or "params"
            allowed = [f for f in schema.model_fields]
            hint = f" (allowed: {allowed})" if err["type"] == "extra_forbidden" else ""
            problems.append(f"param {where!r}: {err['msg']}{hint}")
        raise ConfigError(f"strategy {name!r}: " + "; ".join(problems)) from exc
    return cls(validated)
