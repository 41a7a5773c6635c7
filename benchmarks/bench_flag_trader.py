"""Benchmark of FLAG-Trader (SmolLM2-135M as the PPO policy) on 2 CPU cores.

Measures, in one run:

1. one PPO update over 64 transitions (``epochs`` passes over cached frozen-layer states), next to
   its peer: re-encoding the same 64 prompts through the frozen layers, which an update without
   the cache would pay once per epoch;
2. a full training run over the demo's training window (scenarios/demo.yaml: 30 training
   sessions after 150 warm-up; target <= 15 min);
3. zero-shot vs fine-tuned FLAG-Trader on the test window, next to buy-and-hold, through the
   backtest engine: on the demo market (news signal 0.8) and on backtesting.py's GOOG (real
   daily prices, no news), with the demo's window lengths unless told otherwise.

Usage: python benchmarks/bench_flag_trader.py [--market both|demo|goog] [--iterations 8] [--threads 2]
       [--seed 0] [--goog-test-days 60]
(On a machine shared beyond its cores, ``--threads 1`` is faster: two OpenMP threads spin against each other.)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.config import load_scenario  # noqa: E402
from agents.rl.flag_trader import (  # noqa: E402
    FlagTrader, FlagTraderConfig, collect_rollout, make_optimizer, ppo_update, train_flag_trader,
)
from agents.runtime import load_data, schedule_for  # noqa: E402
from env.baselines import make_strategy  # noqa: E402
from env.config import BrokerConfig  # noqa: E402
from env.engine import run_backtest  # noqa: E402
from env.market import MarketData  # noqa: E402

DEMO = Path(__file__).resolve().parents[1] / "scenarios" / "demo.yaml"


def goog_market() -> MarketData:
    """backtesting.py's GOOG daily bars (2004-2013), shipped in the package."""
    from backtesting.test import GOOG

    frame = GOOG.rename(columns=str.lower)
    return MarketData({"GOOG": frame}, origin="backtesting.test.GOOG")


def time_update(trader: FlagTrader, data: MarketData, broker: BrokerConfig, train_start: int) -> dict[str, float]:
    """One PPO update over 64 transitions (2 envs x 32 sessions ending at the training window's end)."""
    start = train_start - 3
    end = start + 33
    rollout = collect_rollout(trader, data, broker, start, end, torch.Generator().manual_seed(0))
    assert len(rollout.hiddens) == 64
    optimizer = make_optimizer(trader)
    began = time.perf_counter()
    ppo_update(trader, optimizer, rollout, np.random.default_rng(0))
    update_s = time.perf_counter() - began
    ticker = trader.ticker_of(data)
    prompts = []
    for i in range(start, start + 32):
        snap = trader_snapshot(data, broker, i)
        prompts.append(trader.prompt(data.view(i), snap, ticker))
    prompts = prompts * 2
    began = time.perf_counter()
    trader.encode(prompts)
    encode_s = time.perf_counter() - began
    tokens = float(np.mean([len(p) for p in prompts]))
    return {"update_s": update_s, "encode_s": encode_s, "epochs": trader.config.epochs, "prompt_tokens": tokens}


def trader_snapshot(data: MarketData, broker_config: BrokerConfig, i: int):
    from env.broker import Broker

    broker = Broker(data, broker_config)
    broker.step(i)
    return broker.portfolio()


def compare(name: str, data: MarketData, broker: BrokerConfig, config: FlagTraderConfig, train: tuple[int, int],
            test: tuple[int, int], run_dir: Path) -> list[dict[str, object]]:
    """Train on ``train``, evaluate zero-shot, fine-tuned and buy-and-hold on ``test``."""
    began = time.perf_counter()
    log: list[dict] = []
    trained = train_flag_trader(data, config, run_dir / name.split()[0].lower(), broker_config=broker, start=train[0], end=train[1], log=log.append)
    train_s = time.perf_counter() - began
    first, last = log[0], log[-1]
    print(f"[{name}] trained {config.iterations} PPO iterations in {train_s:.0f} s "
          f"(mean episode log-return {first['mean_episode_log_return']:+.4f} -> {last['mean_episode_log_return']:+.4f}, "
          f"buy share {first['buy_share']:.2f} -> {last['buy_share']:.2f})", flush=True)
    rows = []
    zero = FlagTrader(config, loaded=trained.loaded)
    for label, trader in (("zero-shot", zero), ("fine-tuned", trained)):
        strategy = trader.strategy()
        result = run_backtest(data, strategy, broker, start=test[0], end=test[1])
        actions = [d[1] for d in strategy.decisions]
        rows.append({"market": name, "method": f"flag_trader {label}", **pick(result.metrics),
                     "buy/sell/hold": "/".join(str(actions.count(a)) for a in ("buy", "sell", "hold")), "train_s": train_s})
    hold = run_backtest(data, make_strategy("buy_and_hold"), broker, start=test[0], end=test[1])
    rows.append({"market": name, "method": "buy_and_hold", **pick(hold.metrics), "buy/sell/hold": "-", "train_s": 0.0})
    return rows


