"""Real daily prices shipped inside the ``arch`` package: S&P 500 and NASDAQ OHLCV 1999–2018,
with WTI crude and VIX as macro series. Read with arch's own loaders (``arch.data.<name>.load()``),
so nothing is downloaded and every run sees the same bytes.

Prices are scaled by ``Adj Close / Close`` when they differ, so a split or dividend in the data
never shows up as a price jump (for these two indices the factor is 1 on every row).
"""

from __future__ import annotations

import importlib

import pandas as pd

from env.config import ArchConfig
from env.errors import DataError, DataUnavailableError
from env.market import MarketData
from env.records import MacroObservation
from env.sources.yfinance_source import check_range, macro_from_closes, yf_frame_to_bars

PRICE_MODULES = {"SP500": "sp500", "NASDAQ": "nasdaq"}
MACRO_MODULES = {"WTI": ("wti", "DCOILWTICO"), "VIX": ("vix", "vix")}


def _load(module: str) -> pd.DataFrame:
    try:
        loader = importlib.import_module(f"arch.data.{module}")
    except ImportError as exc:
        raise DataUnavailableError(
            f"data.kind arch: the `arch` package is not installed ({exc}); run `pip install arch==8.0.0`"
        ) from None
    return loader.load()


def adjusted_bars(raw: pd.DataFrame, *, origin: str, symbol: str) -> pd.DataFrame:
    """Validated lower-case OHLCV bars; open, high, low and close scaled by ``Adj Close / Close``."""
    frame = raw.copy()
    if "Adj Close" in frame.columns:
        factor = frame["Adj Close"] / frame["Close"]
        for column in ("Open", "High", "Low", "Close"):
            frame[column] = frame[column] * factor
        frame = frame.drop(columns="Adj Close")
    return yf_frame_to_bars(frame, origin=origin, symbol=symbol)


def load_arch(config: ArchConfig) -> MarketData:
    """The configured indices and macro series between ``start`` and ``end`` (both inclusive)."""
    bars = {}
    for ticker in config.tickers:
        origin = f"arch.data.{PRICE_MODULES[ticker]}"
        frame = adjusted_bars(_load(PRICE_MODULES[ticker]), origin=origin, symbol=ticker)
        check_range(frame.index, config.start, config.end, origin=origin, what=ticker)
        lo = frame.index.searchsorted(pd.Timestamp(config.start)) if config.start else 0
        hi = frame.index.searchsorted(pd.Timestamp(config.end), side="right") if config.end else len(frame)
        bars[ticker] = frame.iloc[lo:hi]
    calendar = next(iter(bars.values())).index
    if len(calendar) < 2:
        raise DataError(f"data.kind arch: {config.start} .. {config.end} holds {len(calendar)} session(s); widen it")
    macro: list[MacroObservation] = []
    for name in config.macro:
        module, column = MACRO_MODULES[name]
        series = _load(module)[column].dropna()  # FRED marks holidays as missing
        series = series[(series.index >= calendar[0] - pd.Timedelta(days=7)) & (series.index <= calendar[-1])]
        macro += macro_from_closes(name, series, calendar)
    span = f"{calendar[0].date()}..{calendar[-1].date()}"
    return MarketData(bars, macro=macro, origin=f"arch {'+'.join(config.tickers)} {span}")
