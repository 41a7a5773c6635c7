"""CSV import: every validation error names the file and the 1-based line; FNSPID news import."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from env.config import CsvConfig
from env.errors import DataError, DataUnavailableError
from env.sources import load_market, load_prices_csv
from env.sources.csv_source import load_fnspid_news

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
HEADER = "Date,Open,High,Low,Close,Adj Close,Volume"
GOOD_ROWS = [
    "2024-01-02,100,102,99,101,100.5,1000",
    "2024-01-03,101,103,100,102,101.5,1100",
    "2024-01-04,102,104,101,103,102.5,1200",
    "2024-01-05,103,105,102,104,103.5,1300",
    "2024-01-08,104,106,103,105,104.5,1400",
]


def write_csv(path: Path, header: str | None, rows: list[str]) -> Path:
    lines = ([header] if header is not None else []) + rows
    path.write_text("\n".join(lines) + ("\n" if lines else ""))
    return path


def replace_row(index: int, row: str) -> list[str]:
    rows = list(GOOD_ROWS)
    rows[index] = row
    return rows


def test_good_file_gives_lower_case_float_frame(tmp_path: Path) -> None:
    frame = load_prices_csv(write_csv(tmp_path / "acme.csv", HEADER, GOOD_ROWS), "ACME")
    assert list(frame.columns) == ["open", "high", "low", "close", "volume"]
    assert frame.index.name == "date"
    assert frame.index[0].date() == dt.date(2024, 1, 2)
    assert frame["close"].tolist() == [101.0, 102.0, 103.0, 104.0, 105.0]
    assert all(dtype == np.float64 for dtype in frame.dtypes)


def test_timezone_suffix_and_column_case_are_tolerated(tmp_path: Path) -> None:
    rows = [r.replace("2024-01-0", "2024-01-0", 1) for r in GOOD_ROWS]
    rows = [f"{r.split(',', 1)[0]} 00:00:00-05:00,{r.split(',', 1)[1]}" for r in rows]
    frame = load_prices_csv(write_csv(tmp_path / "tz.csv", HEADER.lower(), rows), "ACME")
    assert [d.date() for d in frame.index][:2] == [dt.date(2024, 1, 2), dt.date(2024, 1, 3)]


BAD_FILES = [
    ("empty", None, [], "is empty"),
    ("header_only", HEADER, [], "no data rows"),
    ("missing_column", "Date,Open,High,Low,Volume", [r.rsplit(",", 3)[0] + ",1" for r in GOOD_ROWS], "line 1"),
    ("unknown_column", HEADER + ",Note", [r + ",x" for r in GOOD_ROWS], "line 1"),
    ("bad_date", HEADER, replace_row(2, "not-a-date,102,104,101,103,102.5,1200"), "line 4"),
    ("non_numeric", HEADER, replace_row(1, "2024-01-03,101,abc,100,102,101.5,1100"), "line 3"),
    ("nan_price", HEADER, replace_row(3, "2024-01-05,103,105,102,,103.5,1300"), "line 5"),
    ("zero_price", HEADER, replace_row(0, "2024-01-02,0,102,0,101,100.5,1000"), "line 2"),
    ("negative_price", HEADER, replace_row(4, "2024-01-08,-104,106,-105,105,104.5,1400"), "line 6"),
    ("negative_volume", HEADER, replace_row(2, "2024-01-04,102,104,101,103,102.5,-5"), "line 4"),
    ("high_below_low", HEADER, replace_row(1, "2024-01-03,101,99,103,102,101.5,1100"), "line 3"),
    ("close_above_high", HEADER, replace_row(3, "2024-01-05,103,105,102,109,103.5,1300"), "line 5"),
    ("duplicate_date", HEADER, replace_row(2, "2024-01-03,102,104,101,103,102.5,1200"), "line 4"),
    ("unsorted", HEADER, [GOOD_ROWS[0], GOOD_ROWS[2], GOOD_ROWS[1], *GOOD_ROWS[3:]], "line 4"),
    ("blank_line", HEADER, replace_row(2, ""), "line 4"),
]


@pytest.mark.parametrize(("name", "header", "rows", "where"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_price_file_names_file_and_line(tmp_path: Path, name: str, header: str | None, rows: list[str], where: str) -> None:
    path = write_csv(tmp_path / f"{name}.csv", header, rows)
    with pytest.raises(DataError) as info:
        load_prices_csv(path, "ACME")
    message = str(info.value)
    assert str(path) in message
    assert where in message


def test_missing_file_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(DataUnavailableError, match="not found"):
        load_prices_csv(tmp_path / "nope.csv", "ACME")


def test_fnspid_news_import_reads_times_and_bodies() -> None:
    imported = load_fnspid_news(FIXTURES / "fnspid_news.csv", {"ACME", "BOLT"})
    items = imported.items
    assert [n.ticker for n in items] == ["ACME", "ACME", "BOLT"]
    assert items[0].published_at == dt.datetime(2024, 1, 3, 14, 30, tzinfo=dt.timezone.utc)
    assert items[0].source == "Reuters" and items[0].url == "https://news.example/acme-order"
    # An empty Article falls back to the LSA summary.
    assert items[1].body.startswith("Acme's chief financial officer resigned")
    assert len({n.id for n in items}) == 3
    assert imported.skipped_total == 0


def test_fnspid_unknown_ticker_names_file_and_row() -> None:
    with pytest.raises(DataError) as info:
        load_fnspid_news(FIXTURES / "fnspid_news.csv", {"ACME"})
    assert "fnspid_news.csv: line 4" in str(info.value)
    assert "'BOLT'" in str(info.value)


def test_fnspid_ignore_unknown_tickers_counts_skipped_rows() -> None:
    imported = load_fnspid_news(FIXTURES / "fnspid_news.csv", {"ACME"}, ignore_unknown_tickers=True)
    assert len(imported.items) == 2
    assert imported.skipped_unknown == {"BOLT": 1}


def test_fnspid_bad_date_names_line(tmp_path: Path) -> None:
    path = tmp_path / "news.csv"
    path.write_text("Date,Article_title,Stock_symbol\n2024-01-03 10:00:00 UTC,ok,ACME\nyesterday,bad,ACME\n")
    with pytest.raises(DataError, match=r"news.csv: line 3: cannot read Date"):
        load_fnspid_news(path, {"ACME"})


def _csv_config(tmp_path: Path, **overrides: object) -> CsvConfig:
    prices = write_csv(tmp_path / "acme.csv", HEADER, GOOD_ROWS)
    return CsvConfig(prices=prices, ticker="ACME", **overrides)


def test_csv_market_news_after_close_is_visible_next_session(tmp_path: Path) -> None:
    data = load_market(_csv_config(tmp_path, news=FIXTURES / "fnspid_news.csv", ignore_unknown_tickers=True), tmp_path / "cache")
    day = data.index_of(dt.date(2024, 1, 3))
    # 14:30 UTC is 09:30 New York (usable that day); 22:15 UTC is 17:15, after the close.
    assert [n.url for n in data.view(day).news("ACME")] == ["https://news.example/acme-order"]
    assert len(data.view(day + 1).news("ACME")) == 2


def test_csv_skipped_rows_are_recorded_in_the_cache_manifest(tmp_path: Path) -> None:
    from env.sources import dataset_cache

    config = _csv_config(tmp_path, news=FIXTURES / "fnspid_news.csv", ignore_unknown_tickers=True)
    load_market(config, tmp_path / "cache")
    notes = dataset_cache(config, tmp_path / "cache").manifest()["notes"]
    assert notes["news_rows_skipped_unknown_ticker"] == {"BOLT": 1}


def test_csv_start_end_restrict_sessions(tmp_path: Path) -> None:
    data = load_market(_csv_config(tmp_path, start=dt.date(2024, 1, 3), end=dt.date(2024, 1, 5)), tmp_path / "cache")
    assert data.dates == (dt.date(2024, 1, 3), dt.date(2024, 1, 4), dt.date(2024, 1, 5))


@pytest.mark.parametrize(
    ("start", "end"), [(dt.date(2023, 6, 1), None), (None, dt.date(2024, 6, 1)), (dt.date(2025, 1, 1), None)]
)
def test_requested_range_outside_data_is_an_error(tmp_path: Path, start: dt.date | None, end: dt.date | None) -> None:
    with pytest.raises(DataError, match="outside the data"):
        load_market(_csv_config(tmp_path, start=start, end=end), tmp_path / "cache")


def test_changed_file_is_not_served_from_stale_cache(tmp_path: Path) -> None:
    config = _csv_config(tmp_path)
    first = load_market(config, tmp_path / "cache")
    write_csv(tmp_path / "acme.csv", HEADER, [*GOOD_ROWS, "2024-01-09,105,107,104,106,105.5,1500"])
    second = load_market(config, tmp_path / "cache")
    assert len(second) == len(first) + 1
