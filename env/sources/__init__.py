"""Market data sources: synthetic (the embedded default), yfinance, SEC EDGAR, CSV files and the
real index data bundled in the ``arch`` package.

``load_market(config, cache_dir)`` is the one entry point: it returns a validated ``MarketData``
and stores what it built under ``cache_dir`` (keyed by a hash of the config) so the run can be
replayed offline. ``load_prices_csv`` reads a single OHLCV file for tools that only need prices.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from env.config import ArchConfig, CsvConfig, DataConfig, SyntheticConfig, YFinanceConfig
from env.errors import ConfigError
from env.market import MarketData
from env.sources.arch_source import load_arch
from env.sources.cache import DatasetCache, config_key, file_digest
from env.sources.csv_source import NewsImport, load_fnspid_news, load_prices_csv
from env.sources.synthetic import generate_market, poison_future
from env.sources.yfinance_source import check_range, load_yfinance

__all__ = [
    "DatasetCache",
    "NewsImport",
    "dataset_cache",
    "generate_market",
    "load_csv_market",
    "load_fnspid_news",
    "load_market",
    "load_prices_csv",
    "poison_future",
]

logger = logging.getLogger(__name__)


def dataset_cache(config: DataConfig, cache_dir: Path) -> DatasetCache:
    """The cache entry ``load_market`` uses for ``config`` (CSV entries also key on the files' bytes)."""
    salt: list[str] = []
    if isinstance(config, CsvConfig):
        paths = [*config.price_files().values(), *([config.news] if config.news else [])]
        salt = [file_digest(p) if p.is_file() else f"missing:{p}" for p in paths]
    return DatasetCache(Path(cache_dir), config.kind, config_key(config, *salt))


def load_csv_market(config: CsvConfig) -> tuple[MarketData, dict[str, object]]:
    """Prices (and FNSPID news) from CSV files, restricted to ``[start, end]``; returns data and load notes."""
    bars = {}
    for ticker, path in config.price_files().items():
        frame = load_prices_csv(path, ticker)
        check_range(frame.index, config.start, config.end, origin=str(path), what=ticker)
        lo = frame.index.searchsorted(pd.Timestamp(config.start)) if config.start else 0
        hi = frame.index.searchsorted(pd.Timestamp(config.end), side="right") if config.end else len(frame)
        bars[ticker] = frame.iloc[lo:hi]
    notes: dict[str, object] = {}
    news: tuple = ()
    if config.news is not None:
        imported = load_fnspid_news(config.news, bars, ignore_unknown_tickers=config.ignore_unknown_tickers)
        news = imported.items
        notes["news_rows_skipped_unknown_ticker"] = imported.skipped_unknown
    origin = ", ".join(str(p) for p in config.price_files().values())
    return MarketData(bars, news=news, origin=f"csv: {origin}"), notes


def load_market(config: DataConfig, cache_dir: Path) -> MarketData:
    """Load (or replay from ``cache_dir``) the market described by ``config``.

    ``synthetic`` generates the embedded market; ``yfinance`` reads its per-symbol cache or
    downloads; ``csv`` reads local files. The assembled dataset is stored under
    ``cache_dir/datasets/<kind>-<hash>/`` and reused by later calls with the same config (and,
    for CSV, the same file contents). Raises ``DataError`` / ``DataUnavailableError`` with the
    file, row or command to fix.
    """
    cache = dataset_cache(config, cache_dir)
    if cache.exists():
        return cache.load()
    notes: dict[str, object] = {}
    if isinstance(config, SyntheticConfig):
        data = generate_market(config)
    elif isinstance(config, YFinanceConfig):
        data = load_yfinance(config, Path(cache_dir))
    elif isinstance(config, CsvConfig):
        data, notes = load_csv_market(config)
    elif isinstance(config, ArchConfig):
        data = load_arch(config)
    else:
        raise ConfigError(
            f"data.kind: unknown source config {type(config).__name__}; use synthetic, yfinance, csv or arch"
        )
    cache.save(data, config, notes)
    if notes.get("news_rows_skipped_unknown_ticker"):
        logger.warning("recorded in %s: %s", cache.manifest_path, notes)
    return data
