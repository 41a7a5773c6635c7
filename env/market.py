"""A validated market dataset and its point-in-time views.

``MarketData`` holds bars for one or more tickers on one shared calendar, plus
news, filings and macro observations, plus (for synthetic data) a ground truth
that no agent may read. ``MarketData.view(i)`` returns a ``MarketView`` for
session ``i``: it exposes only bars up to that session's close and text items
public by then. Asking it for anything later raises ``LookaheadError``.

Views are cheap (an index and a reference) so a backtest can create one per bar.
Arrays handed out are read-only slices, so no caller can write into the dataset.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from env.errors import DataError, LookaheadError
from env.records import Filing, MacroObservation, NewsItem, session_close

BAR_FIELDS = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class GroundTruth:
    """What a synthetic market knows about itself. For evaluation only; never reachable from a view."""

    regimes: dict[str, pd.Series] = field(default_factory=dict)
    item_sentiment: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def validate_bars(frame: pd.DataFrame, *, origin: str, ticker: str) -> pd.DataFrame:
    """Check one ticker's OHLCV frame and return it with a normalised DatetimeIndex named ``date``.

    Never drops or fills: every problem raises ``DataError`` naming ``origin`` and the row.
    """
    if frame is None or len(frame) == 0:
        raise DataError(f"{origin}: no bars for {ticker!r} (empty data)")
    missing = [c for c in BAR_FIELDS if c not in frame.columns]
    if missing:
        raise DataError(
            f"{origin}: {ticker!r} is missing column(s) {missing}; expected {list(BAR_FIELDS)} (lower case)"
        )
    out = frame.loc[:, list(BAR_FIELDS)].copy()
    if not isinstance(out.index, pd.DatetimeIndex):
        try:
            out.index = pd.DatetimeIndex(pd.to_datetime(out.index))
        except (ValueError, TypeError) as exc:
            raise DataError(f"{origin}: {ticker!r} has an index that is not dates: {exc}") from exc
    if out.index.tz is not None:
        out.index = out.index.tz_localize(None)
    out.index = out.index.normalize()
    out.index.name = "date"
    for col in BAR_FIELDS:
        values = pd.to_numeric(out[col], errors="coerce")
        bad = values.isna()
        if bad.any():
            row = out.index[bad.argmax()]
            raise DataError(
                f"{origin}: {ticker!r} has a missing or non-numeric {col} on {row.date()}; "
                "fix or remove that row in the source (tradegraph never fills prices)"
            )
        out[col] = values.astype(float)
    prices = out[["open", "high", "low", "close"]].to_numpy()
    nonpos = (prices <= 0).any(axis=1)
    if nonpos.any():
        row = out.index[nonpos.argmax()]
        raise DataError(f"{origin}: {ticker!r} has a zero or negative price on {row.date()}")
    if (out["volume"].to_numpy() < 0).any():
        row = out.index[(out["volume"].to_numpy() < 0).argmax()]
        raise DataError(f"{origin}: {ticker!r} has a negative volume on {row.date()}")
    hl = out["high"].to_numpy() < out["low"].to_numpy()
    if hl.any():
        row = out.index[hl.argmax()]
        raise DataError(f"{origin}: {ticker!r} has high < low on {row.date()}")
    outside = (prices.max(axis=1) > out["high"].to_numpy() * (1 + 1e-9)) | (
        prices.min(axis=1) < out["low"].to_numpy() * (1 - 1e-9)
    )
    if outside.any():
        row = out.index[outside.argmax()]
        raise DataError(f"{origin}: {ticker!r} has open/close outside [low, high] on {row.date()}")
    dup = out.index.duplicated()
    if dup.any():
        row = out.index[dup.argmax()]
        raise DataError(f"{origin}: {ticker!r} has a duplicate date {row.date()}; keep one row per date")
    if not out.index.is_monotonic_increasing:
        pos = int(np.argmax(np.diff(out.index.asi8) < 0)) + 1
        raise DataError(
            f"{origin}: {ticker!r} dates are not sorted (row {pos}, {out.index[pos].date()} comes after "
            f"{out.index[pos - 1].date()}); sort the file by date"
        )
    return out


class _TextIndex:
    """Items sorted by ``public_at`` with a bisectable array of UTC timestamps."""

    def __init__(self, items: Iterable[Any]) -> None:
        self.items: tuple[Any, ...] = tuple(sorted(items, key=lambda r: (r.public_at, r.id)))
        self.times: list[dt.datetime] = [r.public_at for r in self.items]

    def upto(self, t: dt.datetime) -> int:
        return bisect.bisect_right(self.times, t)


class MarketData:
    """A validated, immutable dataset on one trading calendar shared by every ticker."""

    def __init__(
        self,
        bars: dict[str, pd.DataFrame],
        news: Sequence[NewsItem] = (),
        filings: Sequence[Filing] = (),
        macro: Sequence[MacroObservation] = (),
        truth: GroundTruth | None = None,
        origin: str = "market data",
    ) -> None:
        if not bars:
            raise DataError(f"{origin}: no tickers")
        self.origin = origin
        self.tickers: tuple[str, ...] = tuple(bars)
        self.bars: dict[str, pd.DataFrame] = {}
        calendar: pd.DatetimeIndex | None = None
        for ticker, frame in bars.items():
            clean = validate_bars(frame, origin=origin, ticker=ticker)
            if calendar is None:
                calendar = clean.index
            elif not clean.index.equals(calendar):
                diff = clean.index.symmetric_difference(calendar)
                raise DataError(
                    f"{origin}: {ticker!r} does not share the calendar of {self.tickers[0]!r} "
                    f"(first differing date {diff[0].date()}); align the tickers' dates"
                )
            self.bars[ticker] = clean
        assert calendar is not None
        self.calendar: pd.DatetimeIndex = calendar
        self.dates: tuple[dt.date, ...] = tuple(d.date() for d in calendar)
        self.closes_utc: list[dt.datetime] = [session_close(d) for d in self.dates]
        # One float array per ticker and field, made read-only: views hand out slices of these.
        self._arrays: dict[str, dict[str, np.ndarray]] = {}
        for ticker, frame in self.bars.items():
            cols = {}
            for col in BAR_FIELDS:
                arr = frame[col].to_numpy(dtype=float, copy=True)
                arr.setflags(write=False)
                cols[col] = arr
            self._arrays[ticker] = cols
        known = set(self.tickers)
        for kind, items in (("news", news), ("filings", filings)):
            for item in items:
                if item.ticker not in known:
                    raise DataError(
                        f"{origin}: {kind} item {item.id!r} names unknown ticker {item.ticker!r}; "
                        f"known tickers: {sorted(known)}"
                    )
        self._news = _TextIndex(news)
        self._filings = _TextIndex(filings)
        self._macro = _TextIndex(macro)
        self._truth = truth

    # -- whole-dataset access: for engines, evaluation and tests, never for agents ----------
    def __len__(self) -> int:
        return len(self.dates)

    @property
    def truth(self) -> GroundTruth | None:
        """Ground truth of a synthetic market (None for real data). Evaluation code only."""
        return self._truth

    @property
    def news(self) -> tuple[NewsItem, ...]:
        return self._news.items

    @property
    def filings(self) -> tuple[Filing, ...]:
        return self._filings.items

    @property
    def macro(self) -> tuple[MacroObservation, ...]:
        return self._macro.items

    def array(self, ticker: str, field_name: str) -> np.ndarray:
        """The full read-only array of one field. Engines use it to fill orders; agents never see it."""
        return self._arrays[self._ticker(ticker)][field_name]

    def index_of(self, day: dt.date | str | pd.Timestamp) -> int:
        """Position of a session date in the calendar (DataError if it is not a session)."""
        ts = pd.Timestamp(day).normalize()
        pos = self.calendar.searchsorted(ts)
        if pos >= len(self.calendar) or self.calendar[pos] != ts:
            raise DataError(
                f"{self.origin}: {ts.date()} is not a trading session in the data "
                f"({self.dates[0]} .. {self.dates[-1]})"
            )
        return int(pos)

    def view(self, i: int) -> MarketView:
        """The point-in-time view at the close of session ``i``."""
        if not 0 <= i < len(self.dates):
            raise DataError(f"{self.origin}: session index {i} outside 0..{len(self.dates) - 1}")
        return MarketView(self, i)

    def slice(self, start: int, stop: int) -> MarketData:
        """A new dataset restricted to sessions [start, stop) and the text public by the last close."""
        end = self.closes_utc[stop - 1]
        return MarketData(
            {t: f.iloc[start:stop] for t, f in self.bars.items()},
            news=[n for n in self.news if n.public_at <= end],
            filings=[f for f in self.filings if f.public_at <= end],
            macro=[m for m in self.macro if m.public_at <= end],
            truth=self._truth,
            origin=self.origin,
        )

    def _ticker(self, ticker: str) -> str:
        if ticker not in self._arrays:
            raise DataError(f"{self.origin}: unknown ticker {ticker!r}; known tickers: {list(self.tickers)}")
        return ticker


class MarketView:
    """What was public at the close of session ``index``. Anything later raises ``LookaheadError``."""

    __slots__ = ("_data", "index")

    def __init__(self, data: MarketData, index: int) -> None:
        self._data = data
        self.index = index

    @property
    def date(self) -> dt.date:
        return self._data.dates[self.index]

    @property
    def decision_time(self) -> dt.datetime:
        return self._data.closes_utc[self.index]

    @property
    def tickers(self) -> tuple[str, ...]:
        return self._data.tickers

    @property
    def dates(self) -> tuple[dt.date, ...]:
        return self._data.dates[: self.index + 1]

    # -- prices ---------------------------------------------------------------------------
    def series(self, ticker: str, field_name: str = "close", lookback: int | None = None) -> np.ndarray:
        """Read-only array of ``field_name`` for sessions up to and including today."""
        arr = self._data.array(ticker, field_name)
        start = 0 if lookback is None else max(0, self.index + 1 - lookback)
        return arr[start : self.index + 1]

    def close(self, ticker: str) -> float:
        return float(self._data.array(ticker, "close")[self.index])

    def price_on(self, ticker: str, day: dt.date | str) -> float:
        """Close on a past session; ``LookaheadError`` for any date after today."""
        pos = self._data.index_of(day)
        self._check(pos, f"the close of {ticker} on {pd.Timestamp(day).date()}")
        return float(self._data.array(ticker, "close")[pos])

    def bars(self, ticker: str, lookback: int | None = None) -> pd.DataFrame:
        """A copy of the OHLCV frame up to today (``lookback`` sessions at most)."""
        frame = self._data.bars[self._data._ticker(ticker)]
        start = 0 if lookback is None else max(0, self.index + 1 - lookback)
        return frame.iloc[start : self.index + 1].copy()

    def at(self, i: int) -> MarketView:
        """Another view at session ``i``; only earlier or equal sessions are allowed."""
        self._check(i, f"the view of session {i}")
        return MarketView(self._data, i)

    # -- text -----------------------------------------------------------------------------
    def news(self, ticker: str | None = None, since: int | None = None) -> list[NewsItem]:
        """News public by today's close and (with ``since``) after the close of session ``since``."""
        return self._text(self._data._news, ticker, since)

    def filings(self, ticker: str | None = None, since: int | None = None) -> list[Filing]:
        return self._text(self._data._filings, ticker, since)

    def macro(self, since: int | None = None) -> list[MacroObservation]:
        return self._text(self._data._macro, None, since)

    def _text(self, index: _TextIndex, ticker: str | None, since: int | None) -> list[Any]:
        hi = index.upto(self.decision_time)
        lo = 0
        if since is not None:
            self._check(since, f"text since session {since}")
            lo = index.upto(self._data.closes_utc[since]) if since >= 0 else 0
        items = index.items[lo:hi]
        if ticker is not None:
            items = tuple(r for r in items if r.ticker == ticker)
        return list(items)

    def _check(self, i: int, what: str) -> None:
        if i > self.index:
            raise LookaheadError(
                f"asked for {what}, which is after this view's decision time "
                f"({self.date}, close); a point-in-time view only shows the past"
            )
