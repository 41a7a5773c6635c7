"""Reward configuration (owned by ``rewards``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class RewardConfig(BaseModel):
    """FinRS multi-timescale momentum reward: reward_t = d_t * M_t - lam * q_t**2 (optionally CVaR-penalised)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    horizons_days: tuple[int, ...] = Field(
        (1, 7, 30),
        description="Momentum horizons in trading sessions; M_t sums (p[t+h] - p[t]) over them.",
    )
    lam: float = Field(0.05, ge=0, description="Quadratic penalty on the position size q_t (fraction of equity).")
    normalize: bool = Field(
        True,
        description="Divide price differences by p[t] so rewards are returns, comparable across tickers and price levels. "
        "False gives the paper's raw price differences.",
    )
    cvar_alpha: float = Field(0.05, gt=0, lt=0.5, description="Tail probability for the CVaR-penalised variant.")
    cvar_weight: float = Field(0.0, ge=0, description="Weight of the CVaR penalty q_t * CVaR_alpha; 0 gives the plain FinRS reward.")
    cvar_window_days: int = Field(60, ge=10, description="Sessions of past returns used for the historical CVaR.")

    @field_validator("horizons_days")
    @classmethod
    def _sorted_positive(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value:
            raise ValueError("horizons_days must name at least one horizon, e.g. [1, 7, 30]")
        if any(h <= 0 for h in value) or list(value) != sorted(set(value)):
            raise ValueError(f"horizons_days must be positive, unique and increasing, got {list(value)}")
        return value
