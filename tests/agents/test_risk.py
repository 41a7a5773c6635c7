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


def test_edge_kelly_hand_computed():
    from agents.risk import edge_kelly_fraction, mean_win_loss

    # Two-outcome return: +2 % or -1 %. f*(p) = p / 0.01 - (1 - p) / 0.02, so an edge of +0.05 adds 0.05 * (50 + 100).
    assert mean_win_loss([0.02, 0.02, -0.01, -0.01]) == pytest.approx((0.02, 0.01))
    assert edge_kelly_fraction(0.55, 0.02, 0.01) == pytest.approx(0.05 * 150)
    f = lambda p: p / 0.01 - (1 - p) / 0.02  # noqa: E731
    assert edge_kelly_fraction(0.55, 0.02, 0.01) == pytest.approx(f(0.55) - f(0.5))
    assert edge_kelly_fraction(0.5, 0.02, 0.01) == 0.0
    assert edge_kelly_fraction(0.4, 0.02, 0.01) == pytest.approx(-0.1 * 150)
    with pytest.raises(ValueError):
        edge_kelly_fraction(0.5, 0.0, 0.01)
    assert mean_win_loss([0.01, 0.03]) == pytest.approx((0.02, 0.02))  # no loss: the mean |r| stands in


def test_edge_sizing_without_an_edge_aims_at_the_neutral_weight_and_a_proven_edge_reaches_the_limits():
    r = np.array([0.01, -0.01] * 30)
    kw = dict(returns=r, kelly_scale=0.5, cvar_alpha=0.05, cvar_budget=1.0, limits=LIMITS, neutral_weight=0.3, kelly_model="edge")
    assert size_position(action="buy", p_up=0.5, current_weight=0.0, **kw).target_weight == pytest.approx(0.3)
    assert size_position(action="sell", p_up=0.5, current_weight=0.45, **kw).target_weight == pytest.approx(0.3)
    # p_up 0.501: 0.3 + 0.5 * 0.001 * 200 = 0.4 -- daily returns are small, so a small calibrated edge is a big bet
    assert size_position(action="buy", p_up=0.501, current_weight=0.0, **kw).target_weight == pytest.approx(0.4)
    full = size_position(action="buy", p_up=0.6, current_weight=0.0, **kw)
    assert full.target_weight == pytest.approx(0.5) and "max_position_fraction" in full.caps
    assert size_position(action="sell", p_up=0.4, current_weight=0.5, **kw).target_weight == 0.0
    with pytest.raises(ValueError, match="kelly_model"):
        size_position(action="buy", p_up=0.6, current_weight=0.0, **{**kw, "kelly_model": "quarter"})


def test_gross_exposure_never_ends_above_the_cap_when_a_scaled_increase_is_pinned_regression():
    """A scaled increase that fell below the current weight was kept at that weight while the other
    increase kept its full share of the room, so the portfolio ended above the cap."""
    targets, scaled = enforce_gross_exposure({"A": 0.5, "B": 0.5}, {"A": 0.32, "B": 0.0}, 0.6)
    assert scaled
    assert targets["A"] == pytest.approx(0.32)  # never sold by the cap
    assert sum(targets.values()) == pytest.approx(0.6)


def test_min_trade_weight_never_undoes_a_hard_limit_regression():
    """A held position that drifted 0.5 % above max_position_fraction was cut to the limit, then the
    min-trade rule put it back because the cut was smaller than min_trade_weight."""
    limits = SizingLimits(max_position_fraction=0.3, max_daily_turnover=1.0, max_gross_exposure=1.0, allow_short=False, min_trade_weight=0.02)
    res = size_position(action="hold", p_up=0.5, current_weight=0.305, returns=np.array([0.01, -0.01] * 30), kelly_scale=0.5,
                        cvar_alpha=0.05, cvar_budget=1.0, limits=limits, kelly_model="edge")
    assert res.target_weight == pytest.approx(0.3)
    assert "max_position_fraction" in res.caps
