"""Reward math against hand-computed values, and the maturity rule: no part is known before its date."""

import math

import numpy as np
import pytest

from rewards import (
    DecisionRecord,
    RewardConfig,
    RewardTracker,
    cvar_penalised_reward,
    historical_cvar,
    momentum,
    momentum_reward,
)


def test_momentum_hand_computed_raw_prices():
    p = np.arange(100.0, 140.0)  # +1 per session
    # (p[6]-p[5]) + (p[12]-p[5]) + (p[35]-p[5]) = 1 + 7 + 30
    assert momentum(p, 5, (1, 7, 30), normalize=False) == pytest.approx(38.0)
    assert momentum(p, 5, (1, 7, 30), normalize=True) == pytest.approx(38.0 / 105.0)


def test_momentum_needs_future_prices():
    with pytest.raises(IndexError):
        momentum(np.ones(10), 5, (1, 7, 30))


def test_reward_formula():
    assert momentum_reward(1, 0.05, 0.5, lam=0.1) == pytest.approx(0.05 - 0.1 * 0.25)
    assert momentum_reward(-1, 0.05, 0.5, lam=0.0) == pytest.approx(-0.05)
    assert momentum_reward(0, 0.05, 0.0, lam=0.3) == 0.0


def test_historical_cvar_hand_computed():
    r = [-0.10, -0.05, 0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07]
    assert historical_cvar(r, 0.10) == pytest.approx(0.10)  # worst 1 of 10
    assert historical_cvar(r, 0.20) == pytest.approx(0.075)  # mean of worst 2
    assert historical_cvar([0.01, 0.02], 0.05) == 0.0  # no losses
    assert cvar_penalised_reward(1, 0.02, 0.5, 0.0, cvar=0.04, cvar_weight=1.0) == pytest.approx(0.02 - 0.02)


def test_tracker_releases_each_horizon_on_its_own_date():
    cfg = RewardConfig(horizons_days=(1, 7, 30), lam=0.1, normalize=False)
    tracker = RewardTracker(cfg)
    prices = 100.0 + np.arange(40) * 2.0
    tracker.record(DecisionRecord("d0", "ACME", 0, prices[0], direction=1, quantity=0.5))
    released = {}
    for i in range(1, 40):
        for comp in tracker.release(i, {"ACME": prices[i]}):
            released[comp.horizon] = comp
            assert comp.matured_index == comp.decision_index + comp.horizon == i
    assert sorted(released) == [1, 7, 30]
    assert released[1].reward_part == pytest.approx(2.0 - 0.1 * 0.25)
    assert released[7].partial_reward == pytest.approx(2.0 + 14.0 - 0.025)
    assert released[30].complete and released[30].partial_reward == pytest.approx(2 + 14 + 60 - 0.025)
    assert not tracker.pending


def test_tracker_only_receives_todays_close_so_cannot_peek():
    """The tracker's API takes one session's closes; a component is absent until its session is released."""
    cfg = RewardConfig(horizons_days=(1, 7))
    tracker = RewardTracker(cfg)
    tracker.record(DecisionRecord("d", "X", 10, 50.0, 1, 0.1))
    for i in range(11, 17):
        comps = tracker.release(i, {"X": 60.0})
        assert all(c.horizon == 1 for c in comps)
    assert 7 not in tracker.pending["d"].matured
    assert [c.horizon for c in tracker.release(17, {"X": 55.0})] == [7]


def test_tracker_rejects_going_back_in_time():
    tracker = RewardTracker(RewardConfig())
    tracker.release(5, {})
    with pytest.raises(ValueError):
        tracker.release(4, {})
    with pytest.raises(ValueError):
        tracker.record(DecisionRecord("late", "X", 3, 1.0, 1, 0.1))


def test_tracker_state_round_trip():
    cfg = RewardConfig(horizons_days=(1, 3))
    a = RewardTracker(cfg)
    a.record(DecisionRecord("d", "X", 0, 10.0, -1, 0.2, cvar=0.03))
    a.release(1, {"X": 11.0})
    b = RewardTracker.from_state_dict(cfg, a.state_dict())
    ca = a.release(3, {"X": 9.0})
    cb = b.release(3, {"X": 9.0})
    assert ca == cb and math.isclose(ca[0].partial_reward, -1 * (0.1 - 0.1) - 0.05 * 0.04)


@pytest.mark.parametrize("bad", [(), (7, 1), (0, 1), (1, 1)])
def test_config_rejects_bad_horizons(bad):
    with pytest.raises(ValueError, match="horizons_days"):
        RewardConfig(horizons_days=bad)
