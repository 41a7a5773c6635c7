"""The synthetic market: determinism, realism checks, the signal knob, ground truth and poison_future."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from env.config import SyntheticConfig
from env.errors import DataError
from env.market import MarketData
from env.records import NEW_YORK
from env.sources import load_market
from env.sources.synthetic import REGIMES, generate_market, poison_future


@pytest.fixture(scope="module")
def market() -> MarketData:
    return generate_market(SyntheticConfig(days=250, seed=7))


def fingerprint(data: MarketData) -> bytes:
    """Every byte of a dataset: bar arrays, text records and ground truth."""
    parts = [data.bars[t].to_numpy().tobytes() + str(list(data.bars[t].index)).encode() for t in data.tickers]
    parts += [r.model_dump_json().encode() for r in (*data.news, *data.filings, *data.macro)]
    assert data.truth is not None
    parts.append(repr(sorted(data.truth.item_sentiment.items())).encode())
    parts += [str(data.truth.regimes[t].tolist()).encode() for t in data.tickers]
    return b"".join(parts)


def test_same_config_gives_identical_data(market: MarketData) -> None:
    assert fingerprint(generate_market(SyntheticConfig(days=250, seed=7))) == fingerprint(market)


def test_other_seed_gives_other_data(market: MarketData) -> None:
    other = generate_market(SyntheticConfig(days=250, seed=8))
    assert not np.allclose(other.array("ACME", "close"), market.array("ACME", "close"))
    assert [n.headline for n in other.news[:20]] != [n.headline for n in market.news[:20]]


def test_calendar_bars_and_text_are_plausible(market: MarketData) -> None:
    assert len(market) == 250 and market.tickers == ("ACME", "BOLT", "CRUX")
    assert all(d.weekday() < 5 for d in market.dates)
    for ticker in market.tickers:
        frame = market.bars[ticker]
        assert (frame["high"] >= frame[["open", "close"]].max(axis=1)).all()
        assert (frame["low"] <= frame[["open", "close"]].min(axis=1)).all()
        # Opens gap away from the previous close: OHLC is not just a copied close.
        assert (frame["open"].to_numpy()[1:] != frame["close"].to_numpy()[:-1]).mean() > 0.9
        daily = np.diff(np.log(frame["close"].to_numpy()))
        assert 0.003 < daily.std() < 0.05
    headlines = [n.headline for n in market.news]
    assert len(set(headlines)) > 0.5 * len(headlines)
    assert market.truth is not None
    events = market.truth.extra["news_event"]
    for event in ("upgrade", "downgrade", "recall", "earnings_beat"):
        # Many wordings per event type: the first three words of the headline vary.
        openings = {" ".join(n.headline.split()[:3]) for n in market.news if events[n.id] == event}
        assert len(openings) >= 4, (event, openings)
    assert len({n.source for n in market.news}) >= 8
    assert all(n.url.startswith("https://news.example/") for n in market.news)
    local = [n.published_at.astimezone(NEW_YORK) for n in market.news]
    assert any(t.weekday() >= 5 for t in local), "some news lands on non-trading days"
    assert any(t.hour >= 16 for t in local), "some news lands after the close"
    forms = {f.form for f in market.filings}
    assert forms == {"10-Q", "10-K", "8-K"}
    ten_k = next(f for f in market.filings if f.form == "10-K")
    assert any("Risk Factors" in name for name in ten_k.sections)
    assert any("$" in body and "%" in body for body in ten_k.sections.values())
    assert {m.series for m in market.macro} == {"VOL_INDEX", "CPI_SURPRISE", "POLICY_RATE"}
    assert all(m.text for m in market.macro)


def test_ground_truth_covers_every_item_and_regime(market: MarketData) -> None:
    truth = market.truth
    assert truth is not None
    assert {n.id for n in market.news} <= set(truth.item_sentiment)
    assert all(-1.0 <= s <= 1.0 for s in truth.item_sentiment.values())
    for ticker in market.tickers:
        regimes = truth.regimes[ticker]
        assert len(regimes) == len(market) and set(regimes) <= set(REGIMES)


def _sentiment_vs_forward_return(data: MarketData, horizon: int = 5) -> tuple[float, int]:
    assert data.truth is not None
    sessions = data.truth.extra["news_session"]
    sentiments, returns = [], []
    for item in data.news:
        i = sessions[item.id]
        if i + horizon < len(data):
            close = data.array(item.ticker, "close")
            sentiments.append(data.truth.item_sentiment[item.id])
            returns.append(np.log(close[i + horizon] / close[i]))
    return float(np.corrcoef(sentiments, returns)[0, 1]), len(sentiments)


@pytest.mark.parametrize("seed", [1, 2])
def test_signal_knob_controls_predictiveness_of_news(seed: int) -> None:
    # With signal=0, sentiment is independent of returns, so the sample correlation has a standard
    # deviation of about 1/sqrt(n); 4/sqrt(n) is a 4-sigma band.
    noise_corr, n = _sentiment_vs_forward_return(generate_market(SyntheticConfig(days=400, seed=seed, signal=0.0)))
    assert n > 1000
    assert abs(noise_corr) < 4 / np.sqrt(n)
    signal_corr, n = _sentiment_vs_forward_return(generate_market(SyntheticConfig(days=400, seed=seed, signal=1.0)))
    assert signal_corr > 8 / np.sqrt(n)


def test_news_after_close_is_only_visible_next_session(market: MarketData) -> None:
    late = next(
        n for n in market.news
        if n.published_at.astimezone(NEW_YORK).hour >= 17
        and n.published_at.astimezone(NEW_YORK).date() in market.dates[:-1]
    )
    day = market.dates.index(late.published_at.astimezone(NEW_YORK).date())
    assert late.id not in {n.id for n in market.view(day).news(late.ticker)}
    assert late.id in {n.id for n in market.view(day + 1).news(late.ticker)}


def test_load_market_replays_synthetic_from_cache(tmp_path: Path) -> None:
    config = SyntheticConfig(days=40, seed=3, tickers=["ACME", "ZETA"])
    first = load_market(config, tmp_path)
    assert any((tmp_path / "datasets").iterdir())
    second = load_market(config, tmp_path)
    assert fingerprint(second) == fingerprint(first)
    assert second.truth is not None and second.truth.extra["companies"]["ZETA"]


def test_corrupt_cache_file_is_named(tmp_path: Path) -> None:
    config = SyntheticConfig(days=30, seed=4)
    load_market(config, tmp_path)
    bars = next((tmp_path / "datasets").glob("synthetic-*/bars/ACME.parquet"))
    bars.write_bytes(b"not a parquet file")
    with pytest.raises(DataError, match="ACME.parquet"):
        load_market(config, tmp_path)


def test_corrupt_jsonl_line_is_named(tmp_path: Path) -> None:
    config = SyntheticConfig(days=30, seed=4)
    load_market(config, tmp_path)
    news = next((tmp_path / "datasets").glob("synthetic-*/news.jsonl"))
    lines = news.read_text().splitlines()
    lines[2] = '{"id": "broken"}'
    news.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"news.jsonl: line 3"):
        load_market(config, tmp_path)


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="signal"):
        SyntheticConfig(signal=1.5)
    with pytest.raises(ValueError, match="transition"):
        SyntheticConfig(transition=[[0.5, 0.5, 0.5], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    with pytest.raises(ValueError, match="more than once"):
        SyntheticConfig(tickers=["ACME", "ACME"])
    with pytest.raises(ValueError, match="extra"):
        SyntheticConfig(colour="red")


def test_poison_future_keeps_the_past_and_replaces_the_future(market: MarketData) -> None:
    cut = 120
    poisoned = poison_future(market, cut, seed=1)
    for ticker in market.tickers:
        before, after = market.array(ticker, "close"), poisoned.array(ticker, "close")
        np.testing.assert_array_equal(before[: cut + 1], after[: cut + 1])
        assert np.mean(np.abs(np.log(after[cut + 1 :] / before[cut + 1 :]))) > 0.2
        for i in (0, cut // 2, cut):
            assert market.view(i).news(ticker) == poisoned.view(i).news(ticker)
            assert market.view(i).filings(ticker) == poisoned.view(i).filings(ticker)
    assert market.view(cut).macro() == poisoned.view(cut).macro()
    late_old = market.view(len(market) - 1).news(since=cut)
    late_new = poisoned.view(len(market) - 1).news(since=cut)
    assert len(late_old) == len(late_new) > 0
    assert all(o.headline != p.headline and o.id != p.id for o, p in zip(late_old, late_new, strict=True))
    assert poisoned.truth is not None and market.truth is not None
    flipped = [
        (market.truth.item_sentiment[o.id], poisoned.truth.item_sentiment[p.id]) for o, p in zip(late_old, late_new, strict=True)
    ]
    assert all(np.sign(a) != np.sign(b) for a, b in flipped if a != 0)
    assert poisoned.view(cut + 1).news() != market.view(cut + 1).news()


def test_poison_future_rejects_bad_index(market: MarketData) -> None:
    with pytest.raises(DataError, match="after_index"):
        poison_future(market, len(market) - 1)


def test_first_session_is_config_start_when_a_weekday() -> None:
    data = generate_market(SyntheticConfig(start=dt.date(2024, 3, 4), days=15, seed=0, filings=False, macro=False))
    assert data.dates[0] == dt.date(2024, 3, 4)
    assert not data.filings and not data.macro
