"""The news reference strategies: the oracle's edge and isolation, the TF-IDF reader point in time."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from env.baselines import make_strategy
from env.config import BrokerConfig, SyntheticConfig
from env.engine import run_backtest
from env.errors import ConfigError
from env.market import MarketData
from env.news_baselines import NewsTfidf, NewsTfidfParams, make_news_strategy
from env.sources.synthetic import generate_market, poison_future

BROKER = BrokerConfig(commission_bps=10, slippage_bps=2)


def market(signal: float, seed: int = 5, days: int = 220) -> MarketData:
    return generate_market(SyntheticConfig(tickers=["ACME"], days=days, seed=seed, signal=signal, news_per_day=2.5,
                                           start=dt.date(2023, 1, 2)))


def _sharpe(result) -> float:
    value = result.metrics.get("sharpe")
    return 0.0 if value is None or value != value else float(value)


def test_the_oracle_beats_buy_and_hold_on_informative_news_and_stays_flat_on_noise():
    for seed in (5, 6):
        data = market(0.8, seed)
        oracle = run_backtest(data, make_news_strategy("news_oracle", data), BROKER, start=150, end=len(data))
        bh = run_backtest(data, make_strategy("buy_and_hold"), BROKER, start=150, end=len(data))
        assert _sharpe(oracle) > _sharpe(bh) + 2.0
    noise = market(0.0)
    flat = run_backtest(noise, make_news_strategy("news_oracle", noise), BROKER, start=150, end=len(noise))
    assert flat.fills.empty  # with signal 0 there is no drift to know


def test_the_sign_oracle_knows_only_each_tone_s_sign():
    data = market(0.8, 5)
    full = make_news_strategy("news_oracle", data)
    sign = make_news_strategy("news_oracle", data, tones="sign")
    tones = data.truth.item_sentiment
    assert {abs(t) for t in tones.values()} - {0.0} and len({abs(t) for t in tones.values()}) > 3  # strengths vary
    signal = data.truth.extra["signal"]
    differ = 0
    for t in range(150, len(data) - 1):
        view = data.view(t)
        usable = [n for n in view.news("ACME") if t - 2 <= _usable(data, n) <= t]
        assert sign.drift(view, "ACME") == pytest.approx(signal * sum(np.sign(tones.get(n.id, 0.0)) for n in usable) / 3)
        assert full.drift(view, "ACME") == pytest.approx(signal * sum(tones.get(n.id, 0.0) for n in usable) / 3)
        differ += (sign.drift(view, "ACME") > 0) != (full.drift(view, "ACME") > 0)
    assert differ > 0  # mixed sessions where the strengths decide the side
    with pytest.raises(ConfigError, match="tones"):
        make_news_strategy("news_oracle", data, tones="magnitude")


def _usable(data, item):
    import bisect

    return bisect.bisect_left(list(data.closes_utc), item.public_at)


def test_the_oracle_needs_ground_truth():
    data = market(0.8)
    real_like = MarketData(dict(data.bars), news=data.news)
    with pytest.raises(ConfigError, match="ground truth"):
        make_news_strategy("news_oracle", real_like)
    with pytest.raises(ConfigError, match="unknown news strategy"):
        make_news_strategy("news_psychic", data)
    with pytest.raises(ConfigError, match="refit_every_days"):
        make_news_strategy("news_tfidf", data, refit_every_days=0)


def test_a_market_view_carries_no_truth():
    view = market(0.8).view(160)
    assert not hasattr(view, "truth") and not hasattr(view, "_truth")


def test_tfidf_trains_only_on_matured_labels_and_ignores_the_future():
    data = market(0.8)
    cut = 170
    reader = NewsTfidf(NewsTfidfParams(), list(data.closes_utc))
    texts, labels = reader.training_set(data.view(cut))
    assert texts and set(labels) == {0, 1}
    # Every training item became usable at least max(label horizon) sessions before the cut.
    import bisect

    usable = {f"{n.headline}. {n.body[:200]}": bisect.bisect_left(data.closes_utc, n.public_at) for n in data.news}
    assert max(usable[t] for t in texts) <= cut - 3
    poisoned = poison_future(data, cut)
    runs = [run_backtest(d, make_news_strategy("news_tfidf", d), BROKER, start=150, end=len(d)) for d in (data, poisoned)]
    orders = [r.orders[r.orders["decided_index"] <= cut][["decided_index", "requested"]].reset_index(drop=True) for r in runs]
    assert orders[0].equals(orders[1])
    assert len(orders[0]) == cut - 150 + 1


def test_tfidf_reads_informative_news_better_than_chance():
    data = market(1.0, seed=7, days=260)
    reader = NewsTfidf(NewsTfidfParams(), list(data.closes_utc))
    run_backtest(data, reader, BROKER, start=150, end=len(data))
    assert reader.fits and reader.fits[-1]["trained"]
    truth = data.truth.item_sentiment
    late = [n for n in data.news if n.public_at > data.closes_utc[200] and truth.get(n.id, 0) != 0]
    p_up = reader._model.predict_proba([reader._text(n) for n in late])[:, 1]
    accuracy = sum((p > 0.5) == (truth[n.id] > 0) for n, p in zip(late, p_up, strict=True)) / len(late)
    assert accuracy > 0.6
