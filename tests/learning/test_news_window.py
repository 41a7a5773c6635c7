"""The news window model (agents.learning.window): it learns what the summed text vectors of a
window of news do to the next position's return, finds how many sessions the news takes to be
priced in, opens its gate only on out-of-fold skill, and reloads exactly."""

from __future__ import annotations

import numpy as np
import pytest

from agents.learning.window import NewsWindowModel, window_sum
from env.errors import DataError

DIM = 8


def _model(**kw) -> NewsWindowModel:
    return NewsWindowModel(sessions=5, ridge=30.0, evidence_min=2.0, evidence_full=2.5, **kw)


def _rows(rng: np.random.Generator, n: int, informative: bool):
    """Items of ages 0-4 per decision; only those of ages 0-2 move the next return (news priced in
    over 3 sessions), by their tone: the projection of the vector on one direction."""
    theta = np.zeros(DIM)
    theta[0] = 1.0
    ages, vectors, returns = [], [], []
    for _ in range(n):
        k = int(rng.integers(2, 9))
        a = rng.integers(0, 5, k)
        v = rng.normal(0.0, 1.0, (k, DIM))
        drift = float((v[a < 3] @ theta).sum()) if informative else 0.0
        ages.append(a)
        vectors.append(v)
        returns.append(0.004 * drift + rng.normal(0.0, 0.01))
    return ages, vectors, np.array(returns)


def test_window_sum_adds_the_vectors_inside_the_window():
    v = np.arange(12.0).reshape(4, 3)
    assert window_sum(np.array([0, 1, 2, 5]), v, 2, 3).tolist() == (v[0] + v[1]).tolist()
    assert window_sum(np.array([], dtype=int), np.zeros((0, 3)), 2, 3).tolist() == [0.0, 0.0, 0.0]


def test_learns_the_tone_direction_and_how_long_news_is_priced_in():
    ages, vectors, r = _rows(np.random.default_rng(0), 400, informative=True)
    model = _model()
    report = model.fit(ages, vectors, r)
    assert report["trained"] and model.shrink == 1.0, report["reason"]
    assert model.window == 3, report["t_by_window"]
    up = np.zeros((1, DIM))
    up[0, 0] = 2.0
    assert model.deviation([0], up) > 0.5 > -0.5 > model.deviation([1], -up)
    assert model.deviation([4], up) == model.deviation([], np.zeros((0, DIM)))  # too old: not in the window


def test_stays_shut_on_noise_news():
    shut = 0
    for seed in range(5):
        ages, vectors, r = _rows(np.random.default_rng(100 + seed), 300, informative=False)
        model = _model()
        model.fit(ages, vectors, r)
        probe = np.ones((3, DIM))
        shut += model.shrink == 0.0 and model.deviation([0, 1, 2], probe) == 0.0
    assert shut >= 4


def test_too_few_rows_leave_it_untrained_and_bad_input_is_refused():
    ages, vectors, r = _rows(np.random.default_rng(1), 20, informative=True)
    model = _model()
    assert not model.fit(ages, vectors, r)["trained"] and "too few" in model.report["reason"]
    ages, vectors, r = _rows(np.random.default_rng(1), 60, informative=True)
    with pytest.raises(DataError):
        model.fit(ages, vectors, r[:-1])
    with pytest.raises(DataError):
        model.fit(ages, vectors, np.full(len(r), np.nan))
    with pytest.raises(DataError):
        model.fit(ages, [v[:, :4] if k == 3 else v for k, v in enumerate(vectors)], r)


def test_save_and_load_give_the_same_deviation(tmp_path):
    ages, vectors, r = _rows(np.random.default_rng(2), 300, informative=True)
    model = _model()
    model.fit(ages, vectors, r)
    model.save(tmp_path / "w.json")
    again = _model().load(tmp_path / "w.json")
    probe = np.random.default_rng(3).normal(0.0, 1.0, (4, DIM))
    assert again.deviation([0, 1, 2, 3], probe) == model.deviation([0, 1, 2, 3], probe) and again.report == model.report
    with pytest.raises(DataError):
        NewsWindowModel(sessions=3, ridge=1.0, evidence_min=2.0, evidence_full=2.5).load(tmp_path / "w.json")


def _judged_rows(rng: np.random.Generator, n: int):
    """Returns moved by each item's tone (ages 0-2); the text vectors carry the tone faintly
    (a tenth of its size on dimension 0, under unit noise) and the analyst's score carries its sign."""
    ages, vectors, scores, returns = [], [], [], []
    for _ in range(n):
        k = int(rng.integers(2, 9))
        a = rng.integers(0, 5, k)
        tone = rng.choice([-1.0, 1.0], k)
        v = rng.normal(0.0, 1.0, (k, DIM))
        v[:, 0] += 0.1 * tone
        ages.append(a)
        vectors.append(v)
        scores.append(0.9 * tone)
        returns.append(0.004 * float(tone[a < 3].sum()) + rng.normal(0.0, 0.004))
    return ages, vectors, scores, np.array(returns)


def test_stacked_scores_carry_the_signal_the_text_only_hints_at():
    ages, vectors, scores, r = _judged_rows(np.random.default_rng(4), 400)
    stacked, text = _model(), _model()
    report = stacked.fit(ages, vectors, r, scores=scores)
    text.fit(ages, vectors, r)
    assert stacked.judged and report["trained"] and stacked.shrink == 1.0 and stacked.window == 3, report["reason"]
    assert report["judged_weight"] > 0 and report["oof_corr"] > text.report.get("oof_corr", 0.0) + 0.2
    # The same faint text, told apart only by the analyst's calls: the stacked model follows the calls.
    probe = np.zeros((2, DIM))
    assert stacked.deviation([0, 1], probe, [0.9, 0.9]) > 1.0 > -1.0 > stacked.deviation([0, 1], probe, [-0.9, -0.9])
    with pytest.raises(DataError, match="needs them"):
        stacked.deviation([0], probe[:1])
    with pytest.raises(DataError, match="needs none"):
        text.deviation([0], probe[:1], [0.9])
    with pytest.raises(DataError, match="one score per item"):
        _model().fit(ages, vectors, r, scores=[s[:-1] for s in scores])


def test_a_stacked_model_reloads_with_its_score_column(tmp_path):
    ages, vectors, scores, r = _judged_rows(np.random.default_rng(5), 300)
    model = _model()
    model.fit(ages, vectors, r, scores=scores)
    model.save(tmp_path / "w.json")
    again = _model().load(tmp_path / "w.json")
    probe = np.random.default_rng(6).normal(0.0, 1.0, (3, DIM))
    assert again.judged and again.deviation([0, 1, 2], probe, [0.9, -0.9, 0.9]) == model.deviation([0, 1, 2], probe, [0.9, -0.9, 0.9])


def test_a_constant_score_column_is_penalised_not_singular():
    ages, vectors, r = _rows(np.random.default_rng(7), 300, informative=True)
    model = _model()
    report = model.fit(ages, vectors, r, scores=[np.zeros(len(a)) for a in ages])
    assert report["trained"] and model.window == 3 and np.isfinite(model.weights).all() and abs(report["judged_weight"]) < 1e-6
