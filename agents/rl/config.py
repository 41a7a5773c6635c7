"""Configuration of the RL traders (owned by ``agents.rl``): training budget, seeds, env and CPPO settings."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CPPOConfig(_Config):
    """FinRL-DeepSeek's CVaR constraint (``train_cppo_llm_risk.py`` defaults)."""

    alpha: float = Field(0.85, gt=0, lt=1, description="CVaR level: the penalty divides by (1 - alpha).")
    beta: float = Field(3000.0, ge=0, description="Target the Lagrange multiplier grows towards: lam += lam_lr * (beta - nu).")
    lam_lr: float = Field(5e-4, gt=0, description="Learning rate of the CVaR Lagrange multiplier lam, per rollout.")
    nu_start: float = Field(0.1, description="Initial VaR threshold nu (in reward units).")
    lam_start: float = Field(0.01, ge=0, description="Initial Lagrange multiplier lam.")
    nu_delay: float = Field(0.75, gt=0, le=1, description="nu becomes nu_delay times the rollout's mean return estimate D.")
    cvar_clip_ratio: float = Field(0.05, gt=0, description="A step's penalty is at most |value estimate| times this.")


class RLConfig(_Config):
    """How an RL strategy is trained and evaluated on a scenario's market."""

    timesteps: int = Field(50_000, ge=64, description="Environment steps of training per seed.")
    seeds: tuple[int, ...] = Field((0, 1, 2), min_length=1, description="Training seeds; each gives one test-period equity curve.")
    window: int = Field(10, ge=1, le=250, description="Sessions of log returns in the observation.")
    reward: Literal["equity", "finrs"] = Field("equity", description="equity: log growth of equity; finrs: the FinRS momentum reward.")
    reward_scale: float = Field(100.0, gt=0, description="Rewards are multiplied by this (100: log returns in percent).")
    min_trade_weight: float = Field(
        0.02, ge=0, lt=1, description="Weight changes smaller than this send no order (no commission churn while holding)."
    )
    train_on_warmup: bool = Field(
        True,
        description="Train on every session before the test period (warm-up history included, from the first session "
        "whose indicators are warm); false trains on the scenario's training period only.",
    )
    n_steps: int = Field(512, ge=8, description="Rollout length per update for PPO, CPPO and A2C (A2C uses n_steps / 64, at least 5).")
    learning_rate: float = Field(3e-4, gt=0, description="Optimiser learning rate.")
    gamma: float = Field(0.99, gt=0, le=1, description="Discount factor.")
    threads: int = Field(1, ge=1, le=64, description="torch threads while training.")
    cppo: CPPOConfig = Field(default_factory=CPPOConfig, description="CVaR constraint of cppo and cppo_deepseek.")
    flag_trader: dict[str, Any] = Field(
        default_factory=dict,
        description="FLAG-Trader settings (fields of agents.rl.flag_trader.FlagTraderConfig, e.g. iterations, "
        "train_sessions); seed, threads and min_trade_weight come from this config.",
    )
