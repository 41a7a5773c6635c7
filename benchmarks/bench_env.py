"""Backtest engine speed and agreement: tradegraph vs backtesting.py on the same SMA crossover.

Both engines run the same rules on the same synthetic GBM bars: SMA(fast) / SMA(slow) crossover,
long-only, decide at the close of t and fill at the open of t+1, whole shares, all-in sizing on
(1 - eps) of cash, commission 0.1 % per side. Prints microseconds per bar for each, their ratio,
the final equities and their relative difference.

Run: ``.venv/bin/python benchmarks/bench_env.py [--bars 200000] [--repeat 3]``
Targets: ours <= 0.5x backtesting.py's time per bar; final equities equal within 1e-6 relative.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np
import pandas as pd

from env.baselines import make_strategy
from env.config import BrokerConfig
from env.engine import run_backtest
from env.market import MarketData

EPS = sys.float_info.epsilon


def make_gbm(bars: int, seed: int) -> pd.DataFrame:
    """Daily OHLCV bars of a driftless geometric Brownian motion on business days from 1900.

    200,000 business days run past pandas' nanosecond range (year 2262), so the index uses seconds.
    """
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, bars)))
    open_ = np.r_[100.0, close[:-1]] * np.exp(rng.normal(0.0, 0.003, bars))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0.0, 0.002, bars)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0.0, 0.002, bars)))
    index = pd.bdate_range("1900-01-01", periods=bars, unit="s", name="date")
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close, "volume": 1e6}, index=index)


def run_ours(frame: pd.DataFrame, fast: int, slow: int, cash: float) -> tuple[float, float, int]:
    """Seconds, final equity and number of fills of our engine (dataset construction excluded)."""
    data = MarketData({"GBM": frame}, origin="bench gbm")
    config = BrokerConfig(initial_cash=cash, commission_bps=10.0, cash_buffer=EPS)
    strategy = make_strategy("sma_cross", fast=fast, slow=slow)
    t0 = time.perf_counter()
    result = run_backtest(data, strategy, config)
    seconds = time.perf_counter() - t0
    return seconds, float(result.equity.iloc[-1]), len(result.fills)


def run_backtesting_py(frame: pd.DataFrame, fast: int, slow: int, cash: float) -> tuple[float, float, int]:
    """Seconds, final equity and number of trades' fills of backtesting.py on the same bars."""
    from backtesting import Backtest, Strategy
    from backtesting.lib import crossover

    def sma(values: np.ndarray, n: int) -> np.ndarray:
        return pd.Series(values).rolling(n).mean().to_numpy()

    class SmaCross(Strategy):
        n1 = fast
        n2 = slow

        def init(self) -> None:
            self.sma1 = self.I(sma, self.data.Close, self.n1)
            self.sma2 = self.I(sma, self.data.Close, self.n2)

        def next(self) -> None:
            if crossover(self.sma1, self.sma2):
                self.buy()
            elif crossover(self.sma2, self.sma1):
                self.position.close()

    ohlc = frame.rename(columns=str.capitalize)
    with warnings.catch_warnings():
        # Canceled orders (price above cash) and open trades at the end are expected here.
        warnings.simplefilter("ignore")
        bt = Backtest(ohlc, SmaCross, cash=cash, commission=0.001, exclusive_orders=False)
        t0 = time.perf_counter()
        stats = bt.run()
        seconds = time.perf_counter() - t0
    trades = stats["_trades"]
    still_open = len(stats["_strategy"]._broker.trades)
    fills = 2 * len(trades) + still_open
    return seconds, float(stats["Equity Final [$]"]), fills


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bars", type=int, default=200_000, help="Number of daily bars (>= 1000).")
    parser.add_argument("--repeat", type=int, default=3, help="Timed runs per engine; the median is reported.")
    parser.add_argument("--fast", type=int, default=10, help="Fast SMA window.")
    parser.add_argument("--slow", type=int, default=30, help="Slow SMA window.")
    parser.add_argument("--cash", type=float, default=1e6, help="Initial cash.")
    parser.add_argument("--seed", type=int, default=7, help="Seed of the GBM path.")
    args = parser.parse_args(argv)
    if args.bars < 1000:
        parser.error("--bars must be at least 1000")
    frame = make_gbm(args.bars, args.seed)
    engines = {"tradegraph": run_ours, "backtesting.py": run_backtesting_py}
    runs: dict[str, list[tuple[float, float, int]]] = {name: [] for name in engines}
    # Interleaved, so both engines see the same background load on a shared machine.
    for _ in range(args.repeat):
        for name, runner in engines.items():
            runs[name].append(runner(frame, args.fast, args.slow, args.cash))
    rows = {}
    for name, results in runs.items():
        seconds = float(np.median([r[0] for r in results]))
        rows[name] = (seconds / args.bars * 1e6, results[0][1], results[0][2])
    ours, theirs = rows["tradegraph"], rows["backtesting.py"]
    print(f"SMA {args.fast}/{args.slow} crossover, {args.bars:,} GBM bars, median of {args.repeat} runs")
    print(f"{'engine':<16}{'us/bar':>10}{'final equity':>22}{'fills':>8}")
    for name, (us, equity, fills) in rows.items():
        print(f"{name:<16}{us:>10.2f}{equity:>22.6f}{fills:>8}")
    ratio = ours[0] / theirs[0]
    rel = abs(ours[1] - theirs[1]) / abs(theirs[1])
    print(f"time ratio (ours / backtesting.py): {ratio:.3f}   target <= 0.5   {'OK' if ratio <= 0.5 else 'MISSED'}")
    print(f"final equity relative difference: {rel:.3e}   target <= 1e-6   {'OK' if rel <= 1e-6 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
