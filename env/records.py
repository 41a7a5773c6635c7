"""Typed market records. Every text record carries the moment it became public.

Point-in-time rule used everywhere: a decision for session ``t`` is taken at the
close of ``t`` (16:00 New York). A text item is usable for that decision iff its
``public_at`` is at or before that close, so news published after the close is
first usable in the next session.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator

NEW_YORK = ZoneInfo("America/New_York")
MARKET_CLOSE = dt.time(16, 0)
MARKET_OPEN = dt.time(9, 30)


def session_close(day: dt.date) -> dt.datetime:
    """The decision time of session ``day``: its 16:00 New York close, as an aware UTC datetime."""
    return dt.datetime.combine(day, MARKET_CLOSE, tzinfo=NEW_YORK).astimezone(dt.timezone.utc)


def session_open(day: dt.date) -> dt.datetime:
    """09:30 New York on ``day``, as an aware UTC datetime."""
    return dt.datetime.combine(day, MARKET_OPEN, tzinfo=NEW_YORK).astimezone(dt.timezone.utc)


def _aware_utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware (got a naive datetime); attach the source's timezone")
    return value.astimezone(dt.timezone.utc)


class SourceType(StrEnum):
    """Kinds of text the analysts read; also the key for memory-layer routing."""

    NEWS = "news"
    FILING_10K = "10-K"
    FILING_10Q = "10-Q"
    FILING_8K = "8-K"
    MACRO = "macro"
    TECHNICAL = "technical"
    REFLECTION = "reflection"


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Bar(_Record):
    """One daily OHLCV bar."""

    ticker: str
    date: dt.date
    open: float = Field(gt=0)
    high: float = Field(gt=0)
    low: float = Field(gt=0)
    close: float = Field(gt=0)
    volume: float = Field(ge=0)


class NewsItem(_Record):
    """A news article. ``public_at`` is when it was published (aware, stored as UTC)."""

    id: str = Field(description="Deterministic id, unique across the dataset.")
    ticker: str
    published_at: dt.datetime
    headline: str = Field(min_length=1)
    body: str = ""
    source: str = ""
    url: str = ""

    _utc = field_validator("published_at")(_aware_utc)

    @property
    def public_at(self) -> dt.datetime:
        return self.published_at

    @property
    def source_type(self) -> SourceType:
        return SourceType.NEWS


class Filing(_Record):
    """An SEC filing (10-K, 10-Q, 8-K) split into named sections (risk factors, MD&A, ...)."""

    id: str
    ticker: str
    form: str = Field(description="10-K, 10-Q or 8-K")
    filed_at: dt.datetime
    period: dt.date | None = None
    sections: dict[str, str] = Field(default_factory=dict)
    url: str = ""

    _utc = field_validator("filed_at")(_aware_utc)

    @property
    def public_at(self) -> dt.datetime:
        return self.filed_at

    @property
    def source_type(self) -> SourceType:
        try:
            return SourceType(self.form.upper())
        except ValueError:
            return SourceType.FILING_8K

    @property
    def text(self) -> str:
        return "\n\n".join(f"{name}:\n{body}" for name, body in self.sections.items())


class MacroObservation(_Record):
    """One observation of a macro series (e.g. CPI surprise, VIX close), public at ``released_at``."""

    id: str
    series: str
    date: dt.date = Field(description="The period the value refers to.")
    released_at: dt.datetime
    value: float
    text: str = ""

    _utc = field_validator("released_at")(_aware_utc)

    @property
    def public_at(self) -> dt.datetime:
        return self.released_at

    @property
    def source_type(self) -> SourceType:
        return SourceType.MACRO


TextRecord = NewsItem | Filing | MacroObservation
