"""Daily bars from Yahoo Finance (yfinance), cached as parquet so every run can replay offline.

Each symbol's raw history is stored exactly as yfinance returns it (columns Open, High, Low,
Close, Adj Close, Volume, Dividends, Stock Splits; tz-aware America/New_York index) at
``<cache_dir>/yfinance/<SYMBOL>_<start>_<end>.parquet``. Bars use the unadjusted OHLC, as the
broker fills at traded prices. Macro proxies (^VIX, ^TNX, ...) become ``MacroObservation``s
public at their session's close.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from env.config import YFinanceConfig
from env.errors import DataError, DataUnavailableError
from env.market import MarketData, validate_bars
from env.records import NEW_YORK, MacroObservation, session_close
from env.sources.cache import read_parquet, write_parquet
from env.sources.edgar import load_edgar_filings

YF_COLUMNS = ("Open", "High", "Low", "Close", "Adj Close", "Volume", "Dividends", "Stock Splits")
# A requested range may start or end on a weekend or holiday; beyond this slack it is "outside the data".
RANGE_SLACK_DAYS = 6


def yfinance_cache_path(cache_dir: Path, symbol: str, start: dt.date, end: dt.date) -> Path:
    """Where the raw history of ``symbol`` for ``[start, end)`` is cached."""
    safe = re.sub(r"[^A-Za-z0-9.\-]", "_", symbol)
    return Path(cache_dir) / "yfinance" / f"{safe}_{start:%Y-%m-%d}_{end:%Y-%m-%d}.parquet"


def fetch_history(symbol: str, start: dt.date, end: dt.date) -> pd.DataFrame:
    """Download one symbol's daily history. Raises ``OSError`` subclasses when Yahoo is unreachable."""
    import yfinance as yf

    return yf.Ticker(symbol).history(start=start, end=end, interval="1d", auto_adjust=False, actions=True, raise_errors=True)


def yf_frame_to_bars(raw: pd.DataFrame, *, origin: str, symbol: str) -> pd.DataFrame:
    """Validated lower-case OHLCV bars from a yfinance frame (session dates in New York)."""
    missing = [c for c in ("Open", "High", "Low", "Close", "Volume") if c not in raw.columns]
    if missing:
        raise DataError(f"{origin}: {symbol!r} lacks yfinance column(s) {missing}; got {list(raw.columns)}")
    frame = raw[["Open", "High", "Low", "Close", "Volume"]].rename(columns=str.lower)
    index = pd.DatetimeIndex(frame.index)
    if index.tz is not None:
        index = index.tz_convert(NEW_YORK).tz_localize(None)
    frame.index = index
    return validate_bars(frame, origin=origin, ticker=symbol)


def check_range(index: pd.DatetimeIndex, start: dt.date | None, end: dt.date | None, *, origin: str, what: str) -> None:
    """``DataError`` when the requested ``[start, end]`` is not covered by the dates in ``index``."""
    first, last = index[0].date(), index[-1].date()
    slack = dt.timedelta(days=RANGE_SLACK_DAYS)
    if start is not None and (start < first - slack or start > last):
        raise DataError(f"{origin}: requested start {start} is outside the data for {what} ({first} .. {last})")
    if end is not None and (end > last + slack or end < first):
        raise DataError(f"{origin}: requested end {end} is outside the data for {what} ({first} .. {last})")


def _load_raw(config: YFinanceConfig, symbol: str, cache_dir: Path) -> tuple[pd.DataFrame | None, str]:
    """The cached or freshly downloaded raw frame of ``symbol``, or (None, reason) when unavailable."""
    path = yfinance_cache_path(cache_dir, symbol, config.start, config.end)
    if path.exists():
        return read_parquet(path, f"yfinance history of {symbol}"), ""
    if config.offline:
        return None, "offline mode is on"
    try:
        raw = fetch_history(symbol, config.start, config.end)
    except OSError as exc:
        # curl_cffi's DNS/connection errors are OSError subclasses: no network, fall through to the message.
        return None, f"{type(exc).__name__}: {exc}"
    if raw is None or raw.empty:
        return None, "Yahoo returned no rows (offline, or a wrong/delisted symbol)"
    write_parquet(raw, path)
    return raw, ""


