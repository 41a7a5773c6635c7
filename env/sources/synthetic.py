"""The embedded default market: seeded, regime-switching prices with news, filings and macro data.

One hidden state drives everything. Per ticker, a Markov chain over bull / bear / sideways
regimes sets drift and volatility; a common market factor correlates tickers; Poisson jumps add
gaps. News items carry a true sentiment ``s`` in [-1, 1]; with ``signal = k`` an item visible at
the close of session ``i`` adds a drift ``k * news_impact * s`` spread over the intraday returns
of sessions ``i+1 .. i+H`` (so it is tradeable with next-open fills). With ``k = 0`` sentiment is
drawn independently of every future return. Quarterly 10-Q/10-K filings and 8-Ks report numbers
derived from the regimes; macro series (a volatility index, CPI surprises, a policy rate) come
from the same simulated returns.

Every random draw comes from a ``numpy`` generator seeded by ``(seed, purpose, ticker)``, so the
same config gives byte-identical data, and changing e.g. ``signal`` leaves the noise unchanged.
The ground truth (regimes, each item's sentiment) goes to ``MarketData.truth`` only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from env.config import SyntheticConfig
from env.errors import DataError
from env.market import BAR_FIELDS, GroundTruth, MarketData
from env.records import NEW_YORK, Filing, MacroObservation, NewsItem, session_close
from env.sources.newswriter import (
    RANDOM_EVENTS,
    Company,
    Event,
    company_for,
    render_mda,
    render_news,
    render_risk_factors,
    slug,
)

REGIMES = ("bull", "bear", "sideways")
_REGIME_SIGN = np.array([1.0, -1.0, 0.0])
_PURPOSES = {"regime": 1, "market": 2, "noise": 3, "jump": 4, "news": 5, "text": 6, "fundamentals": 7, "macro": 8, "volume": 9, "poison": 10}
_HOLIDAYS = {(1, 1), (7, 4), (12, 25)}
# Share of the daily variance realised overnight (open gap) rather than between open and close.
_OVERNIGHT_VAR = 0.3
# Intraday publication-time buckets in New York hours, with their probabilities: pre-market,
# market hours, after the close, night. After-close items are first usable next session.
_HOUR_BUCKETS = ((6.0, 9.5, 0.22), (9.5, 16.0, 0.45), (16.0, 20.0, 0.23), (20.0, 24.0, 0.05), (0.0, 6.0, 0.05))
_NS_PER_DAY = 86_400 * 10**9


def _rng(seed: int, purpose: str, index: int = 0) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(_PURPOSES[purpose], index)))


def trading_calendar(start: dt.date, days: int) -> pd.DatetimeIndex:
    """``days`` weekday sessions from ``start`` on, skipping New Year's Day, July 4th and Christmas."""
    span = pd.date_range(start, periods=int(days * 1.5) + 20, freq="B")
    keep = [d for d in span if (d.month, d.day) not in _HOLIDAYS]
    return pd.DatetimeIndex(keep[:days], name="date")


def _regime_path(rng: np.random.Generator, transition: np.ndarray, n: int) -> np.ndarray:
    cum = np.cumsum(transition, axis=1)
    u = rng.random(n)
    states = np.empty(n, dtype=np.int8)
    state = int(np.searchsorted([0.4, 0.6, 1.0], u[0], side="right"))
    for t in range(n):
        if t:
            state = min(int(np.searchsorted(cum[state], u[t], side="right")), 2)
        states[t] = state
    return states


@dataclass
class _Item:
    """A news event before its text is written."""

    ticker_idx: int
    public_at: pd.Timestamp
    event: Event
    sentiment: float
    session: int  # first session whose close is at or after public_at; n if never visible
    earnings: dict[str, float] | None = None


@dataclass
class _Quarter:
    """One fiscal quarter's reported numbers for one ticker."""

    end: dt.date
    filed_at: pd.Timestamp
    form: str
    regime: int
    growth: float
    revenue_m: float
    revenue_prev_m: float
    eps: float
    eps_prev: float
    beat: int
    strength: float


def _utc_ns(ts: pd.Timestamp) -> int:
    return int(ts.value)


