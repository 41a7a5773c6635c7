"""Memorization probe: the same scenario with real names and dates, then with ``anonymize`` on.

    .venv/bin/python benchmarks/bench_memorization.py scenarios/real_sp500.yaml \\
        [--set episode.test_days=60 ...] [--runs-dir DIR]

Both runs share seed, data, costs and every setting but ``anonymize.enabled``. A model that has
memorized what the market did trades better on real names and dates than on aliases (ASSET_A,
dates moved into the 2200s): the gap (real minus anonymized) estimates what it recalls rather
than reads. A gap near zero says the results do not rest on recall; it does not prove the model
saw nothing. Buy-and-hold is printed for scale. Prints a table; writes nothing outside the runs.
A run already finished in ``--runs-dir`` (same config, so the same run id) is read, not rerun.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml  # noqa: E402

from agents.config import load_scenario  # noqa: E402
from agents.runtime import execute  # noqa: E402

KEYS = ("cumulative_return", "sharpe", "max_drawdown", "win_rate", "exposure")


def run_pair(scenario: Path, overrides: dict[str, Any], runs_dir: Path) -> dict[str, dict[str, float]]:
    """Test-period metrics of the agent with real and with anonymized prompts, and of buy-and-hold."""
    results: dict[str, dict[str, float]] = {}
    for label, enabled in (("real", False), ("anonymized", True)):
        config = load_scenario(scenario, {**overrides, "anonymize.enabled": enabled, "runs_dir": str(runs_dir)})
        done = Path(runs_dir) / config.run_id()
        if (done / "metrics.json").is_file():
            metrics = json.loads((done / "metrics.json").read_text())
            baselines = json.loads((done / "baselines.json").read_text())
        else:
            outcome = execute(config, resume=False, progress=False)
            if not outcome.finished:
                raise SystemExit(f"{label} run {outcome.run_id} stopped: {outcome.message}")
            metrics, baselines = outcome.metrics, outcome.baselines
        results[label] = {key: float(metrics.get(key, float("nan"))) for key in KEYS}
        results["buy_and_hold"] = {key: float(baselines["buy_and_hold"].get(key, float("nan"))) for key in KEYS}
    results["gap (real - anonymized)"] = {key: results["real"][key] - results["anonymized"][key] for key in KEYS}
    return results


def format_table(results: dict[str, dict[str, float]]) -> str:
    columns = ("real", "anonymized", "gap (real - anonymized)", "buy_and_hold")
    header = f"{'metric':<20}" + "".join(f"{c:>26}" for c in columns)
    rows = [header, "-" * len(header)]
    rows += [f"{key:<20}" + "".join(f"{results[c][key]:>26.4f}" for c in columns) for key in KEYS]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", type=Path)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override, repeatable")
    parser.add_argument("--runs-dir", type=Path, help="where both runs go (default: a temporary folder)")
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set {item!r}: expected KEY=VALUE")
        overrides[key] = yaml.safe_load(value)
    with tempfile.TemporaryDirectory(prefix="tg-memorization-") as tmp:
        results = run_pair(args.scenario, overrides, args.runs_dir or Path(tmp))
    print(format_table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
