"""Time `run.py report` on a finished run and check the file's size; optionally screenshot the page
in headless Chromium with one decision's trace open (the README's docs/report.png).

    .venv/bin/python benchmarks/bench_report.py runs/<RUN_ID> [--repeat 3] [--screenshot docs/report.png]

Targets on the demo run: <= 5 s per report (the whole command, imports included, in a fresh
process) and <= 5 MB.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]


def screenshot(html: Path, png: Path, decision: int) -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as profile, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(profile, executable_path="/usr/bin/chromium", headless=True, args=FLAGS,
                                                        viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.goto(html.resolve().as_uri())
        page.wait_for_selector("body[data-rendered='1']")
        buttons = page.locator("#timeline .decision")
        buttons.nth(min(decision, buttons.count() - 1)).click()
        page.screenshot(path=str(png), full_page=True)
        context.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path, help="a finished run folder")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--screenshot", type=Path, help="write a PNG of the page with a decision's trace open")
    parser.add_argument("--decision", type=int, default=-1, help="timeline index to open (default: the last)")
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp()) / "report.html"
    times = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        subprocess.run([sys.executable, str(REPO / "run.py"), "report", args.run_dir.name, "--runs-dir", str(args.run_dir.parent),
                        "--out", str(out)], check=True, capture_output=True, cwd=REPO)
        times.append(time.perf_counter() - started)
    size_mb = out.stat().st_size / 1e6
    median = statistics.median(times)
    print(f"{'run':<28}{'median s':>10}{'min s':>8}{'MB':>8}")
    print(f"{args.run_dir.name:<28}{median:>10.2f}{min(times):>8.2f}{size_mb:>8.2f}")
    print(f"targets: <= 5 s {'PASS' if median <= 5 else 'FAIL'}, <= 5 MB {'PASS' if size_mb <= 5 else 'FAIL'}")
    if args.screenshot:
        screenshot(out, args.screenshot, args.decision if args.decision >= 0 else 10**9)
        print(f"screenshot: {args.screenshot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
