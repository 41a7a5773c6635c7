"""FinRL-DeepSeek's LLM infusion as pure numbers: the score table, action and risk modulation.

An LLM gives each (ticker, session) a **recommendation** 1-5 (1 strong sell, 3 neutral, 5 strong
buy) and a **risk** score 1-5 (1 lowest). FinRL-DeepSeek (``env_stocktrading_llm*.py`` and
``train_cppo_llm_risk.py``) uses them in two places:

- *Action modulation*: a trade (buy > 0, sell < 0) is multiplied by 1.1 / 1.05 when the
  recommendation agrees strongly / moderately with its sign, by 0.95 / 0.9 when it disagrees
  moderately / strongly, and by 0.98 when the recommendation is neutral (3).
- *Risk modulation*: risk scores map to weights {1: 0.99, 2: 0.995, 3: 1, 4: 1.005, 5: 1.01}; their
  dot product with the portfolio's position weights (position values normalised to sum to 1;
  factor 1 when nothing is held) scales the trajectory return that enters the CVaR term of CPPO.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from env.errors import ConfigError

NEUTRAL_SCORE = 3
RISK_WEIGHTS = {1: 0.99, 2: 0.995, 3: 1.0, 4: 1.005, 5: 1.01}
# factor[recommendation - 1] for a buy; a sell uses the table reversed (a strong sell agrees strongly).
_BUY_FACTORS = np.array([0.9, 0.95, 0.98, 1.05, 1.1])
_RISK_TABLE = np.array([RISK_WEIGHTS[k] for k in range(1, 6)])


@dataclass(frozen=True)
class ScoreTable:
    """Per-session, per-ticker LLM scores on a dataset's calendar.

    ``recommendation[i, k]`` and ``risk[i, k]`` are integers 1-5 for session ``i`` and ticker
    ``tickers[k]``, built only from text public by the close of session ``i``. Sessions without
    news hold the neutral 3.
    """

    tickers: tuple[str, ...]
    recommendation: np.ndarray
    risk: np.ndarray

    def __post_init__(self) -> None:
        for name in ("recommendation", "risk"):
            values = np.asarray(getattr(self, name))
            if values.ndim != 2 or values.shape[1] != len(self.tickers):
                raise ConfigError(
                    f"ScoreTable.{name}: expected shape (sessions, {len(self.tickers)}), got {values.shape}"
                )
            if values.size and (values.min() < 1 or values.max() > 5 or not np.all(values == np.round(values))):
                raise ConfigError(f"ScoreTable.{name}: scores must be integers 1-5")
            frozen = values.astype(np.int8)
            frozen.setflags(write=False)
            object.__setattr__(self, name, frozen)
        if self.recommendation.shape != self.risk.shape:
            raise ConfigError(
                f"ScoreTable: recommendation {self.recommendation.shape} and risk {self.risk.shape} differ in shape"
            )

    @classmethod
    def neutral(cls, tickers: tuple[str, ...], sessions: int) -> ScoreTable:
        """Every score 3: what a day without news gets, and a no-information control."""
        full = np.full((sessions, len(tickers)), NEUTRAL_SCORE, dtype=np.int8)
        return cls(tickers, full, full.copy())

    def __len__(self) -> int:
        return int(self.recommendation.shape[0])


def action_factor(recommendation: np.ndarray | int, trade: np.ndarray | float) -> np.ndarray:
    """The multiplier FinRL-DeepSeek applies to a trade given the recommendation (elementwise).

    A zero trade keeps factor 1 except under a neutral recommendation (0.98 times zero is zero anyway).
    """
    rec = np.asarray(recommendation, dtype=np.int64)
    trade = np.asarray(trade, dtype=float)
    if np.any((rec < 1) | (rec > 5)):
        raise ConfigError(f"recommendation scores must be 1-5, got {rec.tolist()}")
    buy = _BUY_FACTORS[rec - 1]
    sell = _BUY_FACTORS[5 - rec]
    factor = np.where(trade > 0, buy, np.where(trade < 0, sell, 1.0))
    return np.where(rec == NEUTRAL_SCORE, 0.98, factor)


def modulate_trade(recommendation: np.ndarray | int, trade: np.ndarray | float) -> np.ndarray:
    """``trade * action_factor(recommendation, trade)``."""
    return np.asarray(trade, dtype=float) * action_factor(recommendation, trade)


def risk_weights(risk: np.ndarray | int) -> np.ndarray:
    """Risk scores 1-5 mapped to {0.99, 0.995, 1, 1.005, 1.01} (elementwise)."""
    r = np.asarray(risk, dtype=np.int64)
    if np.any((r < 1) | (r > 5)):
        raise ConfigError(f"risk scores must be 1-5, got {r.tolist()}")
    return _RISK_TABLE[r - 1]


def risk_factor(position_values: np.ndarray, risk: np.ndarray) -> float:
    """Position-weighted risk weight: dot(values / sum(values), risk_weights(risk)); 1 when nothing is held."""
    values = np.abs(np.asarray(position_values, dtype=float))
    total = float(values.sum())
    if total <= 0.0:
        return 1.0
    return float(np.dot(values / total, risk_weights(risk)))
