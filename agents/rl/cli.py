"""``run.py backtest --scenario S --strategy ppo|a2c|dqn|cppo|ppo_deepseek|cppo_deepseek|flag_trader|flag_trader_zero_shot``.

``--param KEY=VALUE`` sets ``RLConfig`` fields (``--param timesteps=20000 --param seeds=0,1,2``);
``--param flag_trader.iterations=4`` sets a FLAG-Trader field (``FlagTraderConfig``).
Models, curves and metrics go to the run folder under the scenario's ``runs_dir`` (a rerun with
the same config reuses its models and LLM answers); ``--out`` gets metrics.json, equity.csv and
fills.csv of the run as well.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
from typing import Any

from pydantic import ValidationError

from agents.rl.config import RLConfig
from env.errors import TradegraphError

_ROWS = ("sharpe", "cumulative_return", "max_drawdown", "annual_volatility", "cvar_5")


def rl_config_from_params(params: dict[str, str]) -> RLConfig:
    """``RLConfig`` from ``--param`` strings (``seeds`` as a comma list); ``ValueError`` naming the bad field."""
    import yaml

    raw: dict[str, Any] = {k: v for k, v in params.items() if not k.startswith("flag_trader.")}
    flag = {k.removeprefix("flag_trader."): yaml.safe_load(v) for k, v in params.items() if k.startswith("flag_trader.")}
    if flag:
        raw["flag_trader"] = flag
    if "seeds" in raw:
        raw["seeds"] = [int(s) for s in str(raw["seeds"]).split(",") if s.strip()]
    try:
        return RLConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"RL parameters: {problems} (fields: {sorted(RLConfig.model_fields)})") from exc


def cmd_backtest_rl(args: argparse.Namespace, params: dict[str, str]) -> int:
    """Train and evaluate one RL strategy on ``--scenario``; prints per-seed and mean test metrics."""
    from agents.config import load_scenario
    from agents.rl.runner import run_rl

    if args.scenario is None:
        print(f"error: --strategy {args.strategy} trains on a scenario's training period; pass --scenario", file=sys.stderr)
        return 2
    try:
        rl = rl_config_from_params(params)
        scenario = load_scenario(args.scenario)
        if args.fee_bps is not None:
            scenario = scenario.model_copy(update={"broker": scenario.broker.model_copy(update={"commission_bps": args.fee_bps})})
        run = run_rl(scenario, args.strategy, rl, log=lambda message: print(message, flush=True))
    except (TradegraphError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    for name in ("metrics.json", "equity.csv", "fills.csv"):
        shutil.copy(run.run_dir / name, args.out / name)
    mean = run.mean_metrics()
    print(f"\n{args.strategy} on {args.scenario}, test period, {len(rl.seeds)} seed(s); run folder {run.run_dir}")
    print(f"{'metric':<20}{'mean over seeds':>16}{'buy_and_hold':>14}")
    for key in _ROWS:
        print(f"{key:<20}{_fmt(mean[key]):>16}{_fmt(run.baseline[key]):>14}")
    return 0


def _fmt(value: float) -> str:
    return "nan" if not math.isfinite(value) else f"{value:.4f}"
