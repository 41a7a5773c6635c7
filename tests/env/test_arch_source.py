"""The arch package's bundled real data (S&P 500, NASDAQ, WTI, VIX), read through data.kind arch."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError

from env.config import ArchConfig
from env.errors import DataError
from env.sources import load_market
from env.sources.arch_source import adjusted_bars, load_arch

REPO = Path(__file__).resolve().parents[2]


def test_full_history_of_both_indices() -> None:
    data = load_arch(ArchConfig(macro=[]))
    assert data.tickers == ("SP500", "NASDAQ") and len(data) == 5031
    assert (data.dates[0], data.dates[-1]) == (dt.date(1999, 1, 4), dt.date(2018, 12, 31))
    # First row of arch/data/sp500/sp500.csv.gz: open 1229.229980, close 1228.099976.
    assert data.array("SP500", "open")[0] == pytest.approx(1229.229980)
    assert data.array("SP500", "close")[0] == pytest.approx(1228.099976)


def test_window_and_macro_series() -> None:
    data = load_arch(ArchConfig(tickers=["SP500"], start=dt.date(2018, 10, 1), end=dt.date(2018, 12, 31)))
    assert (data.dates[0], data.dates[-1], len(data)) == (dt.date(2018, 10, 1), dt.date(2018, 12, 31), 63)
    series = {item.series for item in data.macro}
    assert series == {"WTI", "VIX"}
    vix = [item for item in data.macro if item.series == "VIX" and item.date == dt.date(2018, 12, 24)]
    assert len(vix) == 1 and vix[0].value > 30  # Christmas Eve 2018: VIX closed at 36.07


def test_adjustment_scales_prices_by_adj_close() -> None:
    raw = pd.DataFrame(
        {"Open": [10.0, 20.0], "High": [11.0, 22.0], "Low": [9.0, 18.0], "Close": [10.0, 20.0],
         "Adj Close": [5.0, 20.0], "Volume": [100, 200]},
        index=pd.DatetimeIndex(["2020-01-02", "2020-01-03"]),
    )
    bars = adjusted_bars(raw, origin="test", symbol="X")
    assert bars["open"].tolist() == [5.0, 20.0] and bars["high"].tolist() == [5.5, 22.0]
    assert bars["close"].tolist() == [5.0, 20.0] and bars["volume"].tolist() == [100, 200]


def test_bad_windows_fail_early() -> None:
    with pytest.raises(DataError, match="outside the data for SP500"):
        load_arch(ArchConfig(tickers=["SP500"], macro=[], start=dt.date(1990, 1, 1)))
    with pytest.raises(ValidationError, match="before start"):
        ArchConfig(start=dt.date(2018, 1, 2), end=dt.date(2017, 1, 2))
    with pytest.raises(ValidationError):
        ArchConfig(tickers=["AAPL"])  # only what the package ships


def test_load_market_caches_it(tmp_path: Path) -> None:
    config = ArchConfig(tickers=["NASDAQ"], macro=["WTI"], start=dt.date(2018, 1, 2), end=dt.date(2018, 3, 29))
    first = load_market(config, tmp_path)
    again = load_market(config, tmp_path)
    assert first.dates == again.dates and (first.array("NASDAQ", "close") == again.array("NASDAQ", "close")).all()
    assert any((tmp_path / "datasets").iterdir())


def test_real_sp500_scenario_tests_on_the_last_thirty_sessions() -> None:
    from agents.config import load_scenario
    from agents.runtime import load_data, schedule_for

    config = load_scenario(REPO / "scenarios" / "real_sp500.yaml", {"cache_dir": str(REPO / ".cache" / "tradegraph")})
    data = load_data(config)
    schedule = schedule_for(config, data)
    assert (data.dates[schedule.test_start], data.dates[schedule.end_day]) == (dt.date(2018, 11, 15), dt.date(2018, 12, 31))
