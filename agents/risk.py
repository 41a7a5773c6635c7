"""Quantity-and-risk agent: scaled Kelly under a CVaR budget, then hard limits — all in code.

The model proposes a direction and its probability; nothing a model writes reaches the size
except through ``p_up``, and every cap below is applied after it. Pure functions first, then the
portfolio-level sizing, then the graph's ``risk`` node (``make_risk_node``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from agents.deps import Deps
from agents.nodes.common import trace
from agents.state import Action, NodeName, RunState, SizedOrder
from env.broker import Broker
from rewards.momentum import historical_cvar


def payoff_ratio(returns: Sequence[float] | np.ndarray) -> float:
    """Mean win / mean loss of past returns (b in Kelly). 1.0 when either side is empty."""
    r = np.asarray(returns, dtype=float)
    wins, losses = r[r > 0], -r[r < 0]
    if wins.size == 0 or losses.size == 0:
        return 1.0
    return float(wins.mean() / losses.mean())


def up_share(returns: Sequence[float] | np.ndarray) -> float:
    """Share of positive returns, smoothed toward 1/2 by one pseudo-observation each side: the
    no-edge P(win) that goes with ``payoff_ratio`` over the same window."""
    r = np.asarray(returns, dtype=float)
    return float(((r > 0).sum() + 1.0) / (r.size + 2.0))


def kelly_fraction(p_win: float, payoff: float) -> float:
    """Full Kelly fraction f* = p - (1 - p) / b, floored at 0 (never bet against your own edge)."""
    if not 0.0 <= p_win <= 1.0 or not np.isfinite(p_win):
        raise ValueError(f"p_win must be a probability, got {p_win}")
    if payoff <= 0 or not np.isfinite(payoff):
        raise ValueError(f"payoff ratio must be positive and finite, got {payoff}")
    return max(0.0, p_win - (1.0 - p_win) / payoff)


def mean_win_loss(returns: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """(mean gain of the up days, mean loss of the down days) of past returns, both > 0.
    Either side empty: the mean absolute return stands in for it (1 % if every return is 0)."""
    r = np.asarray(returns, dtype=float)
    scale = float(np.abs(r).mean()) if r.size and np.abs(r).mean() > 0 else 0.01
    wins, losses = r[r > 0], -r[r < 0]
    return (float(wins.mean()) if wins.size else scale, float(losses.mean()) if losses.size else scale)


def edge_kelly_fraction(p_up: float, mean_win: float, mean_loss: float) -> float:
    """Kelly weight of the *edge* alone, for a two-outcome return (+a with P(win), -c otherwise).

    Maximising ``p log(1 + f a) + (1 - p) log(1 - f c)`` gives ``f*(p) = p / c - (1 - p) / a``, which
    is linear in p with slope ``1/a + 1/c``. Moving P(win) from its no-edge value by ``p_up - 0.5``
    therefore moves the Kelly weight by ``(p_up - 0.5) (1/a + 1/c)``: signed, 0 without an edge.
    (The drift part of f*, a noisy estimate, is replaced by the strategic ``neutral_weight``, as
    Black-Litterman tilts an equilibrium portfolio by its views.) Daily returns are small, so a
    calibrated edge of a few points already asks for more than the hard limits allow.
    """
    if not 0.0 <= p_up <= 1.0 or not np.isfinite(p_up):
        raise ValueError(f"p_up must be a probability, got {p_up}")
    if not (mean_win > 0 and mean_loss > 0 and np.isfinite(mean_win) and np.isfinite(mean_loss)):
        raise ValueError(f"mean win and loss must be positive and finite, got {mean_win}, {mean_loss}")
    return (p_up - 0.5) * (1.0 / mean_win + 1.0 / mean_loss)


def cvar_weight_cap(returns: Sequence[float] | np.ndarray, alpha: float, budget: float) -> tuple[float, float]:
    """Largest |weight| whose one-day historical CVaR stays within ``budget``; returns (cap, cvar)."""
    cvar = historical_cvar(returns, alpha)
    if cvar <= 0:
        return float("inf"), cvar
    return budget / cvar, cvar


@dataclass(frozen=True)
class SizingLimits:
    """Hard limits; the strictest of the risk and broker configs."""

    max_position_fraction: float
    max_daily_turnover: float
    max_gross_exposure: float
    allow_short: bool
    min_trade_weight: float


@dataclass
class SizingResult:
    target_weight: float
    kelly_fraction: float
    payoff: float
    cvar: float
    p_win: float
    caps: list[str] = field(default_factory=list)


def size_position(
    *,
    action: Action,
    p_up: float,
    current_weight: float,
    returns: Sequence[float] | np.ndarray,
    kelly_scale: float,
    cvar_alpha: float,
    cvar_budget: float,
    limits: SizingLimits,
    neutral_weight: float = 0.0,
    fixed_weight: float | None = None,
    kelly_model: str = "binary",
) -> SizingResult:
    """Target weight for one ticker. ``action`` is buy/sell/hold; ``p_up`` the direction agent's
    probability that the price goes up, where 0.5 means its evidence has no edge.

    Kelly needs P(win) and the payoff ratio b of the same bet, so both come from the same window of
    past returns: P(win) = the window's share of up days shifted by the agent's edge (p_up - 0.5),
    b = mean win / mean loss. Without an edge this is Kelly on the recent drift. The target is
    ``neutral_weight + kelly_scale * f``, with ``f`` the long Kelly fraction when the odds favour
    up and minus the short one when they favour down.

    ``kelly_model``: ``"binary"`` is the bet above (Kelly for a wager that loses its stake, so P(win)
    carries the window's drift and b its payoff ratio); ``"edge"`` is ``edge_kelly_fraction``, the
    Kelly weight of the edge for a return that wins or loses a few per cent, added to ``neutral_weight``.

    ``fixed_weight`` replaces Kelly and the CVaR budget (the "fixed sizing" ablation): buy aims at
    ``+fixed_weight``, sell at ``-fixed_weight`` (0 when long-only); the hard limits still apply.
    """
    action = Action(action)
    payoff = payoff_ratio(returns)
    p_win = min(1.0, max(0.0, up_share(returns) + (p_up - 0.5)))
    caps: list[str] = []
    # The action only gates which way we may move: buy never reduces a position, sell never adds
    # to it, hold keeps it.
    f_long = kelly_fraction(p_win, payoff)
    f_short = kelly_fraction(1.0 - p_win, 1.0 / payoff)
    kelly_target = neutral_weight + (kelly_scale * f_long if f_long > 0 else -kelly_scale * f_short)
    if kelly_model == "edge":
        f_edge = edge_kelly_fraction(p_up, *mean_win_loss(returns))
        f_long, f_short = max(0.0, f_edge), max(0.0, -f_edge)
        kelly_target = neutral_weight + kelly_scale * f_edge
    elif kelly_model != "binary":
        raise ValueError(f"kelly_model must be 'edge' or 'binary', got {kelly_model!r}")
    if fixed_weight is not None:
        kelly_target = fixed_weight if action == Action.BUY else -fixed_weight if action == Action.SELL else current_weight
    if not limits.allow_short:
        kelly_target = max(0.0, kelly_target)
    if action == Action.BUY:
        f = f_long
        target = max(current_weight, kelly_target)
    elif action == Action.SELL:
        f = f_short
        target = min(current_weight, kelly_target)
        if not limits.allow_short and current_weight > 0 and target <= 0:
            caps.append("long_only_exit")
    else:
        f = 0.0
        target = current_weight
    cap, cvar = cvar_weight_cap(returns, cvar_alpha, cvar_budget)
    if fixed_weight is None and abs(target) > cap:
        target = float(np.sign(target) * cap)
        caps.append("cvar_budget")
    if abs(target) > limits.max_position_fraction:
        target = float(np.sign(target) * limits.max_position_fraction)
        caps.append("max_position_fraction")
    if not limits.allow_short and target < 0:
        target = 0.0
        caps.append("long_only")
    delta = target - current_weight
    if abs(delta) > limits.max_daily_turnover:
        target = current_weight + float(np.sign(delta)) * limits.max_daily_turnover
        caps.append("max_daily_turnover")
    forced = bool({"cvar_budget", "max_position_fraction"} & set(caps)) and abs(target) < abs(current_weight)
    if 0 < abs(target - current_weight) < limits.min_trade_weight and action != Action.SELL and not forced:
        target = current_weight
        caps.append("min_trade_weight")
    return SizingResult(target_weight=float(target), kelly_fraction=f, payoff=payoff, cvar=cvar, p_win=p_win, caps=caps)


def enforce_gross_exposure(targets: Mapping[str, float], current: Mapping[str, float], max_gross: float) -> tuple[dict[str, float], bool]:
    """Scale down the increases (never the reductions) so the sum of |weights| stays within ``max_gross``."""
    out = dict(targets)
    gross = sum(abs(w) for w in out.values())
    if gross <= max_gross + 1e-12:
        return out, False
    increases = {t: w for t, w in out.items() if abs(w) > abs(current.get(t, 0.0))}
    # Scale the increases by one factor; an increase that would end below its current weight stays
    # at that weight (the cap never forces a sale) and leaves the others less room, so repeat.
    while increases:
        fixed = sum(abs(w) for t, w in out.items() if t not in increases)
        room = max(0.0, max_gross - fixed)
        scale = room / max(1e-12, sum(abs(w) for w in increases.values()))
        pinned = [t for t, w in increases.items() if abs(w * scale) < abs(current.get(t, 0.0))]
        for t in pinned:
            out[t] = float(current.get(t, 0.0))
            del increases[t]
        if not pinned:
            for t, w in increases.items():
                out[t] = float(w * scale)
            break
    return out, True


def sizing_limits(deps: Deps) -> SizingLimits:
    """The strictest of the risk agent's and the broker's hard limits."""
    risk, broker_cfg = deps.config.risk, deps.config.broker
    return SizingLimits(
        max_position_fraction=min(risk.max_position_fraction, broker_cfg.max_position_fraction),
        max_daily_turnover=min(risk.max_daily_turnover, broker_cfg.max_daily_turnover or float("inf")),
        max_gross_exposure=broker_cfg.max_gross_exposure,
        allow_short=broker_cfg.allow_short,
        min_trade_weight=risk.min_trade_weight,
    )


def make_risk_node(deps: Deps) -> Callable[[RunState], dict]:
    """The ``risk`` node: each decision sized by ``size_position``, then the portfolio's gross
    exposure enforced. No model output reaches the size except through the direction probability."""
    risk = deps.config.risk
    limits = sizing_limits(deps)
    fixed = risk.fixed_weight if risk.sizing == "fixed" else None

    def node(state: RunState) -> dict:
        view = deps.data.view(state.day)
        weights = Broker.weights_in(state.broker)
        sized: dict[str, SizedOrder] = {}
        for ticker, dec in state.decisions.items():
            closes = view.series(ticker, "close", lookback=risk.payoff_window_days + 1)
            returns = np.diff(closes) / closes[:-1]
            current = float(weights.get(ticker, 0.0))
            res = size_position(
                action=dec.action, p_up=dec.p_up, current_weight=current, returns=returns,
                kelly_scale=risk.kelly_scale, cvar_alpha=risk.cvar_alpha, cvar_budget=risk.cvar_budget, limits=limits,
                neutral_weight=risk.neutral_weight, fixed_weight=fixed, kelly_model=risk.kelly_model,
            )
            sized[ticker] = SizedOrder(
                ticker=ticker, action=dec.action, prev_weight=current, target_weight=res.target_weight,
                kelly_fraction=res.kelly_fraction, payoff_ratio=res.payoff, cvar=res.cvar, p_win=res.p_win, caps=res.caps,
            )
        targets, scaled = enforce_gross_exposure(
            {t: s.target_weight for t, s in sized.items()}, {t: float(weights.get(t, 0.0)) for t in sized}, limits.max_gross_exposure
        )
        for t, w in targets.items():
            if scaled and w != sized[t].target_weight:
                sized[t] = sized[t].model_copy(update={"target_weight": w, "caps": sized[t].caps + ["max_gross_exposure"]})
            s = sized[t]
            trace(deps, state, NodeName.RISK, ticker=t, action=s.action.value, target_weight=s.target_weight, caps=s.caps,
                  kelly_fraction=s.kelly_fraction, payoff_ratio=s.payoff_ratio, cvar=s.cvar, p_win=s.p_win, prev_weight=s.prev_weight)
        return {"orders": sized}

    node.__name__ = NodeName.RISK.value
    return node
