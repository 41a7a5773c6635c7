"""File import: OHLCV price CSVs and FNSPID-layout news CSVs, checked line by line.

``env.market.validate_bars`` checks a frame; this module adds what only the file
knows: the 1-based line number of every bad row (line 1 is the header), so an
error message points at the exact line to fix. Nothing is dropped or filled.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from env.errors import DataError, DataUnavailableError
from env.market import BAR_FIELDS, validate_bars
from env.records import NewsItem

logger = logging.getLogger(__name__)

# Extra columns a price CSV may carry; they are read past, not used (yfinance/Yahoo exports have them).
TOLERATED_PRICE_COLUMNS = frozenset({"adj close", "adj_close", "adjclose", "dividends", "stock splits"})

FNSPID_COLUMNS = (
    "Date",
    "Article_title",
    "Stock_symbol",
    "Url",
    "Publisher",
    "Author",
    "Article",
    "Lsa_summary",
    "Luhn_summary",
    "Textrank_summary",
    "Lexrank_summary",
)
_FNSPID_REQUIRED = ("Date", "Article_title", "Stock_symbol")

# Strips a time of day (and an optional offset / zone) so "2024-01-02 00:00:00-05:00" reads as 2024-01-02:
# a daily bar is labelled by its local session date whatever the exporter appended.
_TIME_SUFFIX = r"(?<=\d)[T ]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\s*([+-]\d{2}:?\d{2}|Z|UTC)?$"


def _line(row: int) -> int:
    """1-based file line of 0-based data row ``row`` (line 1 is the header)."""
    return row + 2


def _read_raw(path: Path, what: str) -> pd.DataFrame:
    if not path.exists():
        raise DataUnavailableError(f"{path}: {what} file not found; check the path in the data config")
    if not path.is_file():
        raise DataError(f"{path}: {what} path is not a file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: {what} file is empty (no header, no rows)")
    try:
        # Everything as text and blank lines kept, so row positions map 1:1 to file lines.
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot parse {what} CSV: {exc}") from exc
    if raw.empty:
        raise DataError(f"{path}: {what} file has a header but no data rows")
    return raw


def _price_columns(raw: pd.DataFrame, path: Path) -> dict[str, str]:
    """Map lower-case field -> the file's column name; error (line 1) on missing or unknown columns."""
    by_lower = {c.strip().lower(): c for c in raw.columns}
    date_col = by_lower.get("date") or by_lower.get("datetime")
    wanted = ["date", *BAR_FIELDS]
    found = {"date": date_col} if date_col else {}
    found.update({f: by_lower[f] for f in BAR_FIELDS if f in by_lower})
    missing = [f for f in wanted if f not in found]
    if missing:
        raise DataError(
            f"{path}: line 1 (header) lacks column(s) {[m.capitalize() for m in missing]}; "
            f"expected Date,Open,High,Low,Close,Volume (an extra 'Adj Close' is fine), got {list(raw.columns)}"
        )
    unknown = [
        c for c in raw.columns if c.strip().lower() not in {"date", "datetime", *BAR_FIELDS, *TOLERATED_PRICE_COLUMNS}
    ]
    if unknown:
        raise DataError(
            f"{path}: line 1 (header) has unexpected column(s) {unknown}; a price CSV holds "
            "Date,Open,High,Low,Close,Volume (+ optional Adj Close, Dividends, Stock Splits)"
        )
    return found


def _parse_dates(values: pd.Series, path: Path) -> pd.DatetimeIndex:
    stripped = values.str.strip().str.replace(_TIME_SUFFIX, "", regex=True)
    parsed = pd.to_datetime(stripped, errors="coerce", format="mixed")
    bad = parsed.isna().to_numpy()
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(f"{path}: line {_line(row)}: cannot read date {values.iloc[row]!r}")
    return pd.DatetimeIndex(parsed).normalize()


