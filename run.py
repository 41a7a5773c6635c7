"""tradegraph command line: ``python run.py <command> ...``.

Each command is one ``_cmd_<name>(args) -> int`` function plus one ``_add_<name>(subparsers)``
parser block registered in ``COMMANDS``. Nothing happens at import time.

    python run.py backtest --prices FILE.csv [--ticker T] --strategy sma_cross \\
        --param fast=10 --param slow=30 --fee-bps 10 --out DIR
    python run.py backtest --scenario scenarios/X.yaml --strategy macd --out DIR
    python run.py backtest --scenario scenarios/X.yaml --strategy ppo --param timesteps=20000 --out DIR
    python run.py run scenarios/demo.yaml [--set seed=3] [--llm-cache auto|record|replay|off]
    python run.py resume RUN_ID [--set llm.budget.max_usd=5]
    python run.py trace RUN_ID [--day D] [--agent A]
    python run.py schema > docs/scenario.schema.json
    python run.py sweep scenarios/sweeps/learning_eval.yaml [--address ADDR]
    python run.py report RUN_ID | python run.py report --sweep runs/sweeps/NAME

Bad input exits with code 2 and a message naming the flag.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

METRIC_ORDER = (
    "cumulative_return", "annual_return", "sharpe", "sortino", "annual_volatility",
    "max_drawdown", "calmar", "win_rate", "turnover", "exposure",
)


class CLIError(Exception):
    """Bad command-line input; ``main`` prints it and returns exit code 2."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of exiting, so ``main(argv)`` can be called in-process."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise CLIError(f"{self.prog}: {message}")


# -- backtest -------------------------------------------------------------------------------
def _add_backtest(subparsers: Any) -> None:
    p = subparsers.add_parser("backtest", help="Run a baseline strategy through the backtest engine.")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--prices", type=Path, help="Daily OHLCV CSV (Date, Open, High, Low, Close, Volume).")
    source.add_argument("--scenario", type=Path, help="Scenario YAML: its data and broker sections are used.")
    p.add_argument("--ticker", help="Ticker name for --prices (default: the file name's stem, upper case).")
    p.add_argument(
        "--strategy", required=True,
        help="Baseline: buy_and_hold, random, macd, rsi or sma_cross; or an RL trader (needs --scenario): "
        "ppo, a2c, dqn, cppo, ppo_deepseek, cppo_deepseek, flag_trader, flag_trader_zero_shot (RL settings via --param, e.g. timesteps=20000 or flag_trader.iterations=4).",
    )
    p.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE",
        help="Strategy parameter, repeatable (e.g. --param fast=10 --param slow=30).",
    )
    p.add_argument("--fee-bps", type=float, help="Commission per side in basis points (overrides the config).")
    p.add_argument("--out", type=Path, required=True, help="Output directory for metrics.json, equity.csv, fills.csv, equity.png.")
    p.add_argument("--progress", action="store_true", help="Show a progress bar.")
    p.set_defaults(handler=_cmd_backtest)


