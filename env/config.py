"""Configuration owned by ``env``: where market data comes from, and how the broker executes.

Every model forbids unknown fields and describes every field; ``agents.config.ScenarioConfig``
composes these with the other packages' configs.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BrokerConfig(_Config):
    """How orders become fills. Hard limits here are enforced in code, whatever a model asks for."""

    initial_cash: float = Field(100_000.0, gt=0, description="Starting cash in account currency.")
    commission_bps: float = Field(10.0, ge=0, le=1_000, description="Commission per side, in basis points of traded notional.")
    commission_fixed: float = Field(0.0, ge=0, description="Fixed commission per fill, in account currency.")
    slippage_bps: float = Field(0.0, ge=0, le=1_000, description="Adverse price move applied to every fill, in basis points.")
    fill: Literal["next_open", "same_close"] = Field(
        "next_open",
        description="next_open: an order decided at the close of t fills at the open of t+1 (realistic). "
        "same_close: fills at the close of t (optimistic; for comparison only).",
    )
    fractional: bool = Field(False, description="Allow fractional shares; whole shares when false.")
    allow_short: bool = Field(False, description="Allow short positions (long-only when false).")
    borrow_bps_annual: float = Field(0.0, ge=0, description="Annual borrow cost of short positions, in bps of short notional, charged daily.")
    max_position_fraction: float = Field(
        1.0, gt=0, le=1.0, description="Largest absolute position in one ticker, as a fraction of equity valued at the fill price."
    )
    max_gross_exposure: float = Field(
        1.0, gt=0, le=2.0, description="Largest sum of absolute position values, as a fraction of equity."
    )
    max_daily_turnover: float | None = Field(
        None, gt=0, description="Largest traded notional per session as a fraction of equity; None means no limit."
    )
    cash_buffer: float = Field(
        1e-6, ge=0, lt=0.1, description="Fraction of equity kept back when sizing all-in orders, so rounding never breaks the cash limit."
    )


# ---------------------------------------------------------------------------------------------
# Data sources. ``DataConfig`` is a union discriminated on ``kind``; ``env.sources.load_market``
# takes any member and returns a validated ``MarketData``.
# ---------------------------------------------------------------------------------------------

_TICKER = r"^[A-Z0-9][A-Z0-9.\-^=]{0,14}$"


def _unique_tickers(tickers: list[str], field_name: str) -> list[str]:
    dup = sorted({t for t in tickers if tickers.count(t) > 1})
    if dup:
        raise ValueError(f"{field_name} lists {dup} more than once")
    return tickers


class RegimeParams(_Config):
    """Drift and volatility of one hidden market regime (annualised, log returns)."""

    drift_annual: float = Field(description="Annualised drift of log returns in this regime, e.g. 0.25 for +25 %/year.", ge=-3.0, le=3.0)
    vol_annual: float = Field(description="Annualised volatility of daily log returns in this regime, e.g. 0.2.", gt=0.0, le=3.0)


class SyntheticConfig(_Config):
    """A seeded, regime-switching market with news, filings and macro series from the same hidden state.

    The same config always yields byte-identical data. ``signal`` sets how much news sentiment
    predicts the next sessions' returns (0 = news is noise), so agents can be tested against a
    known ground truth.
    """

    kind: Literal["synthetic"] = Field("synthetic", description="Selects the synthetic market generator.")
    tickers: list[str] = Field(
        default_factory=lambda: ["ACME", "BOLT", "CRUX"],
        min_length=1,
        max_length=50,
        description="Ticker symbols to generate (upper case); each gets a fictional company name.",
    )
    start: dt.date = Field(dt.date(2023, 1, 2), description="First calendar day; sessions are weekdays from here on.")
    days: int = Field(250, ge=10, le=20_000, description="Number of trading sessions to generate.")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="Seed of every random draw; same seed, same data.")
    signal: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="How strongly a news item's true sentiment moves the next sessions' returns: "
        "0 = sentiment independent of future returns, 1 = full news_impact.",
    )
    news_per_day: float = Field(1.0, ge=0.0, le=50.0, description="Mean number of news items per ticker per calendar day.")
    news_impact: float = Field(
        0.03, ge=0.0, le=0.5, description="Total log-return drift a sentiment of +-1 adds over signal_horizon_days when signal = 1."
    )
    signal_horizon_days: int = Field(3, ge=1, le=5, description="Sessions over which a news item's drift is spread.")
    bull: RegimeParams = Field(RegimeParams(drift_annual=0.30, vol_annual=0.16), description="Bull regime parameters.")
    bear: RegimeParams = Field(RegimeParams(drift_annual=-0.35, vol_annual=0.32), description="Bear regime parameters.")
    sideways: RegimeParams = Field(RegimeParams(drift_annual=0.0, vol_annual=0.20), description="Sideways regime parameters.")
    transition: list[list[float]] = Field(
        default_factory=lambda: [[0.97, 0.01, 0.02], [0.02, 0.95, 0.03], [0.02, 0.015, 0.965]],
        description="Daily 3x3 Markov transition matrix over regimes in the order bull, bear, sideways; rows sum to 1.",
    )
    jump_intensity: float = Field(3.0, ge=0.0, le=100.0, description="Mean number of price jumps per ticker per year (Poisson).")
    jump_size: float = Field(0.05, ge=0.0, le=1.0, description="Standard deviation of a jump's log return.")
    market_correlation: float = Field(
        0.4, ge=0.0, le=0.95, description="Share of each ticker's daily noise variance that comes from a common market factor."
    )
    filings: bool = Field(True, description="Generate quarterly 10-Q/10-K filings and occasional 8-Ks.")
    eight_k_per_year: float = Field(3.0, ge=0.0, le=52.0, description="Mean number of 8-K filings per ticker per year.")
    macro: bool = Field(True, description="Generate macro series (CPI surprise, policy rate, a VIX-like index) with text.")

    @field_validator("tickers")
    @classmethod
    def _check_tickers(cls, tickers: list[str]) -> list[str]:
        for t in tickers:
            if not re.match(_TICKER, t):
                raise ValueError(f"ticker {t!r} must be upper case letters/digits (e.g. 'ACME')")
        return _unique_tickers(tickers, "tickers")

    @field_validator("transition")
    @classmethod
    def _check_transition(cls, matrix: list[list[float]]) -> list[list[float]]:
        if len(matrix) != 3 or any(len(row) != 3 for row in matrix):
            raise ValueError("transition must be a 3x3 matrix (rows and columns: bull, bear, sideways)")
        for name, row in zip(("bull", "bear", "sideways"), matrix, strict=True):
            if any(p < 0 for p in row) or abs(sum(row) - 1.0) > 1e-9:
                raise ValueError(f"transition row {name!r} must be non-negative and sum to 1, got {row}")
        return matrix


class EdgarConfig(_Config):
    """Which SEC filings to fetch with sec-edgar-downloader (or read from its folder in the cache)."""

    forms: list[Literal["10-K", "10-Q", "8-K"]] = Field(
        default_factory=lambda: ["10-K", "10-Q", "8-K"], min_length=1, description="Form types to load."
    )
    company: str = Field("tradegraph", min_length=1, description="Company name for the SEC User-Agent header (SEC requires one).")
    email: str = Field(
        "tradegraph@example.com",
        pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        description="Contact e-mail for the SEC User-Agent header; use your own for real downloads.",
    )
    limit: int | None = Field(8, ge=1, le=1000, description="Most recent filings per form and ticker; None fetches all.")
    after: dt.date | None = Field(None, description="Only filings filed on or after this date.")
    before: dt.date | None = Field(None, description="Only filings filed on or before this date.")


class YFinanceConfig(_Config):
    """Daily bars from Yahoo Finance via yfinance, cached as parquet so runs replay offline."""

    kind: Literal["yfinance"] = Field("yfinance", description="Selects the yfinance source.")
    tickers: list[str] = Field(min_length=1, max_length=200, description="Yahoo ticker symbols, e.g. ['AAPL', 'MSFT'].")
    start: dt.date = Field(description="First day to load (inclusive).")
    end: dt.date = Field(description="Last day to load (exclusive, as in yfinance).")
    macro_proxies: list[str] = Field(
        default_factory=lambda: ["^VIX", "^TNX", "DX-Y.NYB", "CL=F"],
        description="Yahoo symbols loaded as macro series (daily close, public at that session's close).",
    )
    edgar: EdgarConfig | None = Field(None, description="Also load SEC filings for the tickers; None skips EDGAR.")
    offline: bool = Field(False, description="Never touch the network: read only the cache (errors say what to fetch).")

    @field_validator("tickers", "macro_proxies")
    @classmethod
    def _check_unique(cls, tickers: list[str]) -> list[str]:
        return _unique_tickers(tickers, "tickers")

    @model_validator(mode="after")
    def _check_range(self) -> YFinanceConfig:
        if self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start}); yfinance's end is exclusive")
        return self


class CsvConfig(_Config):
    """Prices (and optionally FNSPID-layout news) from local CSV files."""

    kind: Literal["csv"] = Field("csv", description="Selects the CSV file source.")
    prices: dict[str, Path] | Path = Field(
        description="Either {ticker: path to OHLCV CSV} or one path (then set `ticker`). "
        "Columns: Date,Open,High,Low,Close,Volume (+ optional Adj Close)."
    )
    ticker: str | None = Field(None, description="Ticker of the single `prices` file; must be unset when `prices` is a mapping.")
    news: Path | None = Field(None, description="Optional news CSV in the FNSPID layout (Date, Article_title, Stock_symbol, ...).")
    ignore_unknown_tickers: bool = Field(
        False,
        description="Skip news rows whose Stock_symbol has no prices (counted and logged) instead of failing.",
    )
    start: dt.date | None = Field(None, description="Keep sessions on or after this date; must lie inside the data.")
    end: dt.date | None = Field(None, description="Keep sessions on or before this date; must lie inside the data.")

    @model_validator(mode="after")
    def _check_prices(self) -> CsvConfig:
        if isinstance(self.prices, dict):
            if self.ticker is not None:
                raise ValueError("`ticker` is only for a single `prices` path; with a mapping the keys are the tickers")
            if not self.prices:
                raise ValueError("`prices` mapping is empty; give at least one {ticker: path}")
        elif self.ticker is None:
            raise ValueError("`prices` is a single path, so `ticker` is required (e.g. ticker: AAPL)")
        if self.start and self.end and self.end < self.start:
            raise ValueError(f"end ({self.end}) is before start ({self.start})")
        return self

    def price_files(self) -> dict[str, Path]:
        """``{ticker: path}`` whichever form ``prices`` was given in."""
        if isinstance(self.prices, dict):
            return dict(self.prices)
        assert self.ticker is not None
        return {self.ticker: self.prices}


ArchTicker = Literal["SP500", "NASDAQ"]
ArchMacro = Literal["VIX", "WTI"]


class ArchConfig(_Config):
    """Real daily index prices that ship inside the ``arch`` package (NCSA licence), read with its loaders.

    S&P 500 and NASDAQ Composite OHLCV, 1999-01-04 .. 2018-12-31 (5,031 sessions); macro series:
    WTI crude (FRED DCOILWTICO, 1986 .. 2019) and VIX (2014-01-03 .. 2019 only). No news or filings.
    """

    kind: Literal["arch"] = Field("arch", description="Selects the arch package's bundled data.")
    tickers: list[ArchTicker] = Field(
        default_factory=lambda: ["SP500", "NASDAQ"], min_length=1, description="Indices to trade: SP500, NASDAQ."
    )
    macro: list[ArchMacro] = Field(
        default_factory=lambda: ["WTI", "VIX"],
        description="Macro series (daily close, public at that session's close): WTI, VIX (VIX starts in 2014).",
    )
    start: dt.date | None = Field(None, description="Keep sessions on or after this date (data: 1999-01-04 ..).")
    end: dt.date | None = Field(None, description="Keep sessions on or before this date (data: .. 2018-12-31).")

    @field_validator("tickers", "macro")
    @classmethod
    def _check_unique(cls, names: list[str]) -> list[str]:
        return _unique_tickers(names, "tickers")

    @model_validator(mode="after")
    def _check_range(self) -> ArchConfig:
        if self.start and self.end and self.end < self.start:
            raise ValueError(f"end ({self.end}) is before start ({self.start})")
        return self


DataConfig = Annotated[SyntheticConfig | YFinanceConfig | CsvConfig | ArchConfig, Field(discriminator="kind")]
"""Where market data comes from; pick a source with ``kind: synthetic | yfinance | csv | arch``."""
