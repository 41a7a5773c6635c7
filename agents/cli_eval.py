"""The evaluation subcommands of ``run.py``: sweep and report.

    python run.py sweep SWEEP.yaml [--out DIR] [--address ADDR] [--inline] [--seeds 100,101] [--warm-cache DIR]
    python run.py report RUN_ID [--runs-dir runs] [--out FILE]
    python run.py report --sweep DIR [--out FILE]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from env.errors import TradegraphError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="run a sweep (variants x grid x seeds x strategies) on Ray; resumes when re-run")
    p.add_argument("sweep", type=Path, help="sweep YAML, e.g. scenarios/sweeps/learning_eval.yaml")
    p.add_argument("--out", type=Path, help="output folder (default: the file's `out`, else runs/sweeps/<name>)")
    p.add_argument("--address", help="join an existing Ray cluster (default: start a local one)")
    p.add_argument("--inline", action="store_true", help="run the cells one by one in this process, without Ray")
    p.add_argument("--seeds", help="comma-separated seeds instead of the file's (e.g. a first look on fewer seeds)")
    p.add_argument("--warm-cache", type=Path, action="append", default=[], metavar="DIR",
                   help="earlier runs (run folders inside DIR, or a sweep's DIR/cells) whose LLM answers on the same data "
                        "seed each fresh agent cell's cache; repeatable; added to the file's warm_cache")
    p.set_defaults(handler=cmd_sweep)

    p = sub.add_parser("report", help="write a self-contained HTML report of a run or a sweep")
    p.add_argument("run_id", nargs="?", help="run id (a folder under --runs-dir)")
    p.add_argument("--runs-dir", type=Path, default=Path("runs"))
    p.add_argument("--sweep", type=Path, help="a sweep's output folder instead of a run")
    p.add_argument("--out", type=Path, help="HTML file to write (default: report.html inside the run or sweep folder)")
    p.set_defaults(handler=cmd_report)


def cmd_sweep(args: argparse.Namespace) -> int:
    from agents.sweep import format_summary, load_sweep, run_sweep

    try:
        sweep, scenario = load_sweep(args.sweep)
        update: dict[str, object] = {}
        if args.warm_cache:
            update["warm_cache"] = [*sweep.warm_cache, *args.warm_cache]
        if args.seeds:
            try:
                update["seeds"] = [int(s) for s in args.seeds.split(",") if s.strip()]
            except ValueError:
                print(f"error: --seeds {args.seeds!r}: give comma-separated integers", file=sys.stderr)
                return 2
            if not update["seeds"]:
                print("error: --seeds: no seed given", file=sys.stderr)
                return 2
        sweep = sweep.model_copy(update=update) if update else sweep
        table = run_sweep(sweep, scenario, out_dir=args.out, address=args.address, inline=args.inline)
    except TradegraphError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_summary(table))
    failed = int((table["status"] != "done").sum())
    if failed:
        print(f"\n{failed} cell(s) failed; their errors are in the table's `error` column and errors/. Re-run to retry them.")
    return 1 if failed else 0


def cmd_report(args: argparse.Namespace) -> int:
    from agents.report import render_report, run_report_data, sweep_report_data

    if (args.run_id is None) == (args.sweep is None):
        print("error: give a RUN_ID or --sweep DIR (one of them)", file=sys.stderr)
        return 2
    started = time.perf_counter()
    try:
        if args.sweep is not None:
            data, folder = sweep_report_data(args.sweep), args.sweep
        else:
            folder = args.runs_dir / args.run_id
            if not folder.is_dir():
                print(f"error: no run {args.run_id!r} under {args.runs_dir}", file=sys.stderr)
                return 2
            data = run_report_data(folder)
        out = render_report(data, args.out or folder / "report.html")
    except TradegraphError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"report: {out} ({out.stat().st_size / 1e6:.2f} MB, {time.perf_counter() - started:.1f} s)")
    return 0