def _parse_params(items: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CLIError(f"--param {item!r}: expected KEY=VALUE, e.g. --param fast=10")
        params[key.strip()] = value.strip()
    return params


def _load_backtest_inputs(args: argparse.Namespace) -> tuple[Any, Any, int]:
    """(MarketData, BrokerConfig, seed) from --prices or --scenario."""
    from env.config import BrokerConfig
    from env.errors import DataError, TradegraphError
    from env.market import MarketData

    if args.prices is not None:
        from env.sources import load_prices_csv

        if not args.prices.is_file():
            raise CLIError(f"--prices: file {args.prices} does not exist")
        ticker = args.ticker or args.prices.stem.upper()
        try:
            frame = load_prices_csv(args.prices, ticker)
            data = MarketData({ticker: frame}, origin=str(args.prices))
        except DataError as exc:
            raise CLIError(f"--prices: {exc}") from exc
        return data, BrokerConfig(), 0
    if args.ticker is not None:
        raise CLIError("--ticker only applies to --prices (a scenario names its own tickers)")
    from agents.config import load_scenario
    from env.sources import load_market

    try:
        scenario = load_scenario(args.scenario)
    except TradegraphError as exc:
        raise CLIError(f"--scenario: {exc}") from exc
    try:
        data = load_market(scenario.data, scenario.cache_dir)
    except TradegraphError as exc:
        raise CLIError(f"--scenario {args.scenario}: data: {exc}") from exc
    return data, scenario.broker, scenario.seed


def _format(value: float) -> str:
    return "nan" if not math.isfinite(value) else f"{value:.4f}"


def _cmd_backtest(args: argparse.Namespace) -> int:
    from env.baselines import make_strategy
    from env.engine import run_backtest
    from env.errors import ConfigError
    from env.plot import plot_equity

    params: dict[str, Any] = _parse_params(args.param)
    from agents.rl.runner import RL_STRATEGY_NAMES

    if args.strategy in RL_STRATEGY_NAMES:  # RL traders train on the scenario first (agents/rl/cli.py)
        from agents.rl.cli import cmd_backtest_rl

        return cmd_backtest_rl(args, params)
    data, broker_config, seed = _load_backtest_inputs(args)
    if args.fee_bps is not None:
        if not 0 <= args.fee_bps <= 1000:
            raise CLIError(f"--fee-bps: {args.fee_bps} is outside 0..1000")
        broker_config = broker_config.model_copy(update={"commission_bps": args.fee_bps})
    if args.strategy == "random" and "seed" not in params:
        params["seed"] = seed
    try:
        strategy = make_strategy(args.strategy, **params)
        benchmark = make_strategy("buy_and_hold")
    except ConfigError as exc:
        flag = "--strategy" if "unknown strategy" in str(exc) else "--param"
        raise CLIError(f"{flag}: {exc}") from exc

    result = run_backtest(data, strategy, broker_config, progress=args.progress)
    baseline = run_backtest(data, benchmark, broker_config)

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    # JSON has no NaN: undefined metrics (e.g. Sharpe of a flat curve) are written as null.
    metrics = {k: (v if math.isfinite(v) else None) for k, v in result.metrics.items()}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    equity = result.equity.rename("equity")
    equity.index = equity.index.strftime("%Y-%m-%d")
    equity.index.name = "date"
    equity.to_csv(out / "equity.csv", header=True)
    result.fills.to_csv(out / "fills.csv", index=False)
    plot_equity(
        result.equity, out / "equity.png", benchmark=baseline.equity,
        title=f"{args.strategy} on {', '.join(data.tickers)}", label=args.strategy,
    )

    print(f"{'metric':<20}{args.strategy:>14}{'buy_and_hold':>14}")
    for key in METRIC_ORDER:
        print(f"{key:<20}{_format(result.metrics[key]):>14}{_format(baseline.metrics[key]):>14}")
    print(f"fills: {len(result.fills)}   orders: {len(result.orders)}   output: {out}")
    return 0


def _add_agent_commands(subparsers: Any) -> None:
    """run, resume, trace and schema: the agent graph's commands (agents/cli.py)."""
    from agents.cli import register

    register(subparsers)


def _add_eval_commands(subparsers: Any) -> None:
    """sweep and report: evaluation at scale (agents/cli_eval.py)."""
    from agents.cli_eval import register

    register(subparsers)


COMMANDS: tuple[Callable[[Any], None], ...] = (_add_backtest, _add_agent_commands, _add_eval_commands)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one subparser per entry of ``COMMANDS``."""
    parser = _Parser(prog="run.py", description="tradegraph: multi-agent LLM trading framework.")
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in COMMANDS:
        add(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``) and run the command; returns the exit code."""
    # Idle OpenMP threads should sleep, not spin: torch runs beside other work on 2 cores. Only takes
    # effect if torch is not imported yet (true for `python run.py ...`); an explicit setting wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return int(args.handler(args))
    except CLIError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
