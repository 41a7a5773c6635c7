"""The backtest loop: one strategy, one broker, one pass over the sessions.

Per session ``i`` (in this order): the broker fills what is due at the open of ``i`` and
marks at its close; the strategy sees the point-in-time view at the close of ``i`` and the
portfolio; its orders are submitted as decided at that close. The loop is kept lean on
purpose (see benchmarks/bench_env.py): no per-bar logging, no DataFrames.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import pandas as pd
from tqdm import tqdm

from env.broker import Broker, Order, PortfolioSnapshot
from env.config import BrokerConfig
from env.errors import ConfigError
from env.market import MarketData, MarketView
from env.metrics import compute_metrics


class Strategy(Protocol):
    """Anything that turns a point-in-time view and the portfolio into orders."""

    def on_bar(self, view: MarketView, portfolio: PortfolioSnapshot) -> list[Order]:
        """Orders decided at the close of ``view.index`` (an empty list for none)."""
        ...


@dataclass(frozen=True)
class BacktestResult:
    """What a backtest produced.

    ``equity`` is indexed by session date (name ``equity``); ``fills`` and ``orders`` are the
    broker ledger's tables; ``metrics`` comes from ``compute_metrics``; ``daily`` holds the
    per-session cash, gross exposure, traded notional and borrow cost.
    """

    equity: pd.Series
    fills: pd.DataFrame
    orders: pd.DataFrame
    metrics: dict[str, float]
    daily: pd.DataFrame = field(repr=False)


def run_backtest(
    data: MarketData,
    strategy: Strategy,
    broker_config: BrokerConfig,
    start: int = 0,
    end: int | None = None,
    progress: bool = False,
    risk_free_annual: float = 0.0,
) -> BacktestResult:
    """Run ``strategy`` over sessions ``[start, end)`` (``end=None``: to the last session).

    Orders still pending when the window ends are recorded as unfilled.
    """
    n = len(data)
    stop = n if end is None else end
    if not 0 <= start < n:
        raise ConfigError(f"start={start} is outside the data's sessions 0..{n - 1}")
    if not start < stop <= n:
        raise ConfigError(f"end={end} must be greater than start={start} and at most {n} (the number of sessions)")
    broker = Broker(data, broker_config)
    sessions: range | tqdm = range(start, stop)
    if progress:
        sessions = tqdm(sessions, desc="backtest", unit="bar", mininterval=1.0)
    # Local names: attribute lookups dominate a loop this short.
    step, submit, portfolio, on_bar = broker.step, broker.submit, broker.portfolio, strategy.on_bar
    for i in sessions:
        step(i)
        # MarketView(data, i) is what data.view(i) returns; the range already bounds i.
        orders = on_bar(MarketView(data, i), portfolio())
        if orders:
            submit(orders, i)
    broker.expire_pending(f"backtest window ended at session {stop - 1} ({data.dates[stop - 1]})")
    daily = broker.ledger.equity
    equity = daily["equity"].rename("equity")
    metrics = compute_metrics(
        equity,
        risk_free_annual=risk_free_annual,
        turnover=daily["traded_notional"] / daily["equity"],
        exposure=daily["gross_exposure"] / daily["equity"],
    )
    return BacktestResult(
        equity=equity,
        fills=broker.ledger.fills,
        orders=broker.ledger.orders,
        metrics=metrics,
        daily=daily.drop(columns=["equity"]),
    )
