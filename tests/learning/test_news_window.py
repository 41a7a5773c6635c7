"""The news window model (agents.learning.window): it learns how news evidence of each age adds up
to the next position's return, opens its gate only on out-of-fold skill, and reloads exactly."""

from __future__ import annotations

import numpy as np
import pytest

from agents.learning.window import NewsWindowModel, window_features
from env.errors import DataError


def _model(**kw) -> NewsWindowModel:
    return NewsWindowModel(sessions=5, ridge=1.0, evidence_min=2.0, evidence_full=2.5, **kw)


def _rows(rng: np.random.Generator, n: int, informative: bool) -> tuple[np.ndarray, np.ndarray]:
    """Evidence per age; only ages 0-2 move the next return (like news priced in over 3 sessions)."""
    x = rng.normal(0.0, 1.0, (n, 5))
    drift = x[:, :3].sum(axis=1) if informative else np.zeros(n)
    return x, 0.01 * (drift + rng.normal(0.0, 1.5, n))


def test_window_features_sum_evidence_by_age_in_sessions():
    feats = window_features([(10, 0.5), (10, 0.25), (9, -1.0), (6, 2.0), (5, 9.0), (11, 9.0)], decision_session=10, sessions=5)
    # session 10 -> age 0, 9 -> age 1, 6 -> age 4; 5 is too old and 11 is in the future: both ignored
    assert feats.tolist() == [0.75, -1.0, 0.0, 0.0, 2.0]


def test_learns_which_ages_of_news_move_prices_and_opens_its_gate():
    x, up = _rows(np.random.default_rng(0), 400, informative=True)
    model = _model()
    report = model.fit(x, up)
    assert report["trained"] and model.shrink == 1.0, report["reason"]
    assert report["evidence"] > 2.5
    w = model.weights
    assert min(w[:3]) > 0.3 and max(abs(w[3:])) < 0.25, w  # ages 3-4 carry nothing
    assert model.deviation(np.array([1.0, 1.0, 1.0, 0.0, 0.0])) > 1.0
    probe = np.array([0.0, 0.0, 0.0, 5.0, 5.0])
    assert model.deviation(probe) == pytest.approx(5.0 * (w[3] + w[4]))


def test_stays_shut_on_noise_news():
    shut = 0
    for seed in range(5):
        x, up = _rows(np.random.default_rng(100 + seed), 300, informative=False)
        model = _model()
        model.fit(x, up)
        shut += model.shrink == 0.0 and model.deviation(np.ones(5)) == 0.0
    assert shut >= 4


def test_too_few_rows_leave_it_untrained_and_bad_input_is_refused():
    x, up = _rows(np.random.default_rng(1), 20, informative=True)
    model = _model()
    assert not model.fit(x, up)["trained"] and "too few" in model.report["reason"]
    with pytest.raises(DataError):
        model.fit(np.ones((50, 4)), np.ones(50))
    with pytest.raises(DataError):
        model.fit(np.full((50, 5), np.nan), np.ones(50))


def test_save_and_load_give_the_same_deviation(tmp_path):
    x, up = _rows(np.random.default_rng(2), 300, informative=True)
    model = _model()
    model.fit(x, up)
    model.save(tmp_path / "w.json")
    again = _model().load(tmp_path / "w.json")
    probe = np.array([0.3, -1.2, 0.8, 0.1, 2.0])
    assert again.deviation(probe) == model.deviation(probe) and again.report == model.report
    with pytest.raises(DataError):
        NewsWindowModel(sessions=3, ridge=1.0, evidence_min=2.0, evidence_full=2.5).load(tmp_path / "w.json")
