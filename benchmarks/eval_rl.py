"""Every method on one table: the RL traders, the classic baselines and (optionally) the tradegraph agent.

Two markets, the same test period and broker for every method:

- ``demo``: the README demo's synthetic market (scenarios/demo.yaml: news signal 0.8, 240
  sessions, test = the last 60). The LLM scores (FinRL-DeepSeek variants) come from the
  scenario's LLM (the local SmolLM2 by default) through a shared record/replay cache.
- ``goog``: backtesting.py's GOOG daily bars (2004-08-19 .. 2013-03-01, shipped in the package);
  training before 2011, test from the first session of 2011. It has no news, so the DeepSeek
  variants are not run on it.

Seeds are training seeds (and the random baseline's seed); the market of each dataset is fixed
(one synthetic draw: scoring its news with the CPU model takes minutes). Each cell is the mean
over seeds with a 95 % percentile-bootstrap CI of that mean (``env.stats.mean_ci``). CVaR is the historical 5 % CVaR of daily returns, as a loss.

Run: ``nice -n 10 .venv/bin/python benchmarks/eval_rl.py [--datasets demo,goog] [--seeds 0,1,2]
[--timesteps 20000] [--methods ppo,a2c,...,flag_trader] [--agent [--agent-seeds 7] [--agent-train-days 30]]``. Models, curves and the LLM cache go under
``--runs-dir`` (default runs/eval_rl), so a rerun reuses them and trains nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout, not another one's editable install

from agents.config import ScenarioConfig, apply_overrides, load_scenario, parse_scenario
from agents.rl.config import RLConfig
from agents.rl.runner import RL_STRATEGY_NAMES, STRATEGIES, equity_metrics, run_rl, score_table_for, windows
from agents.runtime import load_data
from env.baselines import make_strategy
from env.engine import run_backtest
from env.market import MarketData
from env.stats import mean_ci

REPO = Path(__file__).resolve().parents[1]
COLUMNS = (("sharpe", "Sharpe"), ("cumulative_return", "return"), ("max_drawdown", "max DD"),
           ("annual_volatility", "vol (ann.)"), ("cvar_5", "CVaR 5%"))
CLASSIC = ("buy_and_hold", "random", "macd", "rsi", "sma_cross")


def bootstrap_ci(values: list[float]) -> tuple[float, float]:
    """95 % percentile-bootstrap CI of the mean over seeds (``env.stats.mean_ci``; non-finite values dropped)."""
    return mean_ci([v for v in values if math.isfinite(v)], n_boot=2000)


def goog_scenario(runs_dir: Path, overrides: dict[str, Any] | None = None) -> ScenarioConfig:
    """GOOG from backtesting.py as a CSV scenario: train until 2010, test from 2011 to the end."""
    from backtesting.test import GOOG

    path = runs_dir / "GOOG.csv"
    if not path.is_file():
        runs_dir.mkdir(parents=True, exist_ok=True)
        GOOG.rename_axis("Date").to_csv(path)
    first_test = int(np.searchsorted(GOOG.index, np.datetime64(dt.date(2011, 1, 3))))
    raw = {
        "name": "goog", "seed": 0, "runs_dir": str(runs_dir), "cache_dir": str(REPO / ".cache" / "tradegraph"),
        "data": {"kind": "csv", "prices": str(path), "ticker": "GOOG"},
        "broker": {"initial_cash": 100000, "commission_bps": 10, "slippage_bps": 2},
        "episode": {"warmup_days": 34, "train_days": first_test - 34},
    }
    return parse_scenario(apply_overrides(raw, overrides or {}), "eval_rl goog")


def classic_rows(data: MarketData, scenario: ScenarioConfig, seeds: list[int], test_start: int, end: int) -> dict[str, list[dict]]:
    rows: dict[str, list[dict]] = {}
    for name in CLASSIC:
        per_seed = []
        for seed in seeds if name == "random" else seeds[:1]:
            strategy = make_strategy(name, seed=seed) if name == "random" else make_strategy(name)
            result = run_backtest(data, strategy, scenario.broker, start=test_start, end=end + 1)
            per_seed.append(equity_metrics(result.equity))
        rows[name] = per_seed
    return rows


def agent_rows(make: Callable[[dict[str, Any]], ScenarioConfig], seeds: list[int], runs_dir: Path,
               test: tuple[int, int], train_days: int | None = None) -> list[dict]:
    """The tradegraph agent (agents.runtime.execute) once per seed; resumes a run already on disk.

    ``make(overrides)`` builds the scenario with the seed set through validation, so every seed the
    run derives (baselines, local backends) follows it. ``train_days`` shortens the agent's
    training episode (the sessions before it become warm-up history: point-in-time memory and
    adapter examples, no decisions) so a long market stays affordable on a CPU; the test period
    ``test`` = (first, last session) must come out identical to every other row's."""
    import pandas as pd

    from agents.runtime import execute, schedule_for
    from env.errors import ResumeError

    out = []
    for seed in seeds:
        overrides: dict[str, Any] = {"seed": seed, "runs_dir": str(runs_dir / "agent")}
        if train_days is not None:
            overrides.update({"episode.warmup_days": test[0] - train_days, "episode.train_days": train_days})
        config = make(overrides)
        sched = schedule_for(config, load_data(config))
        if (sched.test_start, sched.end_day) != test:
            raise ValueError(f"the agent's test period {sched.test_start}..{sched.end_day} differs from the table's {test[0]}..{test[1]}")
        try:
            outcome = execute(config, resume=False, progress=False)
        except ResumeError:
            outcome = execute(config, resume=True, progress=False)
        equity = pd.read_csv(outcome.run_dir / "equity.csv", index_col=0)["equity"]
        out.append(equity_metrics(equity))
    return out


