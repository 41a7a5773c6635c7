"""TradingRLEnv: Gymnasium conformance, point in time, rewards that match the broker, both action modes."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from gymnasium.utils.env_checker import check_env

from agents.rl.env import BUY, HOLD, SELL, TradingRLEnv
from agents.rl.modulation import ScoreTable
from env.config import BrokerConfig
from env.errors import ConfigError
from env.market import MarketData
from rewards.config import RewardConfig


def bars(close: np.ndarray, start: str = "2022-01-03") -> pd.DataFrame:
    open_ = np.r_[close[0], close[:-1]]
    return pd.DataFrame(
        {"open": open_, "high": np.maximum(open_, close), "low": np.minimum(open_, close), "close": close, "volume": 1.0},
        index=pd.bdate_range(start, periods=len(close)),
    )


def gbm(n: int, seed: int, tickers: tuple[str, ...] = ("A", "B")) -> MarketData:
    rng = np.random.default_rng(seed)
    return MarketData({t: bars(40 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))) for t in tickers})


def test_passes_gymnasium_env_checker_in_both_action_modes() -> None:
    data = gbm(90, 1)
    check_env(TradingRLEnv(data, BrokerConfig(), start=30, end=80, window=5), skip_render_check=True)
    check_env(TradingRLEnv(data, BrokerConfig(), start=30, end=80, action_mode="discrete", reward="finrs"), skip_render_check=True)
    scores = ScoreTable.neutral(data.tickers, len(data))
    check_env(TradingRLEnv(data, BrokerConfig(allow_short=True, max_gross_exposure=2.0), start=30, end=80, scores=scores,
                           modulate=True), skip_render_check=True)


def test_poisoned_future_leaves_observations_up_to_t_unchanged() -> None:
    data = gbm(120, 2)
    cut = 70
    rng = np.random.default_rng(99)
    poisoned = MarketData({
        t: pd.concat([data.bars[t].iloc[: cut + 1], bars(rng.uniform(1, 500, 120 - cut - 1), start="2000-01-03")
                      .set_axis(data.bars[t].index[cut + 1 :])])
        for t in data.tickers
    })
    assert not np.allclose(poisoned.array("A", "close")[cut + 1 :], data.array("A", "close")[cut + 1 :])
    actions = np.random.default_rng(0).uniform(0, 0.5, (200, 2)).astype(np.float32)
    seen = []
    for market in (data, poisoned):
        env = TradingRLEnv(market, BrokerConfig(commission_bps=10), start=40, end=110, window=8, reward="finrs")
        obs, _ = env.reset(seed=0)
        trail = [obs]
        for a in actions[: cut - 40]:
            obs, *_ = env.step(a)
            trail.append(obs)
        assert env.index == cut
        seen.append(np.array(trail))
    np.testing.assert_array_equal(seen[0], seen[1])


def test_equity_rewards_sum_to_log_growth_and_match_the_ledger() -> None:
    data = gbm(80, 3)
    env = TradingRLEnv(data, BrokerConfig(commission_bps=5), start=20, end=70, reward_scale=100.0)
    obs, info = env.reset(seed=0)
    assert info["index"] == 20 and obs.shape == env.observation_space.shape
    start_equity = info["equity"]
    total, terminated, steps = 0.0, False, 0
    rng = np.random.default_rng(1)
    while not terminated:
        obs, reward, terminated, truncated, info = env.step(rng.uniform(0, 0.5, 2).astype(np.float32))
        total += reward
        steps += 1
        assert not truncated and env.observation_space.contains(obs)
    assert steps == 50 and info["index"] == 70
    assert total == pytest.approx(100.0 * math.log(info["equity"] / start_equity))
    assert info["equity"] == env.broker.ledger.equity["equity"].iloc[-1]
    # Fills happen at the next open: every fill is dated one session after its decision.
    fills, orders = env.broker.ledger.fills, env.broker.ledger.orders
    decided = orders.set_index("order_id").loc[fills["order_id"], "decided_index"].to_numpy()
    assert (fills["index"].to_numpy() == decided + 1).all()
    # The last return in the observation is today's close-to-close log return (percent), ticker A first.
    closes = data.array("A", "close")
    assert obs[9] == pytest.approx(100 * math.log(closes[70] / closes[69]), rel=1e-5)
    with pytest.raises(ConfigError, match="episode ended"):
        env.step(np.zeros(2, dtype=np.float32))


def test_discrete_actions_buy_hold_and_sell_the_equal_weight_long() -> None:
    env = TradingRLEnv(gbm(60, 4), BrokerConfig(commission_bps=0), start=20, end=50, action_mode="discrete")
    env.reset(seed=0)
    _, _, _, _, info = env.step(BUY)
    assert info["orders"] == 2
    weights = env.broker.portfolio().weights
    assert weights["A"] == pytest.approx(0.5, abs=0.02) and weights["B"] == pytest.approx(0.5, abs=0.02)
    _, _, _, _, info = env.step(HOLD)
    assert info["orders"] == 0
    env.step(SELL)
    assert env.broker.portfolio().positions == {} or all(q == 0 for q in env.broker.portfolio().positions.values())
    with pytest.raises(ConfigError, match="0 \\(sell\\), 1 \\(hold\\) or 2 \\(buy\\)"):
        env.step(7)


def test_finrs_reward_is_released_when_each_horizon_matures() -> None:
    close = np.array([100.0, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112])
    data = MarketData({"X": bars(close)})
    config = RewardConfig(horizons_days=(1, 3), lam=0.0)
    env = TradingRLEnv(data, BrokerConfig(), start=5, end=12, window=2, action_mode="discrete", reward="finrs",
                       reward_config=config)
    env.reset(seed=0)
    rewards = [env.step(BUY)[1] for _ in range(4)]
    # Decision at 5 (long, weight 1): +1/105 matures at 6; the 3-session part (108-105)/105 at 8.
    # Decision at 6 adds (107-106)/106 at 7 and (109-106)/106 at 9, and so on.
    assert rewards[0] == pytest.approx(1 / 105)
    assert rewards[1] == pytest.approx(1 / 106)
    assert rewards[2] == pytest.approx(1 / 107 + 3 / 105)
    assert rewards[3] == pytest.approx(1 / 108 + 3 / 106)


def test_action_modulation_scales_the_trade_by_the_recommendation() -> None:
    data = gbm(60, 5, tickers=("A",))
    rec = np.full((60, 1), 3)
    rec[20] = 5  # strong buy on the first decision session
    scores = ScoreTable(("A",), rec, np.full((60, 1), 3))
    env = TradingRLEnv(data, BrokerConfig(commission_bps=0, fractional=True, max_position_fraction=1.0), start=20, end=50,
                       scores=scores, modulate=True)
    obs, _ = env.reset(seed=0)
    assert obs[10 + 4] == pytest.approx(1.0)  # (5 - 3) / 2, after 10 returns and 4 indicators
    env.step(np.array([0.5], dtype=np.float32))
    # A buy of 0.5 agreeing strongly: 0.5 * 1.1 = 0.55 of equity at the fill (then marked at the close).
    order = env.broker.ledger.orders.iloc[0]
    assert order["requested"] == pytest.approx(0.55)


def test_bad_arguments_fail_early() -> None:
    data = gbm(40, 6)
    with pytest.raises(ConfigError, match="start"):
        TradingRLEnv(data, BrokerConfig(), start=30, end=50)
    with pytest.raises(ConfigError, match="needs scores"):
        TradingRLEnv(data, BrokerConfig(), start=5, end=30, modulate=True)
    with pytest.raises(ConfigError, match="action_mode"):
        TradingRLEnv(data, BrokerConfig(), start=5, end=30, action_mode="continuous")  # type: ignore[arg-type]
    env = TradingRLEnv(data, BrokerConfig(), start=5, end=30)
    with pytest.raises(ConfigError, match="reset"):
        env.step(np.zeros(2, dtype=np.float32))
    env.reset()
    with pytest.raises(ConfigError, match="finite target weights"):
        env.step(np.array([np.nan, 0.0]))