def load_yfinance(config: YFinanceConfig, cache_dir: Path) -> MarketData:
    """Bars for ``config.tickers``, macro proxies and (optionally) SEC filings, cache first.

    Raises ``DataUnavailableError`` listing every symbol that is neither cached nor downloadable,
    with the exact command that fetches them; ``DataError`` for malformed data or a requested
    range the data does not cover.
    """
    cache_dir = Path(cache_dir)
    raws: dict[str, pd.DataFrame] = {}
    missing: dict[str, str] = {}
    for symbol in [*config.tickers, *config.macro_proxies]:
        raw, reason = _load_raw(config, symbol, cache_dir)
        if raw is None:
            missing[symbol] = reason
        else:
            raws[symbol] = raw
    if missing:
        symbols = " ".join(f"'{s}'" for s in missing)
        first_reason = next(iter(missing.values()))
        raise DataUnavailableError(
            f"yfinance data for {list(missing)} from {config.start} to {config.end} (end exclusive) is not in "
            f"{cache_dir / 'yfinance'} and cannot be downloaded ({first_reason}). On a machine with internet run: "
            f"python -m env.sources.yfinance_source --cache-dir {cache_dir} --start {config.start} --end {config.end} "
            f"{symbols}  and copy the yfinance/ folder here"
        )
    bars = {}
    for symbol in config.tickers:
        origin = str(yfinance_cache_path(cache_dir, symbol, config.start, config.end))
        bars[symbol] = yf_frame_to_bars(raws[symbol], origin=origin, symbol=symbol)
        check_range(bars[symbol].index, config.start, config.end - dt.timedelta(days=1), origin=origin, what=symbol)
    calendar = bars[config.tickers[0]].index
    macro: list[MacroObservation] = []
    for symbol in config.macro_proxies:
        origin = str(yfinance_cache_path(cache_dir, symbol, config.start, config.end))
        proxy = yf_frame_to_bars(raws[symbol], origin=origin, symbol=symbol)
        macro += macro_from_closes(symbol, proxy["close"], calendar)
    filings = load_edgar_filings(config.edgar, config.tickers, cache_dir, offline=config.offline) if config.edgar else []
    return MarketData(bars, filings=filings, macro=macro, origin=f"yfinance {config.start}..{config.end}")


def macro_from_closes(series: str, closes: pd.Series, calendar: pd.DatetimeIndex) -> list[MacroObservation]:
    """One observation per session close of a proxy, public at that close (dates outside ``calendar`` kept too)."""
    out = []
    previous = None
    for day, value in closes.items():
        change = "" if previous is None else f" ({(value / previous - 1) * 100:+.2f}% on the day)"
        out.append(
            MacroObservation(
                id=f"yf-{series}-{day:%Y%m%d}",
                series=series,
                date=day.date(),
                released_at=session_close(day.date()),
                value=float(value),
                text=f"{series} closed at {value:.2f}{change}.",
            )
        )
        previous = value
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Fetch symbols into the cache: ``python -m env.sources.yfinance_source --cache-dir D --start S --end E SYM...``."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("symbols", nargs="+")
    parser.add_argument("--cache-dir", type=Path, required=True)
    parser.add_argument("--start", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--end", type=dt.date.fromisoformat, required=True)
    args = parser.parse_args(argv)
    config = YFinanceConfig(tickers=args.symbols, start=args.start, end=args.end, macro_proxies=[])
    for symbol in args.symbols:
        raw, reason = _load_raw(config, symbol, args.cache_dir)
        print(f"{symbol}: {'ok, ' + str(len(raw)) + ' rows' if raw is not None else 'FAILED: ' + reason}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