def score_check(data: MarketData, scores: Any, last: int) -> str:
    """How the LLM's recommendations relate to the synthetic news' true sentiment (evaluation only)."""
    truth = data.truth
    if truth is None or not truth.item_sentiment:
        return "no ground truth"
    days, recs, sentiment = 0, [], []
    for i in range(last + 1):
        items = data.view(i).news(data.tickers[0], since=i - 1 if i else None)
        known = [truth.item_sentiment[n.id] for n in items if n.id in truth.item_sentiment]
        if known:
            days += 1
            recs.append(int(scores.recommendation[i, 0]))
            sentiment.append(float(np.mean(known)))
    if days < 3:
        return f"{days} news days"
    corr = float(np.corrcoef(recs, sentiment)[0, 1]) if np.std(recs) > 0 else math.nan
    counts = np.bincount(np.asarray(recs), minlength=6)[1:].tolist()
    risks = np.bincount(scores.risk[: last + 1, 0].astype(int), minlength=6)[1:].tolist()
    return (f"{days} news days; corr(recommendation, true sentiment) = {corr:.3f}; recommendation counts 1..5 {counts}; "
            f"risk counts 1..5 (all sessions) {risks}")


def format_table(title: str, rows: dict[str, list[dict]]) -> str:
    """Mean and bootstrap CI over seeds per method. A seed that never traded has an undefined Sharpe
    (a flat curve); it counts as 0, as in eval_synthetic, so a mean never drops the seeds that stayed out."""
    lines = [title, f"{'method':<22}{'n':>3}" + "".join(f"{label:>26}" for _, label in COLUMNS)]
    flat_notes = []
    for name, per_seed in rows.items():
        cells = []
        flat = sum(1 for m in per_seed if not math.isfinite(m["sharpe"]) and m["annual_volatility"] == 0)
        if flat:
            flat_notes.append(f"{name}: {flat} of {len(per_seed)} never traded (flat curve, Sharpe counted as 0)")
        for key, _ in COLUMNS:
            values = [0.0 if key == "sharpe" and not math.isfinite(m[key]) and m["annual_volatility"] == 0 else m[key]
                      for m in per_seed]
            mean = float(np.nanmean(values)) if any(math.isfinite(v) for v in values) else math.nan
            lo, hi = bootstrap_ci(values)
            cells.append(f"{mean:>8.3f} [{lo:>7.3f},{hi:>7.3f}]")
        lines.append(f"{name:<22}{len(per_seed):>3}" + "".join(f"{c:>26}" for c in cells))
    return "\n".join(lines + [f"  note: {n}" for n in flat_notes])


