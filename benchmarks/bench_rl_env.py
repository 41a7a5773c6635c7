"""RL environment speed: TradingRLEnv steps against a bare Gymnasium loop, and PPO's training time.

Three loops over the same synthetic GBM market, in one process:

- *bare*: a minimal ``gymnasium.Env`` with the same spaces whose ``step`` returns a precomputed
  observation (the floor any Gymnasium env pays: the call, the tuple, the info dict);
- *ours, weight*: ``TradingRLEnv`` with a new random target weight every step (an order and a
  fill every session: the worst case);
- *ours, discrete*: random buy / hold / sell (most steps send no order).

Then (unless ``--ppo-steps 0``) stable-baselines3 PPO learns for ``--ppo-steps`` steps on the
weight environment with ``torch.set_num_threads(--threads)``.

Run: ``nice -n 10 .venv/bin/python benchmarks/bench_rl_env.py [--steps 200000] [--ppo-steps 100000]``
Targets: a step of ours <= 20 us; PPO 100k steps <= 3 min on 2 cores.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd

from agents.rl.env import TradingRLEnv
from env.config import BrokerConfig
from env.market import MarketData


def make_market(sessions: int, seed: int) -> MarketData:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0003, 0.01, sessions)))
    open_ = np.r_[100.0, close[:-1]]
    index = pd.bdate_range("1990-01-01", periods=sessions, name="date")
    frame = pd.DataFrame({"open": open_, "high": np.maximum(open_, close), "low": np.minimum(open_, close),
                          "close": close, "volume": 1e6}, index=index)
    return MarketData({"GBM": frame}, origin="bench gbm")


class BareEnv(gym.Env):
    """The same spaces, no market: step hands back a precomputed observation."""

    def __init__(self, like: TradingRLEnv, length: int) -> None:
        self.observation_space = like.observation_space
        self.action_space = like.action_space
        self._rows = np.zeros((length + 1, like.observation_space.shape[0]), dtype=np.float32)
        self._length = length
        self._t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self._t = 0
        return self._rows[0], {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        self._t += 1
        return self._rows[self._t], 0.0, self._t >= self._length, False, {"index": self._t}


def time_loop(env: gym.Env, actions: list[Any], steps: int) -> float:
    """Microseconds per step over ``steps`` steps (resets included, as in training)."""
    env.reset(seed=0)
    step, reset = env.step, env.reset
    t0 = time.perf_counter()
    for i in range(steps):
        if step(actions[i % len(actions)])[2]:
            reset()
    return (time.perf_counter() - t0) / steps * 1e6


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=2520, help="Length of the synthetic market (sessions).")
    parser.add_argument("--steps", type=int, default=200_000, help="Steps timed per loop.")
    parser.add_argument("--ppo-steps", type=int, default=100_000, help="PPO training steps to time (0 skips).")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for PPO (1: see the README, 2 threads on a shared 2-core machine ran 7-15x slower).")
    args = parser.parse_args(argv)

    data = make_market(args.sessions, seed=0)
    config = BrokerConfig(commission_bps=10.0)
    t0 = time.perf_counter()
    weight_env = TradingRLEnv(data, config, start=30, end=args.sessions - 1)
    build_s = time.perf_counter() - t0
    discrete_env = TradingRLEnv(data, config, start=30, end=args.sessions - 1, action_mode="discrete")
    bare = BareEnv(weight_env, args.sessions - 31)
    rng = np.random.default_rng(1)
    weights = [rng.uniform(0, 1, 1).astype(np.float32) for _ in range(4096)]
    choices = [int(c) for c in rng.integers(0, 3, 4096)]

    rows = [
        ("bare gymnasium loop", time_loop(bare, weights, args.steps)),
        ("TradingRLEnv, weight (trades every step)", time_loop(weight_env, weights, args.steps)),
        ("TradingRLEnv, discrete (random)", time_loop(discrete_env, choices, args.steps)),
    ]
    bare_us = rows[0][1]
    print(f"environment over {args.sessions} sessions, {args.steps} steps per loop; feature table built in {build_s:.2f} s")
    print(f"{'loop':<44}{'us/step':>10}{'x bare':>10}{'over bare us':>14}")
    for name, us in rows:
        print(f"{name:<44}{us:>10.2f}{us / bare_us:>10.1f}{us - bare_us:>14.2f}")
    worst = max(us for _, us in rows[1:])
    print(f"target: a step <= 20 us -> {'met' if worst <= 20 else 'NOT met'} (worst {worst:.2f} us)")

    if args.ppo_steps:
        import torch
        from stable_baselines3 import PPO

        torch.set_num_threads(args.threads)
        model = PPO("MlpPolicy", weight_env, seed=0, device="cpu", verbose=0)
        t0 = time.perf_counter()
        model.learn(total_timesteps=args.ppo_steps)
        seconds = time.perf_counter() - t0
        print(f"\nPPO (stable-baselines3, MlpPolicy, n_steps 2048) {args.ppo_steps} steps, {args.threads} torch threads: "
              f"{seconds:.1f} s ({seconds / args.ppo_steps * 1e6:.0f} us/step)")
        limit = 180.0 * args.ppo_steps / 100_000
        print(f"target: 100k steps <= 180 s -> {'met' if seconds <= limit else 'NOT met'}")


if __name__ == "__main__":
    main()
