"""CPPO: PPO under a CVaR constraint, as FinRL-DeepSeek's ``train_cppo_llm_risk.py`` runs it, on stable-baselines3.

Per rollout step, with ``R`` the episode's reward so far (this step's included), ``v`` the value
estimate of the state, ``r`` the step's reward and ``f`` the risk factor (1 without LLM risk
scores; the position-weighted risk weight of ``agents.rl.modulation.risk_factor`` with them)::

    D       = f * (R + v - r)                        # an estimate of the episode's return
    penalty = min(lam / (1 - alpha) * (nu - D), |v| * cvar_clip_ratio)   if D < nu, else 0
    advantage -= penalty

so steps on trajectories heading into the worst tail lose advantage. Once per rollout, before
the penalties: ``lam += lam_lr * (beta - nu)``; after them: ``nu = nu_delay * mean(D)``. The
defaults are the repo's: alpha 0.85, beta 3000, lam_lr 5e-4, nu_start 0.1, lam_start 0.01,
nu_delay 0.75, cvar_clip_ratio 0.05, delay 1. ``cvar_penalties`` is the pure function; ``CPPO``
subclasses ``stable_baselines3.PPO`` and applies it to the rollout buffer before each update.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from stable_baselines3 import PPO


@dataclass(frozen=True)
class CvarTerm:
    """What ``cvar_penalties`` returns for one environment's stretch of a rollout."""

    penalties: np.ndarray  # subtracted from the advantages, one per step (>= 0)
    estimates: np.ndarray  # D per step
    bad_steps: int  # steps with D < nu
    clipped_steps: int  # penalties cut to |v| * clip_ratio
    episode_return: float  # R after the last step, carried into the next rollout


def cvar_penalties(
    rewards: np.ndarray,
    values: np.ndarray,
    episode_starts: np.ndarray,
    risk_factors: np.ndarray,
    *,
    episode_return: float,
    nu: float,
    lam: float,
    alpha: float,
    clip_ratio: float,
    delay: float = 1.0,
) -> CvarTerm:
    """The CVaR penalty of each step (see the module docstring); ``episode_return`` is R before step 0."""
    n = len(rewards)
    penalties = np.zeros(n)
    estimates = np.zeros(n)
    bad = clipped = 0
    ret = float(episode_return)
    for i in range(n):
        if episode_starts[i]:
            ret = 0.0
        r, v = float(rewards[i]), float(values[i])
        ret += r
        d = float(risk_factors[i]) * (ret + v - r)
        estimates[i] = d
        if d < nu:
            bad += 1
            update = delay * lam / (1.0 - alpha) * (nu - d)
            cap = abs(v) * clip_ratio
            if update > cap:
                update = cap
                clipped += 1
            penalties[i] = update
    return CvarTerm(penalties, estimates, bad, clipped, ret)


class CPPO(PPO):
    """PPO whose advantages carry FinRL-DeepSeek's CVaR penalty (risk-modulated when the env reports
    ``info["risk_factor"]``, as ``TradingRLEnv`` does when it has LLM scores)."""

    def __init__(
        self,
        *args: Any,
        alpha: float = 0.85,
        beta: float = 3000.0,
        lam_lr: float = 5e-4,
        nu_start: float = 0.1,
        lam_start: float = 0.01,
        nu_delay: float = 0.75,
        cvar_clip_ratio: float = 0.05,
        delay: float = 1.0,
        **kwargs: Any,
    ) -> None:
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha={alpha} must be in (0, 1)")
        self.alpha, self.beta, self.lam_lr = alpha, beta, lam_lr
        self.nu, self.cvar_lam = nu_start, lam_start
        self.nu_delay, self.cvar_clip_ratio, self.delay = nu_delay, cvar_clip_ratio, delay
        self.cvar_log: list[dict[str, float]] = []
        self._risk: np.ndarray | None = None
        self._episode_returns: np.ndarray | None = None
        super().__init__(*args, **kwargs)

    def _update_info_buffer(self, infos: list[dict[str, Any]], dones: np.ndarray | None = None) -> None:
        # Called once per rollout step, just before the step is added to the buffer at ``pos``.
        super()._update_info_buffer(infos, dones)
        buffer = self.rollout_buffer
        if self._risk is None or self._risk.shape != buffer.rewards.shape:
            self._risk = np.ones_like(buffer.rewards)
        if buffer.pos < buffer.buffer_size:
            self._risk[buffer.pos] = [info.get("risk_factor", 1.0) for info in infos]

    def train(self) -> None:
        buffer = self.rollout_buffer
        n_envs = buffer.rewards.shape[1]
        if self._episode_returns is None:
            self._episode_returns = np.zeros(n_envs)
        risk = self._risk if self._risk is not None else np.ones_like(buffer.rewards)
        self.cvar_lam = self.cvar_lam + self.lam_lr * (self.beta - self.nu)
        estimates, bad, clipped = [], 0, 0
        for j in range(n_envs):
            term = cvar_penalties(
                buffer.rewards[:, j], buffer.values[:, j], buffer.episode_starts[:, j], risk[:, j],
                episode_return=float(self._episode_returns[j]), nu=self.nu, lam=self.cvar_lam, alpha=self.alpha,
                clip_ratio=self.cvar_clip_ratio, delay=self.delay,
            )
            buffer.advantages[:, j] -= term.penalties.astype(buffer.advantages.dtype)
            self._episode_returns[j] = term.episode_return
            estimates.append(term.estimates)
            bad += term.bad_steps
            clipped += term.clipped_steps
        self.nu = float(np.mean(np.concatenate(estimates))) * self.nu_delay
        self.cvar_log.append({"nu": self.nu, "lam": self.cvar_lam, "bad_steps": bad, "clipped_steps": clipped})
        self.logger.record("cvar/nu", self.nu)
        self.logger.record("cvar/lam", self.cvar_lam)
        self.logger.record("cvar/bad_steps", bad)
        super().train()
