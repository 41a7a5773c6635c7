"""Does the agent learn? The demo scenario on several seeds with informative news and with
pure-noise news; test-period Sharpe of the agent and of buy-and-hold per seed.

    .venv/bin/python benchmarks/eval_synthetic.py [--seeds 10] [--signal 0.8] [--out results.json]

Targets on the embedded default: agent Sharpe above buy-and-hold on >= 7 of 10 informative seeds;
on noise seeds, mean agent Sharpe no worse than mean buy-and-hold Sharpe minus 0.2.
A run with no position all test period has an undefined Sharpe; it is counted as 0 (flat).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.config import load_scenario  # noqa: E402
from agents.runtime import execute  # noqa: E402
from agents.trace import read_traces  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _sharpe(metrics: dict[str, Any]) -> float:
    value = metrics.get("sharpe")
    return 0.0 if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def run_one(scenario: Path, runs: Path, seed: int, signal: float, extra: dict[str, Any]) -> dict[str, Any]:
    overrides = {"seed": seed, "data.seed": seed, "data.signal": signal, "runs_dir": str(runs), "name": f"eval-s{seed}-k{signal:g}"}
    overrides.update(extra)
    config = load_scenario(scenario, overrides)
    started = time.perf_counter()
    outcome = execute(config, resume=False, progress=False)
    traces = list(read_traces(outcome.run_dir))
    test_start = min(r["day"] for r in traces if r.get("phase") == "test")
    # The adapters the test period traded with: the last fit at or before its first session, then
    # each refit inside it. Shrink 0 means the news carried no weight (no out-of-fold skill).
    fits = sorted(((r["day"], r["adapter_fit"]) for r in traces if r.get("adapter_fit")), key=lambda f: f[0])
    before = [fit for day, fit in fits if day <= test_start]
    used = before[-1:] + [fit for day, fit in fits if day > test_start]
    first_fit = used[0] if used else {}
    fills = (outcome.run_dir / "fills.csv").read_text().strip().splitlines()[1:]
    return {
        "seed": seed,
        "signal": signal,
        "agent_sharpe": _sharpe(outcome.metrics),
        "bh_sharpe": _sharpe(outcome.baselines["buy_and_hold"]),
        "agent_return": outcome.metrics["cumulative_return"],
        "bh_return": outcome.baselines["buy_and_hold"]["cumulative_return"],
        "exposure": outcome.metrics.get("exposure"),
        "adapter_evidence": first_fit.get("evidence"),
        "adapter_shrink": first_fit.get("shrink"),
        "adapter_shrink_max": max((fit["shrink"] for fit in used), default=None),
        "test_fills": len(fills),
        "seconds": time.perf_counter() - started,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", type=Path, default=REPO / "scenarios" / "demo.yaml")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=100)
    parser.add_argument("--signal", type=float, default=0.8, help="signal of the informative runs")
    parser.add_argument("--only", choices=("informative", "noise"), help="run only one of the two groups")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra scenario override")
    parser.add_argument("--out", type=Path, help="write per-seed results as JSON")
    args = parser.parse_args()
    import yaml

    extra = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        groups = {"informative": (args.signal,), "noise": (0.0,)}.get(args.only or "", (args.signal, 0.0))
        for signal in groups:
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                row = run_one(args.scenario, Path(tmp), seed, signal, extra)
                rows.append(row)
                print(
                    f"signal={signal:<4g} seed={seed:<4d} agent Sharpe {row['agent_sharpe']:+7.2f}  B&H Sharpe {row['bh_sharpe']:+7.2f}  "
                    f"agent CR {row['agent_return']:+.2%}  B&H CR {row['bh_return']:+.2%}  exposure {row['exposure'] or 0:.2f}  "
                    f"adapter z {row['adapter_evidence'] or 0:.1f} shrink {row['adapter_shrink'] or 0:.2f} "
                    f"(max in test {row['adapter_shrink_max'] or 0:.2f})  "
                    f"fills {row['test_fills']}  ({row['seconds']:.0f} s)",
                    flush=True,
                )
                if args.out:
                    args.out.write_text(json.dumps(rows, indent=2))
    info = [r for r in rows if r["signal"] > 0]
    noise = [r for r in rows if r["signal"] == 0]
    print()
    if info:
        wins = sum(r["agent_sharpe"] > r["bh_sharpe"] for r in info)
        print(f"informative news: agent Sharpe > B&H on {wins}/{len(info)} seeds (target >= 7/10)")
    if noise:
        gap = statistics.mean(r["agent_sharpe"] for r in noise) - statistics.mean(r["bh_sharpe"] for r in noise)
        print(f"noise news: mean agent Sharpe - mean B&H Sharpe = {gap:+.2f} (target >= -0.2)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
