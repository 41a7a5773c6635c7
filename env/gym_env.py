"""A Gymnasium environment over the same broker: actions are target weights, reward is log growth.

Each step decides at the close of session ``t`` (the observation), submits one
``TargetWeightOrder`` per ticker, lets the broker fill at the open of ``t + 1`` (or at the close
of ``t`` with ``fill="same_close"``) and mark at the close of ``t + 1``. The reward is
``log(equity[t+1] / equity[t])``. An episode runs from session ``window`` to the last session.

Observation (float32, shape ``(window * n + n,)``): the last ``window`` close-to-close log
returns of each ticker (ticker-major, oldest first), then the current signed weights.
Action (float32, shape ``(n,)``): target weights in ``[0, 1]`` (``[-1, 1]`` when shorting is
allowed). If their absolute sum exceeds ``max_gross_exposure`` they are scaled down to it
(``info["action_scaled"]`` says so); the broker still enforces every hard limit.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np

from env.broker import Broker, TargetWeightOrder
from env.config import BrokerConfig
from env.errors import ConfigError
from env.market import MarketData

_OBS_BOUND = 1000.0


class TradingEnv(gym.Env):
    """Gymnasium-compatible trading environment (see the module docstring)."""

    metadata = {"render_modes": []}

    def __init__(self, data: MarketData, broker_config: BrokerConfig, window: int = 20) -> None:
        if window < 1:
            raise ConfigError(f"window={window} must be at least 1")
        if len(data) < window + 2:
            raise ConfigError(f"window={window} needs at least {window + 2} sessions; the data has {len(data)}")
        self.data = data
        self.broker_config = broker_config
        self.window = window
        self.tickers = data.tickers
        n = len(self.tickers)
        closes = np.stack([data.array(t, "close") for t in self.tickers])
        log_returns = np.zeros_like(closes)
        log_returns[:, 1:] = np.diff(np.log(closes), axis=1)
        # Row t holds what is known at the close of t, so reading it is point-in-time by construction.
        self._log_returns = log_returns
        low = 0.0 if not broker_config.allow_short else -1.0
        self.action_space = gym.spaces.Box(low=low, high=1.0, shape=(n,), dtype=np.float32)
        # Finite bounds (a daily log return never reaches +-1000; weights are clipped to them).
        self.observation_space = gym.spaces.Box(low=-_OBS_BOUND, high=_OBS_BOUND, shape=(window * n + n,), dtype=np.float32)
        self._broker: Broker | None = None
        self._t = window

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a new episode at session ``window`` with a fresh broker. (The dynamics are deterministic.)"""
        super().reset(seed=seed)
        self._t = self.window
        self._broker = Broker(self.data, self.broker_config)
        self._broker.step(self._t)
        return self._observation(), self._info()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Target ``action`` weights at the close of the current session and advance one session."""
        if self._broker is None:
            raise ConfigError("call reset() before step()")
        weights = np.asarray(action, dtype=float).reshape(-1)
        if weights.shape != (len(self.tickers),) or not np.isfinite(weights).all():
            raise ConfigError(f"action must be {len(self.tickers)} finite target weights, got {action!r}")
        weights = np.clip(weights, self.action_space.low, self.action_space.high)
        gross = float(np.abs(weights).sum())
        limit = self.broker_config.max_gross_exposure
        scaled = gross > limit
        if scaled:
            weights = weights * (limit / gross)
        before = self._broker.portfolio().equity
        self._broker.submit([TargetWeightOrder(t, float(w)) for t, w in zip(self.tickers, weights)], self._t)
        self._t += 1
        self._broker.step(self._t)
        after = self._broker.portfolio().equity
        reward = math.log(after / before) if after > 0 and before > 0 else -math.inf
        terminated = self._t >= len(self.data) - 1 or after <= 0
        info = self._info()
        info["action_scaled"] = scaled
        return self._observation(), float(reward), terminated, False, info

    def _observation(self) -> np.ndarray:
        assert self._broker is not None
        t = self._t
        returns = self._log_returns[:, t - self.window + 1 : t + 1].reshape(-1)
        weights = self._broker.portfolio().weights
        current = np.array([weights.get(ticker, 0.0) for ticker in self.tickers])
        return np.clip(np.concatenate([returns, current]), -_OBS_BOUND, _OBS_BOUND).astype(np.float32)

    def _info(self) -> dict[str, Any]:
        assert self._broker is not None
        snap = self._broker.portfolio()
        return {"date": self.data.dates[self._t].isoformat(), "index": self._t, "equity": snap.equity, "cash": snap.cash}

    @property
    def broker(self) -> Broker:
        """The current episode's broker (its ledger has every order and fill)."""
        if self._broker is None:
            raise ConfigError("call reset() before reading the broker")
        return self._broker