def load_prices_csv(path: str | Path, ticker: str) -> pd.DataFrame:
    """Read one ticker's daily OHLCV CSV into a validated frame.

    The file needs the columns Date, Open, High, Low, Close, Volume (any case; an extra
    ``Adj Close``, ``Dividends`` or ``Stock Splits`` column is tolerated and ignored). Returns a
    frame with lower-case columns ``open, high, low, close, volume`` (floats) indexed by a
    tz-naive ``DatetimeIndex`` named ``date``, sorted ascending.

    Raises ``DataError`` naming the file and the 1-based line for: an empty file, missing
    columns, an unreadable date, a missing/non-numeric/zero/negative price, a negative volume,
    high < low, open/close outside [low, high], a duplicate date or a date out of order.
    A missing file raises ``DataUnavailableError``.
    """
    path = Path(path)
    raw = _read_raw(path, "price")
    cols = _price_columns(raw, path)
    index = _parse_dates(raw[cols["date"]], path)
    frame = pd.DataFrame(index=index)
    for name in BAR_FIELDS:
        text = raw[cols[name]].str.strip()
        values = pd.to_numeric(text.str.replace(",", "", regex=False), errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(values)
        if bad.any():
            row = int(np.argmax(bad))
            shown = text.iloc[row] or "<empty>"
            raise DataError(
                f"{path}: line {_line(row)} ({index[row].date()}): {cols[name]} is missing or not a number "
                f"({shown!r}); fix or remove that row (tradegraph never fills prices)"
            )
        frame[name] = values
    prices = frame[["open", "high", "low", "close"]].to_numpy()
    checks = (
        ((prices <= 0).any(axis=1), "a zero or negative price"),
        (frame["volume"].to_numpy() < 0, "a negative volume"),
        (frame["high"].to_numpy() < frame["low"].to_numpy(), "High < Low"),
        (
            (prices.max(axis=1) > frame["high"].to_numpy() * (1 + 1e-9))
            | (prices.min(axis=1) < frame["low"].to_numpy() * (1 - 1e-9)),
            "Open or Close outside [Low, High]",
        ),
        (index.duplicated(), "a duplicate date (keep one row per date)"),
    )
    for bad, what in checks:
        if bad.any():
            row = int(np.argmax(bad))
            raise DataError(f"{path}: line {_line(row)} ({index[row].date()}): {what}")
    backwards = np.diff(index.asi8) < 0
    if backwards.any():
        row = int(np.argmax(backwards)) + 1
        raise DataError(
            f"{path}: line {_line(row)}: date {index[row].date()} comes after {index[row - 1].date()} "
            "(dates must be sorted ascending; sort the file by date)"
        )
    return validate_bars(frame, origin=str(path), ticker=ticker)


@dataclass(frozen=True)
class NewsImport:
    """News read from a file, plus what was skipped on purpose (never silently)."""

    items: tuple[NewsItem, ...]
    skipped_unknown: dict[str, int] = field(default_factory=dict)

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped_unknown.values())


def _news_id(ticker: str, published: dt.datetime, title: str, url: str) -> str:
    digest = hashlib.sha256(f"{ticker}|{published.isoformat()}|{title}|{url}".encode()).hexdigest()[:16]
    return f"fnspid-{ticker}-{digest}"


def load_fnspid_news(
    path: str | Path, tickers: Collection[str], *, ignore_unknown_tickers: bool = False
) -> NewsImport:
    """Read a news CSV in the FNSPID layout into ``NewsItem`` records.

    Columns: Date, Article_title, Stock_symbol, Url, Publisher, Author, Article and the four
    summaries (only Date, Article_title and Stock_symbol are required). ``Date`` looks like
    ``2023-12-16 23:00:00 UTC``; a naive time is read as UTC, which is how FNSPID stores it.
    The body is the article text, or the LSA summary when the article is empty.

    A row naming a ticker outside ``tickers`` raises ``DataError`` with the file and line,
    unless ``ignore_unknown_tickers`` is set; then the skipped rows are counted per ticker in
    the returned ``NewsImport`` and logged.
    """
    path = Path(path)
    raw = _read_raw(path, "news")
    missing = [c for c in _FNSPID_REQUIRED if c not in raw.columns]
    if missing:
        raise DataError(
            f"{path}: line 1 (header) lacks FNSPID column(s) {missing}; expected {list(FNSPID_COLUMNS)}"
        )
    known = set(tickers)
    stamps = pd.to_datetime(
        raw["Date"].str.strip().str.replace(r"\s*UTC$", "", regex=True), errors="coerce", format="mixed", utc=True
    )

    def column(name: str) -> list[str]:
        return raw[name].str.strip().tolist() if name in raw.columns else [""] * len(raw)

    titles, symbols, urls = column("Article_title"), column("Stock_symbol"), column("Url")
    publishers, articles, summaries = column("Publisher"), column("Article"), column("Lsa_summary")
    items: list[NewsItem] = []
    seen: dict[str, int] = {}
    skipped: dict[str, int] = {}
    for row in range(len(raw)):
        line = _line(row)
        if pd.isna(stamps.iloc[row]):
            raise DataError(f"{path}: line {line}: cannot read Date {raw['Date'].iloc[row]!r}")
        symbol = symbols[row].upper()
        if not symbol:
            raise DataError(f"{path}: line {line}: Stock_symbol is empty")
        if symbol not in known:
            if ignore_unknown_tickers:
                skipped[symbol] = skipped.get(symbol, 0) + 1
                continue
            raise DataError(
                f"{path}: line {line}: Stock_symbol {symbol!r} is not among the loaded tickers {sorted(known)}; "
                "add its prices or set ignore_unknown_tickers: true (skipped rows are counted and logged)"
            )
        if not titles[row]:
            raise DataError(f"{path}: line {line}: Article_title is empty")
        published = stamps.iloc[row].to_pydatetime()
        item_id = _news_id(symbol, published, titles[row], urls[row])
        # FNSPID repeats some articles verbatim; keep every row, each under its own id.
        seen[item_id] = seen.get(item_id, 0) + 1
        if seen[item_id] > 1:
            item_id = f"{item_id}-{seen[item_id]}"
        items.append(
            NewsItem(
                id=item_id,
                ticker=symbol,
                published_at=published,
                headline=titles[row],
                body=articles[row] or summaries[row],
                source=publishers[row],
                url=urls[row],
            )
        )
    if skipped:
        logger.warning(
            "%s: skipped %d news row(s) naming tickers without prices: %s", path, sum(skipped.values()), skipped
        )
    return NewsImport(items=tuple(items), skipped_unknown=dict(sorted(skipped.items())))
