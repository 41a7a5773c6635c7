"""MarketData / MarketView: validation, point-in-time text, lookahead errors, no truth in views."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from env.errors import DataError, LookaheadError
from env.market import GroundTruth, MarketData, MarketView, validate_bars
from env.records import NEW_YORK, NewsItem, session_close


def bars(n: int = 5, start: str = "2024-01-02") -> pd.DataFrame:
    index = pd.bdate_range(start, periods=n, name="date")
    close = np.linspace(100, 110, n)
    return pd.DataFrame({"open": close - 0.5, "high": close + 1, "low": close - 1, "close": close, "volume": 1000.0}, index=index)


def news(item_id: str, when: dt.datetime, ticker: str = "ACME") -> NewsItem:
    return NewsItem(id=item_id, ticker=ticker, published_at=when, headline=f"headline {item_id}")


def ny(day: str, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hour, minute), tzinfo=NEW_YORK)


@pytest.fixture
def data() -> MarketData:
    items = [
        news("pre", ny("2024-01-02", 9, 0)),
        news("at-close", ny("2024-01-02", 16, 0)),
        news("after-close", ny("2024-01-02", 16, 1)),
        news("weekend", ny("2024-01-06", 11, 0)),
    ]
    truth = GroundTruth(item_sentiment={"pre": 1.0}, regimes={"ACME": pd.Series(["bull"] * 5)})
    return MarketData({"ACME": bars(), "BOLT": bars()}, news=items, truth=truth, origin="test")


def test_news_is_visible_from_the_session_whose_close_follows_it(data: MarketData) -> None:
    assert [n.id for n in data.view(0).news("ACME")] == ["pre", "at-close"]
    assert [n.id for n in data.view(1).news("ACME")] == ["pre", "at-close", "after-close"]
    assert [n.id for n in data.view(1).news("ACME", since=0)] == ["after-close"]
    # Saturday's item is first usable at Monday's close (index 4 = 2024-01-08).
    assert data.dates[4] == dt.date(2024, 1, 8)
    assert "weekend" not in [n.id for n in data.view(3).news()]
    assert "weekend" in [n.id for n in data.view(4).news()]


def test_view_refuses_later_data(data: MarketData) -> None:
    view = data.view(2)
    with pytest.raises(LookaheadError):
        view.price_on("ACME", data.dates[3])
    with pytest.raises(LookaheadError):
        view.at(3)
    with pytest.raises(LookaheadError):
        view.news("ACME", since=3)
    assert view.price_on("ACME", data.dates[1]) == pytest.approx(data.array("ACME", "close")[1])
    assert len(view.series("ACME")) == 3 and len(view.bars("ACME")) == 3
    assert view.decision_time == session_close(data.dates[2])


def test_view_arrays_are_read_only(data: MarketData) -> None:
    series = data.view(2).series("ACME")
    with pytest.raises(ValueError):
        series[0] = 1.0


def test_truth_is_not_reachable_from_a_view(data: MarketData) -> None:
    view = data.view(4)
    assert data.truth is not None
    assert not hasattr(view, "truth")
    public = [getattr(view, name) for name in dir(view) if not name.startswith("_")]
    assert not any(isinstance(value, (GroundTruth, MarketData)) for value in public)
    assert isinstance(view, MarketView)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f.drop(columns=["volume"]), "missing column"),
        (lambda f: f.assign(close=[100, np.nan, 102, 103, 104]), "missing or non-numeric close on 2024-01-03"),
        (lambda f: f.assign(low=[99, 0, 101, 102, 103]), "zero or negative price on 2024-01-03"),
        (lambda f: f.assign(high=[90, 102, 103, 104, 105]), "high < low on 2024-01-02"),
        (lambda f: f.iloc[[0, 2, 1, 3, 4]], "not sorted"),
        (lambda f: f.set_axis(pd.DatetimeIndex([f.index[0]] * 2 + list(f.index[2:]), name="date")), "duplicate date"),
        (lambda f: f.iloc[:0], "empty"),
    ],
)
def test_validate_bars_names_origin_and_row(mutate, message: str) -> None:  # noqa: ANN001
    with pytest.raises(DataError, match="src.csv") as info:
        validate_bars(mutate(bars()), origin="src.csv", ticker="ACME")
    assert message in str(info.value)


def test_tickers_must_share_a_calendar() -> None:
    with pytest.raises(DataError, match="calendar"):
        MarketData({"ACME": bars(), "BOLT": bars(start="2024-01-03")})


def test_news_for_unknown_ticker_is_rejected() -> None:
    with pytest.raises(DataError, match="unknown ticker 'ZZZ'"):
        MarketData({"ACME": bars()}, news=[news("x", ny("2024-01-02", 9), ticker="ZZZ")])


def test_slice_keeps_only_text_public_by_its_last_close(data: MarketData) -> None:
    part = data.slice(0, 1)
    assert len(part) == 1
    assert [n.id for n in part.news] == ["pre", "at-close"]


def test_naive_timestamps_are_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        news("naive", dt.datetime(2024, 1, 2, 9))
