"""TradingEnv: Gymnasium conformance, rewards that match the broker's equity, limits on actions."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from gymnasium.utils.env_checker import check_env

from env.config import BrokerConfig
from env.errors import ConfigError
from env.gym_env import TradingEnv
from env.market import MarketData


def gbm(n: int, seed: int, tickers: tuple[str, ...] = ("A", "B")) -> MarketData:
    rng = np.random.default_rng(seed)
    frames = {}
    for t in tickers:
        close = 40 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
        open_ = np.r_[40, close[:-1]]
        frames[t] = pd.DataFrame(
            {"open": open_, "high": np.maximum(open_, close), "low": np.minimum(open_, close), "close": close, "volume": 1.0},
            index=pd.bdate_range("2022-01-03", periods=n),
        )
    return MarketData(frames)


def test_passes_gymnasium_env_checker() -> None:
    env = TradingEnv(gbm(80, 1), BrokerConfig(), window=10)
    check_env(env, skip_render_check=True)
    short = TradingEnv(gbm(80, 1), BrokerConfig(allow_short=True, max_gross_exposure=2.0), window=5)
    check_env(short, skip_render_check=True)
    assert short.action_space.low.tolist() == [-1.0, -1.0]


def test_episode_rewards_sum_to_log_equity_growth() -> None:
    data = gbm(60, 2)
    env = TradingEnv(data, BrokerConfig(commission_bps=5), window=10)
    obs, info = env.reset(seed=0)
    assert obs.shape == (10 * 2 + 2,) and info["index"] == 10
    start_equity = info["equity"]
    rewards, terminated, steps = [], False, 0
    rng = np.random.default_rng(0)
    while not terminated:
        obs, reward, terminated, truncated, info = env.step(rng.uniform(0, 0.5, 2).astype(np.float32))
        rewards.append(reward)
        steps += 1
        assert not truncated and env.observation_space.contains(obs)
    assert steps == len(data) - 1 - 10
    assert sum(rewards) == pytest.approx(math.log(info["equity"] / start_equity))
    equity = env.broker.ledger.equity["equity"]
    assert info["equity"] == equity.iloc[-1]
    # The observation is point in time: its last return is today's close-to-close log return.
    closes = data.array("B", "close")
    assert obs[19] == pytest.approx(math.log(closes[-1] / closes[-2]), rel=1e-5)


def test_actions_above_gross_limit_are_scaled() -> None:
    env = TradingEnv(gbm(40, 3), BrokerConfig(max_gross_exposure=1.0), window=5)
    env.reset(seed=1)
    _, _, _, _, info = env.step(np.array([1.0, 1.0], dtype=np.float32))
    assert info["action_scaled"] is True
    weights = env.broker.portfolio().weights
    assert sum(abs(w) for w in weights.values()) <= 1.0 + 1e-9
    assert weights["A"] == pytest.approx(weights["B"], abs=0.05)
    with pytest.raises(ConfigError, match="finite target weights"):
        env.step(np.array([np.nan, 0.0]))


def test_window_longer_than_data_is_refused() -> None:
    with pytest.raises(ConfigError, match="window=50"):
        TradingEnv(gbm(20, 4), BrokerConfig(), window=50)
