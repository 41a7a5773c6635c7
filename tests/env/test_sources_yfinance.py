"""yfinance source: reads frames shaped exactly like yfinance's from the cache, and fails clearly offline."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from env.config import YFinanceConfig
from env.errors import DataError, DataUnavailableError
from env.sources import load_market
from env.sources import yfinance_source
from env.sources.yfinance_source import YF_COLUMNS, load_yfinance, yfinance_cache_path

START, END = dt.date(2024, 1, 2), dt.date(2024, 1, 10)


def yf_like_frame(seed: int, start: dt.date = START, end: dt.date = END) -> pd.DataFrame:
    """A frame with yfinance's exact shape: capitalised columns, tz-aware New York midnight index."""
    rng = np.random.default_rng(seed)
    index = pd.date_range(start, end - dt.timedelta(days=1), freq="B", tz="America/New_York", name="Date")
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, len(index))))
    open_ = close * np.exp(rng.normal(0, 0.005, len(index)))
    frame = pd.DataFrame(
        {
            "Open": open_,
            "High": np.maximum(open_, close) * 1.01,
            "Low": np.minimum(open_, close) * 0.99,
            "Close": close,
            "Adj Close": close * 0.98,
            "Volume": rng.integers(1_000_000, 5_000_000, len(index)),
            "Dividends": 0.0,
            "Stock Splits": 0.0,
        },
        index=index,
    )
    assert tuple(frame.columns) == YF_COLUMNS
    return frame


def seed_cache(cache_dir: Path, symbols: list[str]) -> None:
    for k, symbol in enumerate(symbols):
        path = yfinance_cache_path(cache_dir, symbol, START, END)
        path.parent.mkdir(parents=True, exist_ok=True)
        yf_like_frame(k).to_parquet(path)


def test_offline_run_reads_the_cache(tmp_path: Path) -> None:
    config = YFinanceConfig(tickers=["AAPL", "MSFT"], start=START, end=END, macro_proxies=["^VIX"], offline=True)
    seed_cache(tmp_path, ["AAPL", "MSFT", "^VIX"])
    data = load_market(config, tmp_path)
    assert data.tickers == ("AAPL", "MSFT")
    assert data.dates[0] == START and data.dates[-1] == dt.date(2024, 1, 9)
    expected = yf_like_frame(0)
    np.testing.assert_allclose(data.array("AAPL", "close"), expected["Close"].to_numpy())
    # Bars are the traded (unadjusted) prices, not Adj Close.
    assert not np.allclose(data.array("AAPL", "close"), expected["Adj Close"].to_numpy())
    vix = data.view(0).macro()
    assert [m.series for m in vix] == ["^VIX"] and "closed at" in vix[0].text
    assert data.truth is None


def test_missing_cache_offline_says_what_to_fetch(tmp_path: Path) -> None:
    seed_cache(tmp_path, ["AAPL"])
    config = YFinanceConfig(tickers=["AAPL", "MSFT"], start=START, end=END, macro_proxies=["^VIX"], offline=True)
    with pytest.raises(DataUnavailableError) as info:
        load_yfinance(config, tmp_path)
    message = str(info.value)
    assert "'MSFT'" in message and "'^VIX'" in message and "'AAPL'" not in message
    assert "2024-01-02" in message and "2024-01-10" in message
    assert "python -m env.sources.yfinance_source" in message


def test_network_failure_without_cache_is_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Fake the download: the real call needs the internet, which CI may or may not have. The fake
    # raises what curl_cffi raises offline (an OSError subclass).
    def offline_fetch(symbol: str, start: dt.date, end: dt.date) -> pd.DataFrame:
        raise ConnectionError(f"Could not resolve host: query2.finance.yahoo.com ({symbol})")

    monkeypatch.setattr(yfinance_source, "fetch_history", offline_fetch)
    config = YFinanceConfig(tickers=["AAPL"], start=START, end=END, macro_proxies=[])
    with pytest.raises(DataUnavailableError, match="Could not resolve host"):
        load_yfinance(config, tmp_path)


def test_download_is_written_to_cache_and_empty_result_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Fake yfinance's answer (no network here); the cache write and the reload are real.
    answers = {"AAPL": yf_like_frame(3), "GONE": yf_like_frame(3).iloc[:0]}
    monkeypatch.setattr(yfinance_source, "fetch_history", lambda symbol, start, end: answers[symbol])
    load_yfinance(YFinanceConfig(tickers=["AAPL"], start=START, end=END, macro_proxies=[]), tmp_path)
    cached = pd.read_parquet(yfinance_cache_path(tmp_path, "AAPL", START, END))
    assert tuple(cached.columns) == YF_COLUMNS
    with pytest.raises(DataUnavailableError, match="no rows"):
        load_yfinance(YFinanceConfig(tickers=["GONE"], start=START, end=END, macro_proxies=[]), tmp_path)


def test_corrupt_cached_parquet_is_named(tmp_path: Path) -> None:
    seed_cache(tmp_path, ["AAPL"])
    path = yfinance_cache_path(tmp_path, "AAPL", START, END)
    path.write_bytes(b"garbage")
    with pytest.raises(DataError, match="AAPL_2024-01-02_2024-01-10.parquet"):
        load_yfinance(YFinanceConfig(tickers=["AAPL"], start=START, end=END, macro_proxies=[], offline=True), tmp_path)


def test_cached_data_not_covering_the_range_is_an_error(tmp_path: Path) -> None:
    end = dt.date(2024, 3, 1)
    path = yfinance_cache_path(tmp_path, "AAPL", START, end)
    path.parent.mkdir(parents=True)
    yf_like_frame(0).to_parquet(path)
    with pytest.raises(DataError, match="outside the data"):
        load_yfinance(YFinanceConfig(tickers=["AAPL"], start=START, end=end, macro_proxies=[], offline=True), tmp_path)


def test_config_rejects_inverted_range() -> None:
    with pytest.raises(ValueError, match="end"):
        YFinanceConfig(tickers=["AAPL"], start=END, end=START)