class _Builder:
    """Generates one synthetic market; every step is a method so the order of draws is explicit."""

    def __init__(self, config: SyntheticConfig) -> None:
        self.cfg = config
        self.calendar = trading_calendar(config.start, config.days)
        self.n = len(self.calendar)
        self.dates = [d.date() for d in self.calendar]
        self.close_ns = np.array([_utc_ns(pd.Timestamp(session_close(d))) for d in self.dates], dtype=np.int64)
        self.companies = [company_for(t) for t in config.tickers]
        params = (config.bull, config.bear, config.sideways)
        self.mu = np.array([p.drift_annual for p in params]) / 252.0
        self.sigma = np.array([p.vol_annual for p in params]) / np.sqrt(252.0)

    # -- hidden state ----------------------------------------------------------------------
    def regimes(self) -> list[np.ndarray]:
        transition = np.asarray(self.cfg.transition, dtype=float)
        return [_regime_path(_rng(self.cfg.seed, "regime", k), transition, self.n) for k in range(len(self.companies))]

    def _session_of(self, stamps_ns: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.close_ns, stamps_ns, side="left")

    def _tilted_sign(self, rng: np.random.Generator, regime: int, neutral: float) -> int:
        # News tone leans with the regime only in proportion to `signal`, so signal=0 keeps
        # sentiment independent of every future return (regimes persist and carry drift).
        tilt = 0.15 * self.cfg.signal * _REGIME_SIGN[regime]
        p_pos = (1 - neutral) / 2 + tilt
        u = rng.random()
        if u < p_pos:
            return 1
        if u < 1 - neutral:
            return -1
        return 0

    def quarters(self, k: int, regimes: np.ndarray) -> list[_Quarter]:
        rng = _rng(self.cfg.seed, "fundamentals", k)
        first, last = self.dates[0], self.dates[-1]
        revenue = float(rng.uniform(300, 6000))
        eps = float(rng.uniform(0.3, 2.5))
        out: list[_Quarter] = []
        q_end = (pd.Timestamp(first) - pd.DateOffset(months=4)).to_period("Q").end_time.date()
        while True:
            form = "10-K" if q_end.month == 12 else "10-Q"
            lag = 55 if form == "10-K" else 35
            day = q_end + dt.timedelta(days=lag + int(rng.integers(0, 6)))
            while day.weekday() >= 5:
                day += dt.timedelta(days=1)
            if day > last:
                break
            regime_pos = int(np.searchsorted(self.calendar, pd.Timestamp(q_end), side="right")) - 1
            regime = int(regimes[max(regime_pos, 0)])
            growth = (0.09, -0.07, 0.02)[regime] + float(rng.normal(0, 0.03))
            # Release either after the close (16:05-17:30) or before the open (06:30-08:00), New York.
            minutes = int(rng.integers(16 * 60 + 5, 17 * 60 + 30)) if rng.random() < 0.7 else int(rng.integers(390, 480))
            filed = pd.Timestamp(dt.datetime.combine(day, dt.time(minutes // 60, minutes % 60), tzinfo=NEW_YORK)).tz_convert("UTC")
            prev_rev, prev_eps = revenue, eps
            revenue = prev_rev * (1 + growth / 4 + float(rng.normal(0, 0.01)))
            eps = max(0.05, prev_eps * (1 + growth / 2 + float(rng.normal(0, 0.03))))
            beat = self._tilted_sign(rng, regime, neutral=0.0)
            if day >= first - dt.timedelta(days=120):
                out.append(
                    _Quarter(
                        end=q_end, filed_at=filed, form=form, regime=regime, growth=growth, revenue_m=revenue,
                        revenue_prev_m=prev_rev * (1 - growth / 4 * 3), eps=eps, eps_prev=prev_eps * (1 - growth / 2),
                        beat=beat, strength=float(rng.uniform(0.3, 1.0)),
                    )
                )
            q_end = (pd.Timestamp(q_end) + pd.DateOffset(days=1)).to_period("Q").end_time.date()
        return out

    def news_events(self, k: int, regimes: np.ndarray, quarters: Sequence[_Quarter]) -> list[_Item]:
        rng = _rng(self.cfg.seed, "news", k)
        day0 = np.datetime64(self.dates[0], "D")
        n_days = int((np.datetime64(self.dates[-1], "D") - day0).astype(int)) + 1
        counts = rng.poisson(self.cfg.news_per_day, size=n_days)
        total = int(counts.sum())
        days = day0 + np.repeat(np.arange(n_days), counts).astype("timedelta64[D]")
        # All draws for all items at once, in a fixed order (bucket, minute, tone, event, strength).
        bucket_p = np.array([b[2] for b in _HOUR_BUCKETS])
        bucket = np.minimum(np.searchsorted(np.cumsum(bucket_p / bucket_p.sum()), rng.random(total), side="right"), len(_HOUR_BUCKETS) - 1)
        lo = np.array([b[0] for b in _HOUR_BUCKETS])[bucket] * 60
        hi = np.array([b[1] for b in _HOUR_BUCKETS])[bucket] * 60
        minutes = np.floor(lo + (hi - lo) * rng.random(total)).astype(np.int64)
        tone_u, event_u, strength_u = rng.random(total), rng.random(total), rng.random(total)
        local = pd.DatetimeIndex(days.astype("datetime64[ns]") + minutes.astype("timedelta64[m]"))
        public = local.tz_localize(NEW_YORK, ambiguous=np.zeros(total, dtype=bool), nonexistent="shift_forward").tz_convert("UTC")
        # Tone leans with the regime of the last session on or before the publication day.
        regime_pos = np.searchsorted(self.calendar.values.astype("datetime64[D]"), days, side="right") - 1
        regime = regimes[np.maximum(regime_pos, 0)]
        tilt = 0.15 * self.cfg.signal * _REGIME_SIGN[regime]
        neutral = 0.25
        p_pos = (1 - neutral) / 2 + tilt
        sign = np.where(tone_u < p_pos, 1, np.where(tone_u < 1 - neutral, -1, 0))
        strength = np.where(sign != 0, 0.3 + 0.7 * strength_u, 0.0)
        items: list[_Item] = []
        for j in range(total):
            options = RANDOM_EVENTS[int(sign[j])]
            event = options[min(int(event_u[j] * len(options)), len(options) - 1)]
            items.append(_Item(k, public[j], event, float(sign[j] * strength[j]), 0))
        for q in quarters:
            event = Event.EARNINGS_BEAT if q.beat > 0 else Event.EARNINGS_MISS
            earnings = {"eps": q.eps, "revenue_bn": q.revenue_m / 1000, "year": q.end.year, "quarter": (q.end.month - 1) // 3 + 1}
            items.append(_Item(k, q.filed_at, event, q.beat * q.strength, 0, earnings))
        items.sort(key=lambda it: (it.public_at.value, it.event.value))
        sessions = self._session_of(np.array([it.public_at.value for it in items], dtype=np.int64))
        for it, s in zip(items, sessions, strict=True):
            it.session = int(s)
        return items

    # -- prices ----------------------------------------------------------------------------
    def prices(self, regimes: list[np.ndarray], events: list[list[_Item]]) -> dict[str, pd.DataFrame]:
        cfg, n = self.cfg, self.n
        m_rng = _rng(cfg.seed, "market")
        market_ov, market_in = m_rng.standard_normal(n), m_rng.standard_normal(n)
        rho = cfg.market_correlation
        horizon = cfg.signal_horizon_days
        frames = {}
        for k, company in enumerate(self.companies):
            noise = _rng(cfg.seed, "noise", k)
            jump_rng = _rng(cfg.seed, "jump", k)
            vol_rng = _rng(cfg.seed, "volume", k)
            reg = regimes[k]
            mu, sigma = self.mu[reg], self.sigma[reg]
            z_ov = np.sqrt(rho) * market_ov + np.sqrt(1 - rho) * noise.standard_normal(n)
            z_in = np.sqrt(rho) * market_in + np.sqrt(1 - rho) * noise.standard_normal(n)
            jumps = (jump_rng.random(n) < cfg.jump_intensity / 252.0) * jump_rng.normal(0.0, max(cfg.jump_size, 1e-12), n)
            drift = np.zeros(n)
            news_count = np.zeros(n)
            for it in events[k]:
                if it.session < n:
                    news_count[it.session] += 1
                    lo, hi = it.session + 1, min(it.session + 1 + horizon, n)
                    drift[lo:hi] += cfg.signal * cfg.news_impact * it.sentiment / horizon
            gap = sigma * np.sqrt(_OVERNIGHT_VAR) * z_ov + jumps
            intraday = (mu - 0.5 * sigma**2) + sigma * np.sqrt(1 - _OVERNIGHT_VAR) * z_in + drift
            p0 = float(noise.uniform(20, 300))
            log_open = np.log(p0) + np.cumsum(gap + np.concatenate(([0.0], intraday[:-1])))
            opens = np.exp(log_open)
            closes = opens * np.exp(intraday)
            wick_hi = np.abs(noise.normal(0.0, 0.5, n)) * sigma
            wick_lo = np.abs(noise.normal(0.0, 0.5, n)) * sigma
            highs = np.maximum(opens, closes) * np.exp(wick_hi)
            lows = np.minimum(opens, closes) * np.exp(-wick_lo)
            base_volume = float(vol_rng.uniform(5e5, 2e7))
            volume = base_volume * np.exp(0.3 * vol_rng.standard_normal(n)) * (1 + 8 * np.abs(gap + intraday)) * (1 + 0.3 * news_count)
            # Rounding is monotone, so high >= max(open, close) >= min >= low survives it; the floor keeps prices positive.
            cols = {name: np.maximum(np.round(v, 4), 1e-4) for name, v in zip(("open", "high", "low", "close"), (opens, highs, lows, closes), strict=True)}
            cols["volume"] = np.round(volume)
            frames[company.ticker] = pd.DataFrame(cols, index=self.calendar)[list(BAR_FIELDS)]
        return frames

    # -- text ------------------------------------------------------------------------------
    def news(self, k: int, items: list[_Item], closes: np.ndarray) -> tuple[list[NewsItem], dict[str, float], dict[str, str]]:
        rng = _rng(self.cfg.seed, "text", k)
        company = self.companies[k]
        out, truth, events = [], {}, {}
        for j, it in enumerate(items):
            news = _write_news(rng, company, it, closes, self.close_ns, f"syn-{company.ticker}-n{j:05d}")
            out.append(news)
            truth[news.id] = round(it.sentiment, 6)
            events[news.id] = it.event.value
        return out, truth, events

    def filings(self, k: int, quarters: list[_Quarter], items: list[_Item]) -> tuple[list[Filing], dict[str, float]]:
        rng = _rng(self.cfg.seed, "text", 1000 + k)
        company = self.companies[k]
        out: list[Filing] = []
        truth: dict[str, float] = {}
        for j, q in enumerate(quarters):
            period_word = "fiscal year" if q.form == "10-K" else "three months"
            sign = 1 if q.growth >= 0 else -1
            margin = float(rng.uniform(25, 60))
            numbers = {
                "period_word": f"{period_word} ended {q.end:%B %d, %Y}",
                "period_end": f"{q.end:%B %d, %Y}",
                "rev": q.revenue_m * (4 if q.form == "10-K" else 1),
                "rev_prev": q.revenue_prev_m * (4 if q.form == "10-K" else 1),
                "growth_abs": abs(q.growth) * 100,
                "dir_word": "an increase of" if sign > 0 else "a decrease of",
                "dir_verb": "increased" if sign > 0 else "decreased",
                "margin": margin,
                "margin_prev": margin - sign * float(rng.uniform(0.3, 3.0)),
                "op_inc": q.revenue_m * margin / 300,
                "op_margin": margin / 3,
                "op_margin_prev": (margin - sign * 2) / 3,
                "eps": q.eps,
                "eps_prev": q.eps_prev,
                "net_inc": q.revenue_m * margin / 500,
                "cash": q.revenue_m * float(rng.uniform(0.3, 1.5)),
                "debt": q.revenue_m * float(rng.uniform(0.2, 2.0)),
                "ocf": q.revenue_m * float(rng.uniform(0.08, 0.25)),
            }
            mda = render_mda(rng, sign, numbers)
            risk = render_risk_factors(rng, company, REGIMES[q.regime])
            if q.form == "10-K":
                sections = {
                    "Item 1. Business": f"{company.name} is a {company.sector} company headquartered in the United States. {company.ceo} is our Chief Executive Officer.",
                    "Item 1A. Risk Factors": risk,
                    "Item 7. Management's Discussion and Analysis of Financial Condition and Results of Operations": mda,
                }
            else:
                sections = {
                    "Part I, Item 2. Management's Discussion and Analysis of Financial Condition and Results of Operations": mda,
                    "Part II, Item 1A. Risk Factors": risk,
                }
            fid = f"syn-{company.ticker}-{q.form}-{q.end:%Y%m%d}"
            out.append(_filing(fid, company, q.form, q.filed_at, q.end, sections))
            truth[fid] = round(float(np.clip(q.growth / 0.1, -1, 1)), 6)
            # The earnings release is furnished on an 8-K (Item 2.02) at the same moment.
            press = (
                f"On {q.filed_at.tz_convert(NEW_YORK):%B %d, %Y}, {company.name} issued a press release announcing its "
                f"financial results for the quarter ended {q.end:%B %d, %Y}: revenue of ${q.revenue_m:.1f} million and "
                f"diluted EPS of ${q.eps:.2f}. A copy of the press release is furnished as Exhibit 99.1."
            )
            eid = f"syn-{company.ticker}-8-K-{q.end:%Y%m%d}-earnings"
            out.append(_filing(eid, company, "8-K", q.filed_at, q.end, {"Item 2.02. Results of Operations and Financial Condition": press}))
            truth[eid] = round(q.beat * q.strength, 6)
        event_items = {
            Event.CEO_EXIT: "Item 5.02. Departure of Directors or Certain Officers; Election of Directors; Appointment of Certain Officers",
            Event.CEO_SUCCESSION: "Item 5.02. Departure of Directors or Certain Officers; Election of Directors; Appointment of Certain Officers",
            Event.ACQUISITION_TARGET: "Item 1.01. Entry into a Material Definitive Agreement",
            Event.BUYBACK: "Item 8.01. Other Events",
        }
        count = 0
        for it in items:
            if it.event not in event_items:
                continue
            # Material events are filed on an 8-K after the news breaks, at most once per event.
            if rng.random() > self.cfg.eight_k_per_year / 12.0:
                continue
            filed = it.public_at + pd.Timedelta(minutes=int(rng.integers(30, 240)))
            sid = f"syn-{company.ticker}-8-K-{filed:%Y%m%d%H%M}-{count:03d}"
            count += 1
            body = (
                f"{company.name} (the \"Company\") reports the following event ({it.event.value.replace('_', ' ')}). "
                f"{_EVENT_8K_TEXT[it.event].format(company=company.name, ceo=company.ceo)}"
            )
            out.append(_filing(sid, company, "8-K", filed, None, {event_items[it.event]: body}))
            truth[sid] = round(it.sentiment, 6)
        return out, truth

    def macro(self, frames: dict[str, pd.DataFrame], regimes: list[np.ndarray]) -> list[MacroObservation]:
        rng = _rng(self.cfg.seed, "macro")
        closes = np.stack([f["close"].to_numpy() for f in frames.values()])
        market = np.concatenate(([0.0], np.diff(np.log(closes), axis=1).mean(axis=0)))
        bear_share = np.mean([r == 1 for r in regimes], axis=0)
        out: list[MacroObservation] = []
        var = market[:20].var() if self.n > 1 else 1e-4
        level_prev = None
        for t, day in enumerate(self.dates):
            var = 0.94 * var + 0.06 * market[t] ** 2
            level = 10 + 100 * np.sqrt(var * 252) * 0.9 + 6 * bear_share[t] + float(rng.normal(0, 0.4))
            level = round(max(level, 9.0), 2)
            change = "" if level_prev is None else f", {'up' if level >= level_prev else 'down'} {abs(level - level_prev):.2f} points"
            out.append(
                MacroObservation(
                    id=f"syn-macro-VOL_INDEX-{day:%Y%m%d}", series="VOL_INDEX", date=day,
                    released_at=session_close(day), value=level,
                    text=f"The market volatility index closed at {level:.2f}{change}.",
                )
            )
            level_prev = level
        rate = 4.5
        pending = 0.0
        month = pd.Timestamp(self.dates[0]).to_period("M") - 1
        while True:
            release = (month + 1).to_timestamp() + pd.Timedelta(days=11)
            while release.weekday() >= 5:
                release += pd.Timedelta(days=1)
            if release.date() > self.dates[-1]:
                break
            expected = round(float(rng.normal(0.25, 0.08)), 1)
            surprise = round(float(rng.normal(0, 0.12)) + 0.05 * (bear_share[min(int(np.searchsorted(self.calendar, release)), self.n - 1)] - 0.3), 1)
            actual = round(expected + surprise, 1)
            pending += surprise
            stamp = dt.datetime.combine(release.date(), dt.time(8, 30), tzinfo=NEW_YORK)
            word = "above" if surprise > 0 else "below" if surprise < 0 else "in line with"
            out.append(
                MacroObservation(
                    id=f"syn-macro-CPI_SURPRISE-{month:%Y%m}", series="CPI_SURPRISE", date=month.end_time.date(),
                    released_at=stamp, value=surprise,
                    text=f"US consumer prices rose {actual:.1f}% in {month:%B} from the prior month, {word} the "
                    f"{expected:.1f}% economists had expected (surprise {surprise:+.1f} pp).",
                )
            )
            # The central bank meets a week after every other CPI print and reacts to accumulated surprises.
            if month.month % 2 == 0:
                meeting = release + pd.Timedelta(days=7)
                if meeting.date() <= self.dates[-1]:
                    move = 0.25 if pending > 0.15 else -0.25 if pending < -0.15 else 0.0
                    rate = round(rate + move, 2)
                    pending = 0.0
                    verb = "raised" if move > 0 else "cut" if move < 0 else "held"
                    detail = f" by 25 basis points to {rate:.2f}%" if move else f" steady at {rate:.2f}%"
                    reason = "citing persistent inflation" if move > 0 else "citing cooling inflation" if move < 0 else "saying it would stay data-dependent"
                    out.append(
                        MacroObservation(
                            id=f"syn-macro-POLICY_RATE-{meeting:%Y%m%d}", series="POLICY_RATE", date=meeting.date(),
                            released_at=dt.datetime.combine(meeting.date(), dt.time(14, 0), tzinfo=NEW_YORK),
                            value=rate, text=f"The central bank {verb} its policy rate{detail}, {reason}.",
                        )
                    )
            month += 1
        return out

    def build(self) -> MarketData:
        regimes = self.regimes()
        quarters = [self.quarters(k, r) for k, r in enumerate(regimes)]
        events = [self.news_events(k, r, quarters[k]) for k, r in enumerate(regimes)]
        frames = self.prices(regimes, events)
        news: list[NewsItem] = []
        filings: list[Filing] = []
        sentiment: dict[str, float] = {}
        event_of: dict[str, str] = {}
        sessions: dict[str, int] = {}
        for k, company in enumerate(self.companies):
            items, truth, kinds = self.news(k, events[k], frames[company.ticker]["close"].to_numpy())
            news += items
            sentiment.update(truth)
            event_of.update(kinds)
            sessions.update({n.id: it.session for n, it in zip(items, events[k], strict=True)})
            if self.cfg.filings:
                docs, ftruth = self.filings(k, quarters[k], events[k])
                filings += docs
                sentiment.update(ftruth)
        macro = self.macro(frames, regimes) if self.cfg.macro else []
        truth = GroundTruth(
            regimes={c.ticker: pd.Series([REGIMES[s] for s in regimes[k]], index=self.calendar, name=c.ticker) for k, c in enumerate(self.companies)},
            item_sentiment=sentiment,
            extra={
                "signal": self.cfg.signal,
                "companies": {c.ticker: c.name for c in self.companies},
                "sectors": {c.ticker: c.sector for c in self.companies},
                "news_event": event_of,
                "news_session": sessions,
            },
        )
        return MarketData(frames, news=news, filings=filings, macro=macro, truth=truth, origin=f"synthetic(seed={self.cfg.seed})")


_EVENT_8K_TEXT = {
    Event.CEO_EXIT: "On this date, {ceo} notified the Board of Directors of the decision to resign as Chief Executive Officer, effective immediately. The Board appointed the Chief Financial Officer as interim Chief Executive Officer.",
    Event.CEO_SUCCESSION: "The Board of Directors approved a leadership transition under which {ceo} will become Executive Chair and a successor will be appointed Chief Executive Officer.",
    Event.ACQUISITION_TARGET: "{company} entered into an Agreement and Plan of Merger under which it will be acquired for cash, subject to shareholder and regulatory approval.",
    Event.BUYBACK: "The Board of Directors authorized a share repurchase program. Repurchases may be made from time to time in open-market transactions.",
}


def _filing(fid: str, company: Company, form: str, filed: pd.Timestamp, period: dt.date | None, sections: dict[str, str]) -> Filing:
    return Filing(
        id=fid, ticker=company.ticker, form=form, filed_at=filed.to_pydatetime(), period=period, sections=sections,
        url=f"https://sec.example/Archives/edgar/data/{company.ticker.lower()}/{fid}.txt",
    )


def _write_news(
    rng: np.random.Generator, company: Company, item: _Item, closes: np.ndarray, close_ns: np.ndarray, news_id: str
) -> NewsItem:
    # Prices quoted in the text are those public before publication: the last close at or before it.
    last = int(np.searchsorted(close_ns, item.public_at.value, side="right")) - 1
    price = float(closes[last]) if last >= 0 else float(closes[0])
    # No price history before the first session: the article then says nothing about the past month.
    past_move = float(closes[last] / closes[max(last - 20, 0)] - 1) if last >= 5 else None
    local = item.public_at.tz_convert(NEW_YORK)
    earnings = item.earnings or {}
    text = render_news(
        rng, item.event, company, strength=abs(item.sentiment) if item.sentiment else float(rng.uniform(0.3, 1.0)),
        price=price, past_move=past_move, year=int(earnings.get("year", local.year)),
        quarter=int(earnings.get("quarter", (local.month - 1) // 3 + 1)), eps=earnings.get("eps"),
        revenue_bn=earnings.get("revenue_bn"),
    )
    publisher_slug = slug(text.publisher, 4) or "wire"
    return NewsItem(
        id=news_id, ticker=company.ticker, published_at=item.public_at.to_pydatetime(), headline=text.headline,
        body=text.body, source=text.publisher,
        url=f"https://news.example/{publisher_slug}/{local:%Y/%m/%d}/{slug(text.headline)}-{news_id[-6:]}",
    )


def generate_market(config: SyntheticConfig) -> MarketData:
    """Build the synthetic market described by ``config`` (pure function of the config)."""
    return _Builder(config).build()


def poison_future(data: MarketData, after_index: int, seed: int = 0) -> MarketData:
    """A copy of ``data`` whose future (after the close of session ``after_index``) is replaced.

    Bars after ``after_index`` become a wildly different but valid path (other trend, several
    times the volatility); every news item, filing and macro observation public after that
    session's close is replaced by a different one (new id, new text, opposite sentiment where it
    had one). Everything public up to that close is untouched, so any decision taken at or before
    ``after_index`` must come out the same on both datasets: a test for lookahead.
    """
    n = len(data)
    if not 0 <= after_index < n - 1:
        raise DataError(f"{data.origin}: poison_future needs 0 <= after_index < {n - 1}, got {after_index}")
    cutoff = data.closes_utc[after_index]
    rng = _rng(seed, "poison")
    m = n - after_index - 1
    bars = {}
    for ticker in data.tickers:
        frame = data.bars[ticker].copy()
        past = np.log(frame["close"].to_numpy()[: after_index + 1])
        trend = float(past[-1] - past[0]) / max(after_index, 1)
        # The opposite of the past trend, five times steeper, with ~6 % daily moves.
        steps = -np.sign(trend or 1.0) * max(abs(trend) * 5, 0.01) + rng.normal(0, 0.06, m)
        closes = frame["close"].to_numpy()[after_index] * np.exp(np.cumsum(steps))
        opens = np.concatenate(([frame["close"].to_numpy()[after_index]], closes[:-1])) * np.exp(rng.normal(0, 0.02, m))
        highs = np.maximum(opens, closes) * np.exp(np.abs(rng.normal(0, 0.03, m)))
        lows = np.minimum(opens, closes) * np.exp(-np.abs(rng.normal(0, 0.03, m)))
        new = {"open": opens, "high": highs, "low": lows, "close": closes, "volume": rng.uniform(1e4, 1e8, m).round()}
        for col, values in new.items():
            frame.iloc[after_index + 1 :, frame.columns.get_loc(col)] = np.maximum(np.round(values, 4), 1e-4)
        bars[ticker] = frame
    truth_in = data.truth or GroundTruth()
    sentiment = dict(truth_in.item_sentiment)
    closes_ns = np.array([_utc_ns(pd.Timestamp(c)) for c in data.closes_utc], dtype=np.int64)
    news: list[NewsItem] = []
    for item in data.news:
        if item.public_at <= cutoff:
            news.append(item)
            continue
        old = sentiment.pop(item.id, 0.0)
        sign = -int(np.sign(old)) or (1 if rng.random() < 0.5 else -1)
        events = RANDOM_EVENTS[sign]
        strength = float(rng.uniform(0.5, 1.0))
        fake = _Item(0, pd.Timestamp(item.public_at), events[int(rng.integers(len(events)))], sign * strength, 0)
        close_arr = bars[item.ticker]["close"].to_numpy()
        new_item = _write_news(rng, company_for(item.ticker), fake, close_arr, closes_ns, f"poison-{item.id}")
        if new_item.headline == item.headline:
            new_item = new_item.model_copy(update={"headline": f"{new_item.headline} (revised)"})
        news.append(new_item)
        sentiment[new_item.id] = round(sign * strength, 6)
    filings: list[Filing] = []
    for doc in data.filings:
        if doc.public_at <= cutoff:
            filings.append(doc)
            continue
        old = sentiment.pop(doc.id, 0.0)
        sign = -int(np.sign(old)) or 1
        text = render_mda(rng, sign, _poison_numbers(rng))
        filings.append(doc.model_copy(update={"id": f"poison-{doc.id}", "sections": {"Management's Discussion and Analysis": text}}))
        sentiment[f"poison-{doc.id}"] = float(sign)
    macro = [
        obs if obs.public_at <= cutoff
        else obs.model_copy(update={"id": f"poison-{obs.id}", "value": round(-obs.value * 3 + 50, 4), "text": f"[replaced] {obs.series} printed {-obs.value * 3 + 50:.2f}."})
        for obs in data.macro
    ]
    extra = dict(truth_in.extra)
    extra["poisoned_after"] = after_index
    truth = GroundTruth(regimes=truth_in.regimes, item_sentiment=sentiment, extra=extra)
    return MarketData(bars, news=news, filings=filings, macro=macro, truth=truth, origin=f"{data.origin} [poisoned after {after_index}]")


def _poison_numbers(rng: np.random.Generator) -> dict[str, float | str]:
    rev = float(rng.uniform(100, 9000))
    return {
        "period_word": "period", "period_end": "period end", "rev": rev, "rev_prev": rev * 0.5, "growth_abs": 50.0,
        "dir_word": "a change of", "dir_verb": "changed", "margin": 80.0, "margin_prev": 10.0, "op_inc": rev / 2,
        "op_margin": 50.0, "op_margin_prev": 5.0, "eps": 9.99, "eps_prev": 0.01, "net_inc": rev / 3,
        "cash": rev, "debt": rev, "ocf": rev / 4,
    }
