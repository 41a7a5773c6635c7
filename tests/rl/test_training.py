"""Real stable-baselines3 training on tiny markets; run folders whose models a rerun reuses."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from agents.config import apply_overrides, parse_scenario
from agents.rl.config import RLConfig
from agents.rl.env import TradingRLEnv
from agents.rl.modulation import ScoreTable
from agents.rl.runner import STRATEGIES, StrategySpec, TrainJob, evaluate, run_rl
from env.config import BrokerConfig
from env.market import MarketData
from tests.rl.test_env import bars

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("strategy", "steps"), [("ppo", 1536), ("a2c", 384), ("dqn", 384)])
def test_a_few_hundred_steps_learn_to_be_long_in_a_steady_up_trend(tmp_path: Path, strategy: str, steps: int) -> None:
    data = MarketData({"UP": bars(100 * 1.004 ** np.arange(120))})
    broker = BrokerConfig(commission_bps=0, fractional=True)
    spec = STRATEGIES[strategy]

    def make_env(start: int, end: int) -> TradingRLEnv:
        return TradingRLEnv(data, broker, start=start, end=end, window=5, action_mode=spec.action_mode, reward_scale=100.0)

    rl = RLConfig(timesteps=steps, n_steps=128, seeds=(0,), window=5, learning_rate=3e-3, min_trade_weight=0.0)
    policy, reused = spec.trainer(TrainJob(make_env, 34, 90, 0, rl, tmp_path / strategy))
    assert not reused and (tmp_path / f"{strategy}.zip").is_file()
    env = make_env(90, 119)
    obs, _ = env.reset()
    held, done = [], False
    while not done:
        action, _ = policy.predict(obs, deterministic=True)
        obs, _, done, _, _ = env.step(action)
        held.append(env.broker.portfolio().weights.get("UP", 0.0))
    # Flat would be 0 and a coin flip 0.5; the obvious policy holds (nearly) everything.
    assert np.mean(held) > 0.8
    equity, _ = evaluate(policy, make_env(90, 119))
    assert equity.iloc[-1] / equity.iloc[0] > 1.08  # buy-and-hold over 29 sessions: 1.004 ** 29 = 1.123


def tiny_scenario(tmp_path: Path) -> object:
    raw = {
        "name": "tinyrl", "seed": 3, "runs_dir": str(tmp_path / "runs"), "cache_dir": str(REPO / ".cache" / "tradegraph"),
        "data": {"kind": "synthetic", "tickers": ["ACME"], "days": 90, "seed": 3, "signal": 0.8, "news_per_day": 1.5},
        "episode": {"warmup_days": 40, "train_days": 20, "test_days": 30},
    }
    return parse_scenario(apply_overrides(raw, {}), "tiny rl scenario")


def test_run_rl_writes_the_run_folder_and_a_rerun_reuses_the_models(tmp_path: Path) -> None:
    scenario = tiny_scenario(tmp_path)
    rl = RLConfig(timesteps=128, n_steps=64, seeds=(0, 1))
    first = run_rl(scenario, "cppo", rl)
    assert first.reused == {0: False, 1: False}
    for name in ("config.json", "metrics.json", "baselines.json", "equity.csv", "fills.csv", "models/seed0.zip", "models/seed1.zip"):
        assert (first.run_dir / name).is_file(), name
    equity = pd.read_csv(first.run_dir / "equity.csv", index_col="date")
    assert list(equity.columns) == ["seed_0", "seed_1"] and len(equity) == 30  # the test period, sessions 60..89
    assert equity.index[0] == first.equity[0].index[0].strftime("%Y-%m-%d")
    metrics = json.loads((first.run_dir / "metrics.json").read_text())
    assert set(metrics["seeds"]) == {"0", "1"} and "cvar_5" in metrics["mean"]
    again = run_rl(scenario, "cppo", rl)
    assert again.run_id == first.run_id and again.reused == {0: True, 1: True}
    assert again.metrics == first.metrics
    assert all(again.equity[s].equals(first.equity[s]) for s in (0, 1))
    # a reused model's test pass is the saved one (FLAG-Trader's costs a model pass per session):
    # an edited saved curve shows in the rerun's metrics; without the saved curves it is evaluated again
    equity.iloc[-1, 1] *= 1.1
    equity.to_csv(first.run_dir / "equity.csv")
    edited = run_rl(scenario, "cppo", rl).metrics
    assert edited[0] == first.metrics[0]
    assert 1 + edited[1]["cumulative_return"] == pytest.approx((1 + first.metrics[1]["cumulative_return"]) * 1.1)
    (first.run_dir / "equity.csv").unlink()
    assert run_rl(scenario, "cppo", rl).metrics == first.metrics


def test_cppo_deepseek_reads_scores_and_modulates_actions(tmp_path: Path) -> None:
    scenario = tiny_scenario(tmp_path)
    rec = np.full((90, 1), 5)  # a strong buy every day
    scores = ScoreTable(("ACME",), rec, np.full((90, 1), 5))
    run = run_rl(scenario, "cppo_deepseek", RLConfig(timesteps=128, n_steps=64, seeds=(0,)), scores=scores)
    from agents.rl.cppo import CPPO

    model = CPPO.load(run.run_dir / "models" / "seed0.zip", device="cpu")
    # Two scores per ticker are in the state: 10 returns + 4 indicators + 2 scores + weight + cash.
    assert model.observation_space.shape == (18,)
    assert model.cvar_log and model.cvar_log[-1]["lam"] > 0.01


def test_a_registered_engine_strategy_is_evaluated_on_the_same_test_sessions(tmp_path: Path, monkeypatch) -> None:
    from env.baselines import make_strategy

    seen = []

    def trainer(job: TrainJob):
        seen.append((job.train_start, job.train_end, job.data is not None))
        return make_strategy("buy_and_hold"), False

    monkeypatch.setitem(STRATEGIES, "hold_test", StrategySpec("hold_test", trainer))
    run = run_rl(tiny_scenario(tmp_path), "hold_test", RLConfig(timesteps=64, seeds=(0,)))
    assert seen == [(34, 59, True)]  # trained before the test start (session 60)
    assert run.metrics[0] == run.baseline  # buy-and-hold through the engine over sessions 60..89


def test_more_seeds_reuse_the_models_already_trained(tmp_path: Path) -> None:
    scenario = tiny_scenario(tmp_path)
    one = run_rl(scenario, "a2c", RLConfig(timesteps=64, seeds=(0,)))
    two = run_rl(scenario, "a2c", RLConfig(timesteps=64, seeds=(0, 1)))
    assert two.run_dir == one.run_dir and two.reused == {0: True, 1: False}
    assert two.metrics[0] == one.metrics[0]