def pick(metrics: dict[str, float]) -> dict[str, float]:
    return {key: metrics[key] for key in ("sharpe", "cumulative_return", "max_drawdown", "annual_volatility", "exposure")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=FlagTraderConfig().iterations, help="PPO iterations per training run")
    parser.add_argument("--seed", type=int, default=0, help="policy seed (action sampling, minibatch order)")
    parser.add_argument("--goog-test-days", type=int, default=60, help="test sessions on GOOG")
    parser.add_argument("--market", choices=("both", "demo", "goog", "none"), default="both",
                        help="which market(s) to train and test on (none: the update timing only; eval_rl.py puts "
                        "FLAG-Trader on the one table)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the model")
    parser.add_argument("--skip-timing", action="store_true", help="skip the 64-transition update timing")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    scenario = load_scenario(DEMO)
    data = load_data(scenario)
    schedule = schedule_for(scenario, data)
    config = FlagTraderConfig(iterations=args.iterations, seed=args.seed, threads=args.threads)
    run_dir = Path(tempfile.mkdtemp(prefix="bench_flag_"))
    rows: list[dict[str, object]] = []
    timing: dict[str, float] = {}
    if args.market in ("both", "demo"):
        timing = run_demo(config, data, scenario, schedule, run_dir, rows, args.skip_timing)
    if args.market == "none" and not args.skip_timing:
        timing = time_update(FlagTrader(config), data, scenario.broker, schedule.test_start)
        print_timing(timing)
    if args.market in ("both", "goog"):
        goog = goog_market()
        warmup, train_days = scenario.episode.warmup_days, scenario.episode.train_days
        rows += compare("GOOG", goog, scenario.broker, config, (warmup, warmup + train_days),
                        (warmup + train_days, warmup + train_days + args.goog_test_days), run_dir)
    if rows:
        print_table(rows)
    if args.json:
        args.json.write_text(json.dumps({"timing": timing, "rows": rows}, indent=2) + "\n", encoding="utf-8")


def run_demo(config, data, scenario, schedule, run_dir, rows, skip_timing: bool) -> dict[str, float]:
    """Update timing (unless skipped), then train and test on the demo market; appends to ``rows``."""
    timing: dict[str, float] = {}
    if not skip_timing:
        timing = time_update(FlagTrader(config), data, scenario.broker, schedule.test_start)
        print_timing(timing)
    rows += compare("demo (signal 0.8)", data, scenario.broker, config, (schedule.first_day, schedule.test_start),
                    (schedule.test_start, schedule.end_day + 1), run_dir)
    return timing


def print_timing(timing: dict[str, float]) -> None:
    print(f"one PPO update over 64 transitions ({timing['epochs']} epochs, {timing['prompt_tokens']:.0f} prompt tokens on average): "
          f"{timing['update_s']:.1f} s; peer: encoding the same 64 prompts through the frozen layers {timing['encode_s']:.1f} s "
          f"(an uncached update would add that once per epoch: x{(timing['update_s'] + timing['epochs'] * timing['encode_s']) / timing['update_s']:.1f})",
          flush=True)


def print_table(rows: list[dict[str, object]]) -> None:
    print(f"\n{'market':<18} {'method':<24} {'sharpe':>7} {'return':>8} {'max_dd':>8} {'vol':>6} {'expo':>5}  buy/sell/hold")
    for row in rows:
        print(f"{row['market']:<18} {row['method']:<24} {row['sharpe']:>7.2f} {row['cumulative_return']:>+8.2%} "
              f"{row['max_drawdown']:>8.2%} {row['annual_volatility']:>6.2f} {row['exposure']:>5.2f}  {row['buy/sell/hold']}")


if __name__ == "__main__":
    main()