def evaluate_dataset(name: str, make: Callable[[dict[str, Any]], ScenarioConfig], args: argparse.Namespace,
                     runs_dir: Path) -> str:
    scenario = make({"runs_dir": str(runs_dir)})
    data = load_data(scenario)
    rl = RLConfig(timesteps=args.timesteps, seeds=tuple(args.seeds), threads=args.threads)
    train_start, train_end, test_start, end = windows(scenario, data, rl)
    header = (f"== {name}: {data.tickers[0]}, train sessions {train_start}..{train_end} ({data.dates[train_start]} .. "
              f"{data.dates[train_end]}), test {test_start}..{end} ({data.dates[test_start]} .. {data.dates[end]}); "
              f"{args.timesteps} training steps per seed, seeds {args.seeds}")
    print(header, flush=True)
    rows: dict[str, list[dict]] = {}
    notes = []
    has_news = len(data.news) > 0
    scores = None
    if has_news and any(STRATEGIES[m].scores != "none" for m in args.methods):
        t0 = time.perf_counter()
        scores, stats = score_table_for(STRATEGIES["cppo_deepseek"], scenario, data, runs_dir, end,
                                        cache_path=runs_dir / "llm_cache.sqlite")
        notes.append(f"LLM scores: {stats} in {time.perf_counter() - t0:.0f} s; {score_check(data, scores, end)}")
        print(notes[-1], flush=True)
    for method in args.methods:
        if STRATEGIES[method].scores != "none" and not has_news:
            notes.append(f"{method}: skipped (no news in this dataset)")
            continue
        t0 = time.perf_counter()
        method_rl = rl
        if method.startswith("flag_trader"):
            # FLAG-Trader's own settings enter only its run id: the other methods keep their trained models.
            method_rl = rl.model_copy(update={"flag_trader": {"iterations": args.flag_iterations,
                                                              "train_sessions": args.flag_train_sessions}})
            if args.flag_seeds:
                method_rl = method_rl.model_copy(update={"seeds": tuple(args.flag_seeds)})
            if method == "flag_trader_zero_shot":  # untrained and greedy: every seed gives the same curve
                method_rl = method_rl.model_copy(update={"seeds": method_rl.seeds[:1]})
        run = run_rl(scenario, method, method_rl, data=data, runs_dir=runs_dir, scores=scores,
                     log=lambda message: print("  " + message, flush=True))
        rows[method] = [run.metrics[s] for s in method_rl.seeds]
        trained = [s for s, r in run.reused.items() if not r]
        notes.append(f"{method}: {time.perf_counter() - t0:.0f} s ({'trained seeds ' + str(trained) if trained else 'all models reused'})")
    rows.update(classic_rows(data, scenario, list(args.seeds), test_start, end))
    if args.agent:
        rows["tradegraph"] = agent_rows(make, list(args.agent_seeds or args.seeds), runs_dir, (test_start, end),
                                        args.agent_train_days)
    table = format_table(header, rows)
    return table + "\n" + "\n".join(f"  note: {n}" for n in notes)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="demo,goog", help="Comma list of demo, goog.")
    parser.add_argument(
        "--methods", default=",".join(m for m in RL_STRATEGY_NAMES if not m.startswith("flag_trader")),
        help="Comma list of RL strategies (default: all but flag_trader and flag_trader_zero_shot, which run SmolLM2 "
        "over every session: minutes per seed).",
    )
    parser.add_argument("--seeds", default="0,1,2", help="Comma list of training seeds.")
    parser.add_argument("--flag-iterations", type=int, default=8, help="FLAG-Trader's PPO iterations per seed.")
    parser.add_argument("--flag-seeds", default="", help="Comma list of FLAG-Trader's seeds (default: --seeds); its test "
                        "pass costs a model pass per session, so fewer seeds on a long test period.")
    parser.add_argument("--flag-train-sessions", type=int, default=30,
                        help="FLAG-Trader trains on the last this-many sessions before the test (the demo's training "
                        "window: 30); each PPO iteration costs a full-model pass per session and env.")
    parser.add_argument("--timesteps", type=int, default=20_000, help="Training steps per seed and method.")
    parser.add_argument("--threads", type=int, default=1, help="torch threads while training.")
    parser.add_argument("--agent", action="store_true", help="Also run the tradegraph agent per seed (slow on CPU).")
    parser.add_argument("--agent-seeds", default="", help="Comma list of agent seeds (default: --seeds).")
    parser.add_argument("--agent-train-days", type=int, default=None,
                        help="Shorten the agent's training episode to this many sessions (earlier ones become warm-up "
                        "history); the test period stays the table's.")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs/eval_rl"), help="Models, curves and the LLM cache.")
    args = parser.parse_args(argv)
    args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    args.agent_seeds = [int(s) for s in args.agent_seeds.split(",") if s.strip()]
    args.flag_seeds = [int(s) for s in args.flag_seeds.split(",") if s.strip()]
    args.methods = [m for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(args.methods) - set(RL_STRATEGY_NAMES))
    if unknown:
        parser.error(f"unknown methods {unknown}; choose from {list(RL_STRATEGY_NAMES)}")
    datasets: dict[str, Callable[[dict[str, Any]], ScenarioConfig]] = {
        "demo": lambda overrides: load_scenario(REPO / "scenarios" / "demo.yaml", overrides),
        "goog": lambda overrides: goog_scenario(args.runs_dir, overrides),
    }
    tables = []
    for name in args.datasets.split(","):
        tables.append(evaluate_dataset(name, datasets[name], args, args.runs_dir))
        print("\n" + tables[-1] + "\n", flush=True)
    print("\n\n".join(tables))


if __name__ == "__main__":
    main()
