"""run.py report in a real headless Chromium (Debian's, installed by `make setup`): the page of a
real tiny run renders without console errors, its charts and tables are there, and clicking a
decision on the timeline opens that decision's trace; the sweep page draws the ablation chart.
Screenshots are kept as test artefacts (tmp dir) and printed with -s."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

import run
from agents.report import render_report, sweep_report_data
from agents.trace import read_traces

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser_page(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: `make setup` installs it (apt-get install chromium)")
    profile = tmp_path_factory.mktemp("chromium-profile")  # a fresh --user-data-dir
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, headless=True, args=FLAGS,
                                                        viewport={"width": 1400, "height": 1800})
        page = context.new_page()
        problems: list[str] = []
        page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}") if msg.type in ("error", "warning") else None)
        page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        page.on("request", lambda req: problems.append(f"request: {req.url}") if not req.url.startswith(("file:", "data:")) else None)
        yield page, problems
        context.close()


def test_run_report_renders_and_a_decision_opens_its_trace(tiny_run, browser_page, tmp_path) -> None:
    config, outcome = tiny_run
    out = tmp_path / "report.html"
    assert run.main(["report", outcome.run_id, "--runs-dir", str(config.runs_dir), "--out", str(out)]) == 0
    assert out.stat().st_size < 5_000_000
    page, problems = browser_page
    page.goto(out.as_uri())
    page.wait_for_selector("body[data-rendered='1']", timeout=10_000)

    # equity: the agent and four baselines; drawdown and weights drawn; statistics and cost tables filled
    names = page.eval_on_selector_all("#equity polyline.series", "ns => ns.map(n => n.dataset.name)")
    assert names == ["agent", "buy_and_hold", "random", "macd", "rsi"]
    assert page.locator("#drawdown polyline.series").count() >= 1
    assert page.locator("#weights polyline.series").count() == 1
    stats_text = page.inner_text("#statistics")
    ci = json.loads((outcome.run_dir / "metrics.json").read_text())["statistics"]["ci"]["sharpe"]
    assert f"{ci['lo']:.4f}" in stats_text and "probabilistic Sharpe ratio" in stats_text
    assert "tokens" in page.inner_text("#cost") and "seconds" in page.inner_text("#cost")

    decisions = [r for r in read_traces(outcome.run_dir) if r["node"] == "direction"]
    buttons = page.locator("#timeline .decision")
    assert buttons.count() == len(decisions) == config.episode.train_days + config.episode.test_days
    assert page.inner_text("#trace") == "No decision selected."
    last = decisions[-1]
    buttons.nth(len(decisions) - 1).click()
    trace = page.inner_text("#trace")
    assert last["date"] in trace and "Option probabilities" in trace and "Risk sizing and caps" in trace
    assert page.inner_text("#trace-prompt").strip()[:60] == last["prompt"].strip()[:60]
    for mem in last["memories"][:2]:
        assert mem["layer"] in trace and f"{mem['score']:.3f}" in trace
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    print(f"screenshot: {shot}")
    assert problems == []


def test_a_contaminated_run_shows_its_warning_first(tiny_run, browser_page, tmp_path) -> None:
    """A run whose test window starts before a model's training cutoff says so at the top of its report."""
    config, outcome = tiny_run
    runs = tmp_path / "runs"
    shutil.copytree(outcome.run_dir, runs / outcome.run_id)
    metrics_path = runs / outcome.run_id / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    metrics["contamination"] = {"warning": "test window 2018-11-15..2018-12-31 starts before the training cutoff of api 2023-10-01"}
    metrics_path.write_text(json.dumps(metrics))
    out = tmp_path / "contaminated.html"
    assert run.main(["report", outcome.run_id, "--runs-dir", str(runs), "--out", str(out)]) == 0
    page, problems = browser_page
    page.goto(out.as_uri())
    page.wait_for_selector("body[data-rendered='1']", timeout=10_000)
    assert "training cutoff of api 2023-10-01" in page.inner_text("#contamination")
    assert page.eval_on_selector("main section", "s => s.id") == "contamination"
    assert problems == []


def test_sweep_report_draws_the_ablation_chart(browser_page, tmp_path) -> None:
    rows = []
    for variant, sharpes in {"full": (1.0, 2.0, 3.0), "no_news": (0.0, 1.0, 1.0), "no_memory": (1.5, 2.0, 2.5)}.items():
        for seed, value in zip((1, 2, 3), sharpes, strict=True):
            rows.append({"cell_id": f"agent-{variant}-s{seed}", "strategy": "agent", "variant": variant, "seed": seed, "point": "{}",
                         "status": "done", "error": "", "run_dir": str(tmp_path / "missing"), "sharpe": value, "bh_sharpe": 0.5,
                         "sr_per_session": value / 16, "n_returns": 59.0, "tokens_per_ticker_day": 900.0, "seconds_per_ticker_day": 2.0})
    rows.append({**rows[0], "cell_id": "agent-full-s4", "seed": 4, "status": "failed", "error": "DataError: no prices", "sharpe": None})
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    pd.DataFrame(rows).to_csv(sweep / "results.csv", index=False)
    out = render_report(sweep_report_data(sweep), tmp_path / "sweep.html")
    page, problems = browser_page
    problems.clear()
    page.goto(out.as_uri())
    page.wait_for_selector("body[data-rendered='1']", timeout=10_000)
    assert page.locator("#ablation rect.ablation-bar").count() == 2
    ablation = page.inner_text("#ablation")
    assert "no_news" in ablation and "-1.333" in ablation  # gaps -1, -1, -2 against full
    assert "DataError: no prices" in page.inner_text("#cells")
    page.screenshot(path=str(tmp_path / "sweep.png"), full_page=True)
    assert problems == []


def test_report_bad_input_exits_2_with_a_message(tmp_path, capsys) -> None:
    assert run.main(["report"]) == 2
    assert "RUN_ID or --sweep" in capsys.readouterr().err
    assert run.main(["report", "nope", "--runs-dir", str(tmp_path)]) == 2
    assert "no run 'nope'" in capsys.readouterr().err
    (tmp_path / "unfinished").mkdir()
    assert run.main(["report", "unfinished", "--runs-dir", str(tmp_path)]) == 2
    assert "has not finished" in capsys.readouterr().err
    assert run.main(["report", "--sweep", str(tmp_path)]) == 2
    assert "run `python run.py sweep" in capsys.readouterr().err
