"""Kelly/CVaR sizing against hand-computed values, and hard limits that no probability can exceed."""

import numpy as np
import pytest

from agents.risk import (
    SizingLimits,
    cvar_weight_cap,
    enforce_gross_exposure,
    kelly_fraction,
    payoff_ratio,
    size_position,
    up_share,
)

LIMITS = SizingLimits(max_position_fraction=0.5, max_daily_turnover=1.0, max_gross_exposure=1.0, allow_short=False, min_trade_weight=0.0)


def test_payoff_ratio_hand_computed():
    assert payoff_ratio([0.02, 0.04, -0.01, -0.03]) == pytest.approx(0.03 / 0.02)
    assert payoff_ratio([0.01, 0.02]) == 1.0  # no losses: neutral


def test_kelly_fraction_hand_computed():
    assert kelly_fraction(0.6, 1.0) == pytest.approx(0.2)
    assert kelly_fraction(0.6, 2.0) == pytest.approx(0.6 - 0.4 / 2)
    assert kelly_fraction(0.4, 1.0) == 0.0  # negative edge -> no bet
    with pytest.raises(ValueError):
        kelly_fraction(1.2, 1.0)
    with pytest.raises(ValueError):
        kelly_fraction(0.5, 0.0)


def test_cvar_cap_hand_computed():
    returns = [-0.04, -0.02] + [0.01] * 38  # worst 5 % of 40 = 2 returns -> CVaR 0.03
    cap, cvar = cvar_weight_cap(returns, 0.05, 0.015)
    assert cvar == pytest.approx(0.03)
    assert cap == pytest.approx(0.5)


def test_buy_is_half_kelly_then_cvar_capped():
    returns = np.array([0.01, -0.01] * 30)
    res = size_position(action="buy", p_up=0.7, current_weight=0.0, returns=returns, kelly_scale=0.5,
                        cvar_alpha=0.05, cvar_budget=1.0, limits=LIMITS)
    assert res.target_weight == pytest.approx(0.5 * 0.4)
    assert res.caps == []
    tight = size_position(action="buy", p_up=0.7, current_weight=0.0, returns=returns, kelly_scale=0.5,
                          cvar_alpha=0.05, cvar_budget=0.001, limits=LIMITS)
    assert tight.target_weight == pytest.approx(0.001 / 0.01)
    assert "cvar_budget" in tight.caps


@pytest.mark.parametrize("p_up", [0.999, 1.0])
def test_certainty_never_exceeds_max_position(p_up):
    res = size_position(action="buy", p_up=p_up, current_weight=0.0, returns=np.array([0.01, -0.001] * 30),
                        kelly_scale=1.0, cvar_alpha=0.05, cvar_budget=1.0, limits=LIMITS)
    assert res.target_weight == pytest.approx(0.5)
    assert "max_position_fraction" in res.caps


def test_sell_exits_long_only_and_hold_keeps():
    r = np.array([0.01, -0.01] * 30)
    sell = size_position(action="sell", p_up=0.2, current_weight=0.3, returns=r, kelly_scale=0.5, cvar_alpha=0.05, cvar_budget=1, limits=LIMITS)
    assert sell.target_weight == 0.0
    hold = size_position(action="hold", p_up=0.9, current_weight=0.3, returns=r, kelly_scale=0.5, cvar_alpha=0.05, cvar_budget=1, limits=LIMITS)
    assert hold.target_weight == pytest.approx(0.3)


def test_turnover_limit_bounds_each_session_change():
    limits = SizingLimits(1.0, 0.1, 1.0, False, 0.0)
    res = size_position(action="buy", p_up=0.9, current_weight=0.0, returns=np.array([0.01, -0.01] * 30),
                        kelly_scale=1.0, cvar_alpha=0.05, cvar_budget=1.0, limits=limits)
    assert res.target_weight == pytest.approx(0.1)
    assert res.caps[-1] == "max_daily_turnover"


