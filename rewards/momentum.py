"""FinRS multi-timescale momentum reward, and a tracker that never reads a price before its date.

    M_t      = sum_h (p[t+h] - p[t])            (optionally divided by p[t])
    reward_t = d_t * M_t - lam * q_t**2

``d_t`` is the direction of the position held after the decision (+1 long, 0 flat, -1 short) and
``q_t`` its size as a fraction of equity. Each horizon's part of the reward becomes known only on
session t+h: ``RewardTracker.release(index, closes)`` is given the closes of session ``index`` alone,
so it cannot compute any part early even by mistake.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from rewards.config import RewardConfig


def momentum(prices: Sequence[float] | np.ndarray, t: int, horizons: Sequence[int], normalize: bool = True) -> float:
    """M_t over ``horizons`` from a full price array (for offline analysis; needs p[t + max(h)])."""
    p = np.asarray(prices, dtype=float)
    if t + max(horizons) >= len(p):
        raise IndexError(f"momentum at t={t} needs prices up to t+{max(horizons)}, have {len(p)}")
    total = float(sum(p[t + h] - p[t] for h in horizons))
    return total / p[t] if normalize else total


def momentum_reward(direction: float, m: float, quantity: float, lam: float) -> float:
    """reward = d * M - lam * q**2."""
    return float(direction * m - lam * quantity * quantity)


def historical_cvar(returns: Sequence[float] | np.ndarray, alpha: float = 0.05) -> float:
    """Historical CVaR (expected shortfall) at level ``alpha`` as a positive loss fraction.

    The mean of the worst ceil(alpha * n) returns, negated; 0 when fewer than 2 returns or no losses.
    """
    r = np.sort(np.asarray(returns, dtype=float))
    if r.size < 2:
        return 0.0
    k = max(1, int(np.ceil(alpha * r.size)))
    return float(max(0.0, -r[:k].mean()))


def cvar_penalised_reward(
    direction: float, m: float, quantity: float, lam: float, cvar: float, cvar_weight: float
) -> float:
    """FinRS reward minus ``cvar_weight * q * CVaR``: penalises size in proportion to tail risk."""
    return momentum_reward(direction, m, quantity, lam) - cvar_weight * abs(quantity) * cvar


@dataclass
class DecisionRecord:
    """One decision whose reward is pending. ``index`` is the session it was decided at (its close)."""

    decision_id: str
    ticker: str
    index: int
    price: float
    direction: float
    quantity: float
    cvar: float = 0.0
    matured: dict[int, float] = field(default_factory=dict)  # horizon -> p[t+h] - p[t] (normalised if set)


@dataclass(frozen=True)
class MaturedComponent:
    """A horizon's part of a decision's reward, released on session ``matured_index``."""

    decision_id: str
    ticker: str
    decision_index: int
    horizon: int
    matured_index: int
    momentum_part: float  # (p[t+h] - p[t]) (/ p[t] if normalised)
    reward_part: float  # d * momentum_part (the penalty is attributed to the first horizon)
    partial_reward: float  # reward of the decision over all horizons matured so far
    complete: bool  # every horizon has matured


class RewardTracker:
    """Holds pending decisions and releases each horizon's reward component on its own date."""

    def __init__(self, config: RewardConfig) -> None:
        self.config = config
        self.pending: dict[str, DecisionRecord] = {}
        self.last_index: int = -1

    def record(self, decision: DecisionRecord) -> None:
        """Register a decision taken at the close of ``decision.index`` (price = that close)."""
        if decision.index < self.last_index:
            raise ValueError(
                f"decision {decision.decision_id} at session {decision.index} is older than the last released "
                f"session {self.last_index}; record decisions in time order"
            )
        self.pending[decision.decision_id] = decision

    def release(self, index: int, closes: Mapping[str, float]) -> list[MaturedComponent]:
        """Release every component maturing at session ``index``, given only that session's closes."""
        if index < self.last_index:
            raise ValueError(f"release({index}) after release({self.last_index}): sessions must not go back")
        self.last_index = index
        cfg = self.config
        out: list[MaturedComponent] = []
        done: list[str] = []
        for rec in self.pending.values():
            h = index - rec.index
            if h not in cfg.horizons_days or h in rec.matured or rec.ticker not in closes:
                continue
            diff = float(closes[rec.ticker]) - rec.price
            part = diff / rec.price if cfg.normalize else diff
            rec.matured[h] = part
            reward_part = rec.direction * part
            if h == cfg.horizons_days[0]:
                reward_part -= cfg.lam * rec.quantity**2 + cfg.cvar_weight * abs(rec.quantity) * rec.cvar
            complete = len(rec.matured) == len(cfg.horizons_days)
            out.append(
                MaturedComponent(
                    decision_id=rec.decision_id,
                    ticker=rec.ticker,
                    decision_index=rec.index,
                    horizon=h,
                    matured_index=index,
                    momentum_part=part,
                    reward_part=reward_part,
                    partial_reward=self.partial_reward(rec),
                    complete=complete,
                )
            )
            if complete:
                done.append(rec.decision_id)
        for key in done:
            del self.pending[key]
        return out

    def partial_reward(self, rec: DecisionRecord) -> float:
        """d * (sum of matured momentum parts) - penalties (once the first horizon has matured)."""
        cfg = self.config
        if not rec.matured:
            return 0.0
        value = rec.direction * sum(rec.matured.values())
        if cfg.horizons_days[0] in rec.matured:
            value -= cfg.lam * rec.quantity**2 + cfg.cvar_weight * abs(rec.quantity) * rec.cvar
        return float(value)

    # -- checkpointing ------------------------------------------------------------------
    _FIELDS = ("decision_id", "ticker", "index", "price", "direction", "quantity", "cvar")

    def state_dict(self) -> dict:
        """Pending decisions as compact rows (``_FIELDS`` then ``{horizon: part}``): checkpointed every step."""
        return {
            "last_index": self.last_index,
            "pending": [
                [*(getattr(r, f) for f in self._FIELDS), {str(k): v for k, v in r.matured.items()}] for r in self.pending.values()
            ],
        }

    @classmethod
    def from_state_dict(cls, config: RewardConfig, state: Mapping) -> RewardTracker:
        tracker = cls(config)
        tracker.last_index = int(state["last_index"])
        for row in state["pending"]:
            *values, matured = row
            rec = DecisionRecord(**dict(zip(cls._FIELDS, values, strict=True)), matured={int(k): float(v) for k, v in matured.items()})
            tracker.pending[rec.decision_id] = rec
        return tracker
