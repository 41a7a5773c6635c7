"""``TradingRLEnv``: a Gymnasium environment on the project's broker and point-in-time views.

Timing (the broker's). ``reset`` steps a fresh ``Broker`` to session ``start`` and observes its
close. Each ``step(action)`` decides at the close of the current session ``t``, submits the
orders, steps the broker to ``t + 1`` (fills at that open with ``fill="next_open"``, costs and
hard limits as configured) and observes the close of ``t + 1``. The episode terminates after
the step that reaches session ``end`` (inclusive), or when equity is gone.

Point in time. Every price the environment reads goes through ``data.view(i)`` for a session
``i`` it has reached: the feature table is built once at construction by walking the views
from session 0 to ``end``, row ``i`` from ``view(i)`` only, so replacing everything after ``i``
with garbage leaves the observations up to ``i`` unchanged (tests/rl/test_env.py checks it).
Scores (``ScoreTable``) must obey the same rule; ``agents.rl.deepseek`` builds them from
``view(i).news``.

Observation (float32, bounded by +-1000), per ticker (ticker-major):

- the last ``window`` close-to-close log returns in percent (oldest first; 0 before the data);
- four indicators: Wilder RSI(14) as (rsi - 50) / 50, MACD(12, 26, 9) histogram in percent of the
  close, close / SMA(20) - 1 in percent, and the 20-session volatility of log returns in percent;
- with ``scores``: (recommendation - 3) / 2 and (risk - 3) / 2 of the session;

then the signed position weight of every ticker and the cash fraction of equity.

Actions. ``action_mode="weight"``: a Box of target weights per ticker in [0, 1] ([-1, 1] when
shorting is allowed), scaled down to ``max_gross_exposure`` when their absolute sum exceeds it.
``action_mode="discrete"``: ``Discrete(3)`` applied to every ticker alike: 0 sell (flat, or short
when allowed), 1 hold (no order), 2 buy (the equal-weight long). With ``modulate=True`` (needs
``scores``) the trade (target minus current weight) is scaled by FinRL-DeepSeek's action
modulation (``agents.rl.modulation``). A weight change below ``min_trade_weight`` sends no
order, so holding a position does not churn commissions.

Rewards. ``reward="equity"``: ``reward_scale * log(equity[t+1] / equity[t])``. ``reward="finrs"``:
the FinRS multi-timescale momentum reward (``rewards.momentum.RewardTracker``): each decision
``(direction, |weight|)`` of each ticker is recorded at ``t``; the reward of a step is
``reward_scale`` times the sum of the horizon parts that mature at ``t + 1`` (each part becomes
known only on its own session, so the reward is delayed, never looked ahead).

Info: ``index`` and ``date`` of the observed session, ``equity``, ``cash``; after a step also
``action_scaled``, ``orders`` (orders sent) and, with ``scores``, ``risk_factor`` (the
position-weighted risk weight that CPPO-DeepSeek scales its CVaR term by).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import gymnasium as gym
import numpy as np

from agents.rl.modulation import ScoreTable, modulate_trade, risk_factor
from env.broker import Broker, TargetWeightOrder
from env.config import BrokerConfig
from env.errors import ConfigError
from env.indicators import MacdLine, WilderRsi
from env.market import MarketData
from rewards.config import RewardConfig
from rewards.momentum import DecisionRecord, RewardTracker

ActionMode = Literal["weight", "discrete"]
RewardMode = Literal["equity", "finrs"]
SELL, HOLD, BUY = 0, 1, 2
INDICATORS = ("rsi14", "macd_hist_pct", "sma20_gap_pct", "vol20_pct")
_OBS_BOUND = 1000.0
_RSI_PERIOD, _MACD_FAST, _MACD_SLOW, _MACD_SIGNAL, _SMA, _VOL = 14, 12, 26, 9, 20, 20


def point_in_time_features(data: MarketData, tickers: tuple[str, ...], last: int) -> tuple[np.ndarray, np.ndarray]:
    """(log returns in percent, indicators) for sessions 0..last, each row read from ``data.view(i)``.

    Returns arrays of shape (last + 1, n) and (last + 1, n, 4). Indicators are 0 while warming up.
    RSI and MACD are ``env.indicators``' streaming implementations (the baselines' own), fed one
    close per session.
    """
    n = len(tickers)
    returns = np.zeros((last + 1, n))
    indicators = np.zeros((last + 1, n, len(INDICATORS)))
    for k, ticker in enumerate(tickers):
        rsi, macd = WilderRsi(_RSI_PERIOD), MacdLine(_MACD_FAST, _MACD_SLOW, _MACD_SIGNAL)
        prev = None
        for i in range(last + 1):
            view = data.view(i)
            close = view.close(ticker)
            if prev is not None:
                returns[i, k] = 100.0 * math.log(close / prev)
            prev = close
            row = indicators[i, k]
            value = rsi.update(close)
            if value is not None:
                row[0] = (value - 50.0) / 50.0
            hist = macd.update(close)
            if hist is not None:
                row[1] = 100.0 * hist / close
            if i + 1 >= _SMA:
                row[2] = 100.0 * (close / view.series(ticker, "close", lookback=_SMA).mean() - 1.0)
            if i >= _VOL:
                row[3] = float(returns[i - _VOL + 1 : i + 1, k].std(ddof=1))
    return returns, indicators


class TradingRLEnv(gym.Env):
    """Gymnasium environment over ``Broker`` and ``MarketView`` (see the module docstring)."""

    metadata = {"render_modes": []}

    def __init__(
        self,
        data: MarketData,
        broker_config: BrokerConfig,
        *,
        start: int,
        end: int,
        window: int = 10,
        action_mode: ActionMode = "weight",
        reward: RewardMode = "equity",
        scores: ScoreTable | None = None,
        modulate: bool = False,
        reward_config: RewardConfig | None = None,
        reward_scale: float = 1.0,
        min_trade_weight: float = 0.0,
    ) -> None:
        n_sessions = len(data)
        if window < 1:
            raise ConfigError(f"window={window} must be at least 1")
        if not 0 <= start < end < n_sessions:
            raise ConfigError(f"need 0 <= start ({start}) < end ({end}) < sessions in the data ({n_sessions})")
        if action_mode not in ("weight", "discrete"):
            raise ConfigError(f"action_mode={action_mode!r}: choose 'weight' or 'discrete'")
        if reward not in ("equity", "finrs"):
            raise ConfigError(f"reward={reward!r}: choose 'equity' or 'finrs'")
        if modulate and scores is None:
            raise ConfigError("modulate=True needs scores (a ScoreTable) to modulate actions by")
        if scores is not None and (scores.tickers != data.tickers or len(scores) < end + 1):
            raise ConfigError(
                f"scores cover tickers {list(scores.tickers)} and {len(scores)} sessions; the env needs "
                f"{list(data.tickers)} and at least {end + 1}"
            )
        if not 0.0 <= min_trade_weight < 1.0 or not reward_scale > 0:
            raise ConfigError(f"min_trade_weight={min_trade_weight} must be in [0, 1) and reward_scale={reward_scale} > 0")
        self.data = data
        self.broker_config = broker_config
        self.start, self.end, self.window = start, end, window
        self.action_mode, self.reward_mode = action_mode, reward
        self.scores, self.modulate = scores, modulate
        self.reward_config = reward_config or RewardConfig()
        self.reward_scale, self.min_trade_weight = reward_scale, min_trade_weight
        self.tickers = data.tickers
        n = len(self.tickers)
        self._n = n
        self._static = self._build_static(end)
        self._closes = [tuple(data.view(i).close(t) for t in self.tickers) for i in range(start, end + 1)]
        self._long_weight = min(broker_config.max_position_fraction, broker_config.max_gross_exposure / n)
        low = -1.0 if broker_config.allow_short else 0.0
        if action_mode == "weight":
            self.action_space = gym.spaces.Box(low=low, high=1.0, shape=(n,), dtype=np.float32)
        else:
            self.action_space = gym.spaces.Discrete(3)
        dim = self._static.shape[1] + n + 1
        self.observation_space = gym.spaces.Box(low=-_OBS_BOUND, high=_OBS_BOUND, shape=(dim,), dtype=np.float32)
        self._dim, self._static_dim, self._low = dim, self._static.shape[1], low
        self._broker: Broker | None = None
        self._tracker: RewardTracker | None = None
        self._t = start

    # -- construction ----------------------------------------------------------------------
    def _build_static(self, last: int) -> np.ndarray:
        """Rows start..end of the per-session part of the observation (features, then scores)."""
        returns, indicators = point_in_time_features(self.data, self.tickers, last)
        w = self.window
        padded = np.vstack([np.zeros((w - 1, self._n)), returns])  # row i + w - 1 of padded is session i
        rows = []
        for i in range(self.start, last + 1):
            parts = []
            for k in range(self._n):
                parts.append(padded[i : i + w, k])
                parts.append(indicators[i, k])
                if self.scores is not None:
                    parts.append([(self.scores.recommendation[i, k] - 3) / 2.0, (self.scores.risk[i, k] - 3) / 2.0])
            rows.append(np.concatenate(parts))
        return np.clip(np.asarray(rows), -_OBS_BOUND, _OBS_BOUND).astype(np.float32)

    # -- gymnasium API ---------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """A fresh broker stepped to session ``start``. (The market is fixed; ``seed`` only seeds ``np_random``.)"""
        super().reset(seed=seed)
        self._t = self.start
        self._broker = Broker(self.data, self.broker_config)
        self._broker.step(self.start)
        self._tracker = RewardTracker(self.reward_config) if self.reward_mode == "finrs" else None
        return self._observation(), self._info()

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Decide ``action`` at the close of the current session and advance one session."""
        broker = self._broker
        if broker is None:
            raise ConfigError("call reset() before step()")
        if self._t >= self.end:
            raise ConfigError(f"the episode ended at session {self.end}; call reset()")
        t = self._t
        snap = broker.portfolio()
        weights = snap.weights
        current = [weights.get(ticker, 0.0) for ticker in self.tickers]
        targets, scaled = self._targets(action, current)
        if targets is not None and self.modulate:
            assert self.scores is not None
            trade = modulate_trade(self.scores.recommendation[t], np.asarray(targets) - current)
            targets = np.clip(np.asarray(current) + trade, self._low, 1.0).tolist()
        orders = []
        if targets is not None:
            threshold = self.min_trade_weight
            for ticker, now, target in zip(self.tickers, current, targets):
                if abs(target - now) > threshold or (target == 0.0 and now != 0.0):
                    orders.append(TargetWeightOrder(ticker, target))
        if orders:
            broker.submit(orders, t)
        if self._tracker is not None:
            held = current if targets is None else targets
            closes = self._closes[t - self.start]
            for k, ticker in enumerate(self.tickers):
                w = held[k]
                if w != 0.0:
                    self._tracker.record(DecisionRecord(f"{t}:{ticker}", ticker, t, closes[k], math.copysign(1.0, w), abs(w)))
        before = snap.equity
        self._t = t = t + 1
        broker.step(t)
        after = broker.portfolio().equity
        if self._tracker is not None:
            matured = self._tracker.release(t, dict(zip(self.tickers, self._closes[t - self.start])))
            reward = self.reward_scale * sum(c.reward_part for c in matured)
        else:
            reward = self.reward_scale * math.log(after / before) if after > 0 and before > 0 else -self.reward_scale * 10.0
        terminated = t >= self.end or after <= 0
        info = self._info()
        info["action_scaled"] = scaled
        info["orders"] = len(orders)
        if self.scores is not None:
            # CPPO-DeepSeek's risk modulation reads it: positions after this step, risk of the new session.
            info["risk_factor"] = risk_factor(self.position_values(), self.scores.risk[t])
        return self._observation(), float(reward), terminated, False, info

    # -- internals -------------------------------------------------------------------------
    def _targets(self, action: Any, current: list[float]) -> tuple[list[float] | None, bool]:
        """Target weights for ``action`` (None: hold) and whether they were scaled to the gross limit."""
        if self.action_mode == "discrete":
            try:
                choice = int(action)
            except (TypeError, ValueError):
                raise ConfigError(f"a discrete action must be 0 (sell), 1 (hold) or 2 (buy), got {action!r}") from None
            if choice == HOLD:
                return None, False
            if choice == BUY:
                return [self._long_weight] * self._n, False
            if choice == SELL:
                return [-self._long_weight if self.broker_config.allow_short else 0.0] * self._n, False
            raise ConfigError(f"a discrete action must be 0 (sell), 1 (hold) or 2 (buy), got {action!r}")
        # Plain floats: numpy calls on a 1-3 element vector cost more than the arithmetic.
        values = action.tolist() if isinstance(action, np.ndarray) else np.asarray(action, dtype=float).tolist()
        if isinstance(values, float):
            values = [values]
        if len(values) != self._n or isinstance(values[0], list):
            raise ConfigError(f"action must be {self._n} finite target weights, got {action!r}")
        low = self._low
        weights = []
        for v in values:
            if not math.isfinite(v):
                raise ConfigError(f"action must be {self._n} finite target weights, got {action!r}")
            weights.append(low if v < low else 1.0 if v > 1.0 else float(v))
        gross = sum(abs(v) for v in weights)
        limit = self.broker_config.max_gross_exposure
        if gross > limit:
            return [v * (limit / gross) for v in weights], True
        return weights, False

    def _observation(self) -> np.ndarray:
        assert self._broker is not None
        snap = self._broker.portfolio()
        obs = np.empty(self._dim, dtype=np.float32)
        k = self._static_dim
        obs[:k] = self._static[self._t - self.start]
        weights = snap.weights
        # Weights stay within the gross limit (<= 2) and cash within a few equities: no clipping needed.
        dynamic = [weights.get(ticker, 0.0) for ticker in self.tickers]
        dynamic.append(snap.cash / snap.equity if snap.equity > 0 else 0.0)
        obs[k:] = dynamic
        return obs

    def _info(self) -> dict[str, Any]:
        assert self._broker is not None
        snap = self._broker.portfolio()
        return {"index": self._t, "date": self.data.dates[self._t].isoformat(), "equity": snap.equity, "cash": snap.cash}

    # -- read-only helpers -----------------------------------------------------------------
    @property
    def index(self) -> int:
        """The session whose close the last observation describes."""
        return self._t

    @property
    def broker(self) -> Broker:
        """The current episode's broker (its ledger has every order and fill)."""
        if self._broker is None:
            raise ConfigError("call reset() before reading the broker")
        return self._broker

    def position_values(self) -> np.ndarray:
        """Signed value of each ticker's position at the last mark (for CPPO's risk factor)."""
        snap = self.broker.portfolio()
        return np.array([snap.weights.get(t, 0.0) * snap.equity for t in self.tickers])

    def risk_scores(self) -> np.ndarray:
        """The LLM risk scores (1-5) of the current session; all 3 without scores."""
        if self.scores is None:
            return np.full(self._n, 3, dtype=np.int64)
        return self.scores.risk[self._t].astype(np.int64)
