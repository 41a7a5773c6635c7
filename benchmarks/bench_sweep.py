"""Ray overhead of `run.py sweep`: the same 20 baseline cells (buy-and-hold and MACD on the demo
scenario, seeds 100-109) run on a local Ray cluster and one by one in this process.

    .venv/bin/python benchmarks/bench_sweep.py [--seeds 10] [--num-cpus 2]

Target: Ray overhead per cell <= 1 s, where overhead = (Ray wall time - in-process wall time) / cells,
both measured here, in the same run. Ray's wall time includes starting the local cluster
(`ray.init`) and the workers' imports; the table also shows it without the start-up.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.sweep import SweepConfig, run_sweep  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _sweep(seeds: int, num_cpus: int) -> SweepConfig:
    return SweepConfig.model_validate({
        "name": "bench", "scenario": str(REPO / "scenarios" / "demo.yaml"), "seeds": list(range(100, 100 + seeds)),
        "strategies": ["buy_and_hold", "macd"], "resources": {"num_cpus": num_cpus, "cpus_per_cell": 1},
    })


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10, help="seeds; cells = 2 x seeds")
    parser.add_argument("--num-cpus", type=int, default=2, help="CPUs of the local Ray cluster")
    args = parser.parse_args()
    sweep = _sweep(args.seeds, args.num_cpus)
    scenario = REPO / "scenarios" / "demo.yaml"
    cells = 2 * args.seeds
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("inline", "ray"):
            log = io.StringIO()
            started = time.perf_counter()
            table = run_sweep(sweep, scenario, out_dir=Path(tmp) / mode, inline=mode == "inline", stream=log)
            wall = time.perf_counter() - started
            lines = (Path(tmp) / mode / "cells.log").read_text().split("\n")
            stamps = [float(line.split()[0]) for line in lines if line]
            first_start = min(float(line.split()[0]) for line in lines if " start " in line)
            results[mode] = {"wall": wall, "after_first_start": max(stamps) - first_start,
                             "done": int((table["status"] == "done").sum()), "cell_s": float(table["wall_s"].mean())}
    inline, ray = results["inline"], results["ray"]
    print(f"{cells} cells (buy_and_hold, macd x {args.seeds} seeds, demo scenario), local Ray cluster of {args.num_cpus} CPUs\n")
    print(f"{'mode':<10}{'cells done':>12}{'wall s':>10}{'s/cell':>10}{'mean cell s':>14}{'from 1st start s':>19}")
    for mode, r in results.items():
        print(f"{mode:<10}{r['done']:>12}{r['wall']:>10.2f}{r['wall'] / cells:>10.3f}{r['cell_s']:>14.3f}{r['after_first_start']:>19.2f}")
    overhead = (ray["wall"] - inline["wall"]) / cells
    steady = (ray["after_first_start"] - inline["after_first_start"]) / cells
    print(f"\nRay overhead per cell: {overhead:+.3f} s with cluster start-up, {steady:+.3f} s after the first task started "
          f"(target <= 1 s): {'PASS' if overhead <= 1.0 else 'FAIL'}")
    print(f"ratio Ray / in-process wall time: {ray['wall'] / inline['wall']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