def test_gross_exposure_scales_only_increases():
    targets, scaled = enforce_gross_exposure({"A": 0.8, "B": 0.6, "C": 0.1}, {"A": 0.2, "B": 0.0, "C": 0.3}, 1.0)
    assert scaled
    assert targets["C"] == pytest.approx(0.1)  # a reduction is never scaled
    assert sum(abs(v) for v in targets.values()) == pytest.approx(1.0)
    assert targets["A"] / targets["B"] == pytest.approx(0.8 / 0.6)


def test_action_gates_the_direction_of_change():
    r = np.array([0.01, -0.01] * 30)
    kw = dict(returns=r, kelly_scale=0.5, cvar_alpha=0.05, cvar_budget=1.0, limits=LIMITS)
    # buy with little edge keeps a larger existing position instead of selling it down
    assert size_position(action="buy", p_up=0.52, current_weight=0.3, **kw).target_weight == pytest.approx(0.3)
    # sell with a bullish probability never adds
    assert size_position(action="sell", p_up=0.9, current_weight=0.1, **kw).target_weight == pytest.approx(0.1)
    # sell with a mildly bearish probability exits a long-only position
    assert size_position(action="sell", p_up=0.45, current_weight=0.3, **kw).target_weight == 0.0


def test_neutral_weight_is_where_an_edgeless_buy_or_sell_aims():
    returns = np.array([0.01, -0.01] * 30)  # payoff ratio 1
    kwargs = dict(returns=returns, kelly_scale=0.5, cvar_alpha=0.05, cvar_budget=1.0, limits=LIMITS, neutral_weight=0.3)
    # No edge (p = 0.5, b = 1): Kelly is 0 both ways, so a buy from flat goes to the neutral weight.
    assert size_position(action="buy", p_up=0.5, current_weight=0.0, **kwargs).target_weight == pytest.approx(0.3)
    # An up edge adds half-Kelly on top: 0.3 + 0.5 * 0.4.
    assert size_position(action="buy", p_up=0.7, current_weight=0.0, **kwargs).target_weight == pytest.approx(0.5)
    # A down edge sells below it: 0.3 - 0.5 * (0.8 - 0.2) = 0, and never short when long-only.
    assert size_position(action="sell", p_up=0.2, current_weight=0.4, **kwargs).target_weight == pytest.approx(0.0)
    assert size_position(action="sell", p_up=0.1, current_weight=0.4, **kwargs).target_weight == 0.0
    # A sell without edge reduces to the neutral weight, never adds; hold keeps.
    assert size_position(action="sell", p_up=0.5, current_weight=0.45, **kwargs).target_weight == pytest.approx(0.3)
    assert size_position(action="sell", p_up=0.5, current_weight=0.1, **kwargs).target_weight == pytest.approx(0.1)
    assert size_position(action="hold", p_up=0.9, current_weight=0.1, **kwargs).target_weight == pytest.approx(0.1)


def test_without_an_edge_kelly_bets_the_windows_drift():
    # 2 up days of +2 % for every down day of -1 %: up share (40 + 1) / (60 + 2), payoff 2.
    returns = np.array([0.02, 0.02, -0.01] * 20)
    assert up_share(returns) == pytest.approx(41 / 62)
    res = size_position(action="buy", p_up=0.5, current_weight=0.0, returns=returns, kelly_scale=0.5,
                        cvar_alpha=0.05, cvar_budget=1.0, limits=LIMITS)
    p = 41 / 62
    assert res.p_win == pytest.approx(p)
    assert res.target_weight == pytest.approx(0.5 * (p - (1 - p) / 2.0))
    # An edge shifts P(win): p_up 0.6 adds 0.1.
    edged = size_position(action="buy", p_up=0.6, current_weight=0.0, returns=returns, kelly_scale=0.5,
                          cvar_alpha=0.05, cvar_budget=1.0, limits=LIMITS)
    assert edged.p_win == pytest.approx(p + 0.1)
