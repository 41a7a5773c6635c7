"""Pure reward functions (FinRS multi-timescale momentum) and a tracker that releases them as they mature."""

from rewards.config import RewardConfig
from rewards.momentum import (
    DecisionRecord,
    MaturedComponent,
    RewardTracker,
    cvar_penalised_reward,
    historical_cvar,
    momentum,
    momentum_reward,
)

__all__ = [
    "DecisionRecord",
    "MaturedComponent",
    "RewardConfig",
    "RewardTracker",
    "cvar_penalised_reward",
    "historical_cvar",
    "momentum",
    "momentum_reward",
]
