"""Anonymized prompts: a memorization probe and a contamination control.

With ``anonymize.enabled`` every prompt an agent sends (system and user text, after rendering, so
news, filings, memories, lessons and indicators alike) has its tickers, company and people names
and dates replaced by consistent aliases: ``ACME`` -> ``ASSET_A``, ``Acme Corp`` -> ``Company A``,
its CEO -> ``Person A1``, and every date moved by the same whole number of weeks into the 2200s
(weekdays and gaps are kept, the calendar is one no model has seen). A model that trades better
on real names than on aliases is recalling what happened, not reading the data:
``benchmarks/bench_memorization.py`` runs a scenario both ways and reports the gap.

Only dates within the data's span (padded a few years each way) move, so text that is already
anonymized (a lesson the model wrote from an aliased prompt) is left as it is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, timedelta

from pydantic import BaseModel, ConfigDict, Field

from env.market import MarketData

ALIAS_YEAR = 2200  # the anonymized calendar starts in this year
_PAD_YEARS = 5
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
_MONTH_RE = "|".join(f"{m[:3]}(?:{m[3:]})?" for m in _MONTHS)
_ISO = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")
_LONG = re.compile(rf"\b({_MONTH_RE})\.? (\d{{1,2}}), (\d{{4}})(?!\d)")
_YEAR = re.compile(r"(?<![\d.,])(\d{4})(?!\d|[.,]\d)")


class AnonymizeConfig(BaseModel):
    """Replace tickers, names and dates in everything agents read (see agents/anonymize.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(default=False, description="Turn the anonymization of prompts on.")
    names: dict[str, tuple[str, ...]] = Field(
        default_factory=dict,
        description="Extra names per ticker to alias, e.g. {SP500: ['S&P 500', \"Standard & Poor's\"]}; the synthetic "
        "source's company, short name and CEO are added automatically.",
    )


def _letter(i: int) -> str:
    letters = ""
    i += 1
    while i:
        i, rem = divmod(i - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


class Anonymizer:
    """A pure text transform with fixed aliases; ``anonymizer(text)`` returns the aliased text."""

    def __init__(self, aliases: Mapping[str, str], first: date, last: date) -> None:
        self.aliases = dict(aliases)
        weeks = (date(ALIAS_YEAR, 1, 1) - first).days // 7 + 1
        self.shift = timedelta(weeks=weeks)
        self.year_shift = (first + self.shift).year - first.year
        self.low, self.high = first.year - _PAD_YEARS, last.year + _PAD_YEARS
        # Longest first, so "Acme Corp" is replaced before "Acme"; whole words only.
        names = sorted(self.aliases, key=len, reverse=True)
        self._names = re.compile("|".join(rf"(?<![\w$]){re.escape(n)}(?!\w)" for n in names)) if names else None
        self._dollar = re.compile(r"\$(" + "|".join(re.escape(n) for n in names) + r")(?!\w)") if names else None

    @classmethod
    def for_tickers(
        cls, tickers: Sequence[str], names: Mapping[str, Sequence[str]], first: date, last: date,
        people: Mapping[str, Sequence[str]] | None = None,
    ) -> Anonymizer:
        """Aliases ``ASSET_A``, ``Company A`` and ``Person A1`` for the i-th ticker, its names and its people."""
        aliases: dict[str, str] = {}
        for i, ticker in enumerate(tickers):
            letter = _letter(i)
            aliases[ticker] = f"ASSET_{letter}"
            for name in names.get(ticker, ()):
                aliases.setdefault(name, f"Company {letter}")
            for j, person in enumerate((people or {}).get(ticker, ()), start=1):
                aliases.setdefault(person, f"Person {letter}{j}")
        return cls(aliases, first, last)

    def _in_span(self, year: int) -> bool:
        return self.low <= year <= self.high

    def _iso(self, match: re.Match[str]) -> str:
        year, month, day = (int(g) for g in match.groups())
        if not self._in_span(year):
            return match.group(0)
        try:
            return (date(year, month, day) + self.shift).isoformat()
        except ValueError:  # not a calendar date (a version number, an id)
            return match.group(0)

    def _long(self, match: re.Match[str]) -> str:
        month_text, day, year = match.group(1), int(match.group(2)), int(match.group(3))
        if not self._in_span(year):
            return match.group(0)
        month = next(i for i, m in enumerate(_MONTHS, start=1) if m.startswith(month_text[:3]))
        try:
            moved = date(year, month, day) + self.shift
        except ValueError:
            return match.group(0)
        return f"{_MONTHS[moved.month - 1]} {moved.day:02d}, {moved.year}"

    def _year(self, match: re.Match[str]) -> str:
        year = int(match.group(1))
        return str(year + self.year_shift) if self._in_span(year) else match.group(0)

    def __call__(self, text: str) -> str:
        text = _ISO.sub(self._iso, text)
        text = _LONG.sub(self._long, text)
        text = _YEAR.sub(self._year, text)
        if self._names is not None and self._dollar is not None:
            text = self._dollar.sub(lambda m: "$" + self.aliases[m.group(1)], text)
            text = self._names.sub(lambda m: self.aliases[m.group(0)], text)
        return text


def make_anonymizer(config: AnonymizeConfig, data_kind: str, data: MarketData) -> Anonymizer | None:
    """The anonymizer of a run over ``data``, or None when ``config.enabled`` is off.

    The synthetic source's companies are known (``env.sources.newswriter.company_for``), so their
    names, short names and CEOs are aliased without being listed; other sources alias the tickers,
    the names listed in ``config.names`` and the dates.
    """
    if not config.enabled:
        return None
    names: dict[str, list[str]] = {ticker: list(config.names.get(ticker, ())) for ticker in data.tickers}
    people: dict[str, list[str]] = {}
    if data_kind == "synthetic":
        from env.sources.newswriter import company_for

        for ticker in data.tickers:
            company = company_for(ticker)
            names[ticker] += [company.name, company.short]
            people[ticker] = [company.ceo]
    return Anonymizer.for_tickers(data.tickers, names, data.dates[0], data.dates[-1], people=people)
