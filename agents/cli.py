"""The agent-run subcommands of ``run.py``: run, resume, trace, doctor, schema.

Each ``cmd_*`` takes parsed args and returns an exit code; ``register`` adds their parsers.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from env.errors import ConfigError, TradegraphError


def _parse_set(items: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE with a dotted key, e.g. --set seed=3")
        key, value = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    return out


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a scenario through the agent graph (training then test period)")
    p.add_argument("scenario", type=Path, help="scenario YAML, e.g. scenarios/demo.yaml")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config field (dotted path); repeatable")
    p.add_argument("--llm-cache", choices=("off", "record", "replay", "auto"), help="LLM record/replay mode (overrides llm.cache.mode)")
    p.add_argument("--llm-cache-path", type=Path, help="SQLite file of the LLM cache (default: inside the run folder)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(handler=cmd_run)

    p = sub.add_parser("resume", help="resume a run after a crash, kill or exhausted budget")
    p.add_argument("run_id")
    p.add_argument("--runs-dir", type=Path, default=Path("runs"))
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config field (e.g. a larger llm.budget)")
    p.add_argument("--llm-cache", choices=("off", "record", "replay", "auto"))
    p.add_argument("--llm-cache-path", type=Path)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(handler=cmd_resume)

    p = sub.add_parser("trace", help="show a run's agent traces readably")
    p.add_argument("run_id")
    p.add_argument("--runs-dir", type=Path, default=Path("runs"))
    p.add_argument("--day", help="session index or ISO date")
    p.add_argument("--agent", help="node/agent name (substring), e.g. direction, news_analyst, risk")
    p.add_argument("--json", action="store_true", help="print raw JSON lines")
    p.set_defaults(handler=cmd_trace)

    p = sub.add_parser("doctor", help="check the LLM backends a scenario uses (reachable, key, model, capabilities)")
    p.add_argument("scenario", type=Path, help="scenario YAML, e.g. scenarios/demo_openai.yaml")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config field (dotted path); repeatable")
    p.set_defaults(handler=cmd_doctor)

    p = sub.add_parser("schema", help="print the JSON schema of scenario files")
    p.set_defaults(handler=cmd_schema)


def _report(outcome) -> int:
    from agents.runtime import metrics_table

    if not outcome.finished:
        print(f"run {outcome.run_id}: {outcome.message}", file=sys.stderr)
        return 3
    print(f"\nrun {outcome.run_id} finished: {outcome.run_dir}")
    print("test-period metrics (agent vs baselines):")
    print(metrics_table(outcome.metrics, outcome.baselines))
    warning = (outcome.metrics.get("contamination") or {}).get("warning")
    if warning:
        print(f"\nWARNING (contamination): {warning}")
    print(f"\ntraces: python run.py trace {outcome.run_id} --agent direction")
    return 0


def _used_backends(config) -> set[str]:
    from agents.state import AgentName

    return {config.llm.backend_name(agent.value) for agent in AgentName}


def cmd_doctor(args: argparse.Namespace) -> int:
    from agents.config import load_scenario
    from agents.llm.doctor import diagnose, format_table

    try:
        config = load_scenario(args.scenario, _parse_set(args.set))
    except TradegraphError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    checks = diagnose(config.llm, _used_backends(config))
    print(format_table(checks))
    failed = [check for check in checks if check.status == "FAIL"]
    print(f"\n{len(failed)} check(s) failed" if failed else "\nall checks passed")
    return 1 if failed else 0


def cmd_run(args: argparse.Namespace) -> int:
    from agents.config import load_scenario
    from agents.llm.doctor import require_keys

    try:
        config = load_scenario(args.scenario, _parse_set(args.set))
        require_keys(config.llm, _used_backends(config))  # before data generation, model loading, even imports
        from agents.runtime import execute

        outcome = execute(config, resume=False, progress=not args.no_progress, cache_mode=args.llm_cache,
                          cache_path=args.llm_cache_path)
    except TradegraphError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return _report(outcome)


def cmd_resume(args: argparse.Namespace) -> int:
    from agents.llm.doctor import require_keys
    from agents.runtime import execute, load_run_config

    try:
        overrides = _parse_set(args.set)
        config = load_run_config(args.runs_dir, args.run_id, overrides)
        require_keys(config.llm, _used_backends(config))  # before the checkpoint, data and models are loaded
        # A resumed run keeps its id and folder even when --set changed, say, the budget.
        outcome = execute(config, resume=True, run_id=args.run_id, progress=not args.no_progress,
                          cache_mode=args.llm_cache, cache_path=args.llm_cache_path)
    except TradegraphError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return _report(outcome)


def cmd_trace(args: argparse.Namespace) -> int:
    from agents.trace import filter_traces, format_trace, read_traces

    run_dir = Path(args.runs_dir) / args.run_id
    if not run_dir.is_dir():
        print(f"error: no run {args.run_id!r} under {args.runs_dir}", file=sys.stderr)
        return 2
    records = list(filter_traces(read_traces(run_dir), day=args.day, agent=args.agent))
    if not records:
        print("no trace records match", file=sys.stderr)
        return 1
    for rec in records:
        print(json.dumps(rec) if args.json else format_trace(rec))
        if not args.json:
            print()
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from agents.config import scenario_json_schema

    print(json.dumps(scenario_json_schema(), indent=2))
    return 0
