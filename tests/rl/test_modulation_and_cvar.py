"""FinRL-DeepSeek's action and risk modulation and CPPO's CVaR term, against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from agents.rl.cppo import cvar_penalties
from agents.rl.modulation import ScoreTable, action_factor, modulate_trade, risk_factor, risk_weights
from env.errors import ConfigError


def test_action_factor_by_recommendation_and_trade_sign() -> None:
    rec = np.array([1, 2, 3, 4, 5])
    # Buys: strong sell disagrees strongly (0.9) ... strong buy agrees strongly (1.1).
    assert action_factor(rec, np.ones(5)).tolist() == [0.9, 0.95, 0.98, 1.05, 1.1]
    # Sells: the table reversed, neutral still 0.98.
    assert action_factor(rec, -np.ones(5)).tolist() == [1.1, 1.05, 0.98, 0.95, 0.9]
    assert modulate_trade(np.array([5, 1, 4]), np.array([0.2, 0.2, -0.4])) == pytest.approx([0.22, 0.18, -0.38])
    assert modulate_trade(5, 0.0) == 0.0
    with pytest.raises(ConfigError, match="1-5"):
        action_factor(np.array([0]), np.array([1.0]))


def test_risk_weights_and_position_weighted_factor() -> None:
    assert risk_weights(np.array([1, 2, 3, 4, 5])).tolist() == [0.99, 0.995, 1.0, 1.005, 1.01]
    # Positions worth 300 and 100: weights 0.75 / 0.25 -> 0.75 * 1.01 + 0.25 * 0.99 = 1.005.
    assert risk_factor(np.array([300.0, 100.0]), np.array([5, 1])) == pytest.approx(1.005)
    assert risk_factor(np.array([0.0, 0.0]), np.array([5, 5])) == 1.0


def test_score_table_rejects_out_of_range_scores() -> None:
    with pytest.raises(ConfigError, match="integers 1-5"):
        ScoreTable(("A",), np.array([[6]]), np.array([[3]]))
    with pytest.raises(ConfigError, match="shape"):
        ScoreTable(("A", "B"), np.array([[3]]), np.array([[3]]))
    assert ScoreTable.neutral(("A",), 4).risk.tolist() == [[3], [3], [3], [3]]


def test_cvar_penalties_match_a_hand_computation() -> None:
    rewards = np.array([1.0, -2.0, 0.5, 1.0])
    values = np.array([2.0, 1.0, -4.0, 3.0])
    starts = np.array([0, 0, 0, 1])  # a new episode starts at step 3
    factors = np.array([1.0, 1.0, 1.005, 1.0])
    term = cvar_penalties(rewards, values, starts, factors, episode_return=0.5, nu=1.0, lam=0.3, alpha=0.85, clip_ratio=0.05)
    # R: 1.5, -0.5, 0.0 | 1.0.  D = f * (R + v - r): 1.5 + 2 - 1 = 2.5, -0.5 + 1 + 2 = 2.5,
    # 1.005 * (0 - 4 - 0.5) = -4.5225 | 1 + 3 - 1 = 3.0.
    np.testing.assert_allclose(term.estimates, [2.5, 2.5, -4.5225, 3.0])
    # Only step 2 is below nu = 1: 0.3 / 0.15 * (1 + 4.5225) = 11.045, clipped to |v| * 0.05 = 0.2.
    np.testing.assert_allclose(term.penalties, [0.0, 0.0, 0.2, 0.0])
    assert (term.bad_steps, term.clipped_steps, term.episode_return) == (1, 1, 1.0)
    # Without the clip bound the penalty is lam / (1 - alpha) * (nu - D).
    loose = cvar_penalties(rewards, values, starts, factors, episode_return=0.5, nu=1.0, lam=0.3, alpha=0.85, clip_ratio=10.0)
    assert loose.penalties[2] == pytest.approx(0.3 / 0.15 * 5.5225)
