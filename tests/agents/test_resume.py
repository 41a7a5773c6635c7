"""`run.py resume` after a real `kill -9` mid-run finishes with a ledger identical to an
uninterrupted run of the same scenario."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from agents.runtime import has_checkpoint

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def _scenario_file(tmp_path: Path, runs: Path) -> Path:
    raw = {
        "name": "resume",
        "seed": 5,
        "runs_dir": str(runs),
        "cache_dir": str(REPO / ".cache" / "tradegraph"),
        "data": {"kind": "synthetic", "tickers": ["ACME"], "days": 52, "seed": 5, "signal": 0.8, "news_per_day": 1.5},
        "llm": {"backends": {"local": {"kind": "local", "threads": 2}}, "cache": {"mode": "auto"}},
        "episode": {"warmup_days": 30, "train_days": 8, "test_days": 6, "refit_every_days": 4, "reflect_every_days": 3,
                    "bootstrap_judge_sessions": 0},
        "learning": {"min_examples": 4},
    }
    path = tmp_path / f"scenario-{runs.name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _run(args: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "run.py"), *args], cwd=REPO, capture_output=True, text=True, **kw)


def _sessions_done(run_dir: Path) -> int:
    path = run_dir / "traces.jsonl"
    if not path.exists():
        return 0
    days = set()
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if rec.get("node") == "execute":
            days.add(rec["day"])
    return len(days)


@pytest.fixture(scope="module")
def ref_dir(tmp_path_factory) -> Path:
    """The folder of an uninterrupted run of the scenario."""
    tmp = tmp_path_factory.mktemp("reference")
    ref_runs = tmp / "ref"
    ref = _run(["run", str(_scenario_file(tmp, ref_runs)), "--no-progress"], timeout=900)
    assert ref.returncode == 0, ref.stderr[-2000:]
    (folder,) = list(ref_runs.iterdir())
    return folder


def _assert_same_ledger(ref_dir: Path, folder: Path) -> None:
    for name in ("fills.csv", "equity.csv", "train_fills.csv", "train_equity.csv"):
        a = pd.read_csv(ref_dir / name)
        b = pd.read_csv(folder / name)
        pd.testing.assert_frame_equal(a, b, check_exact=True, obj=f"{folder.parent.name}/{name}")
    # Everything but the cost block, which honestly differs: a resumed run re-pays the node that was killed.
    ref_metrics, metrics = (json.loads((d / "metrics.json").read_text()) for d in (ref_dir, folder))
    assert ref_metrics.pop("cost")["test"]["ticker_days"] == metrics.pop("cost")["test"]["ticker_days"]
    assert ref_metrics == metrics


def _kill_when(runs: Path, tmp_path: Path, ready) -> Path:
    """Start the scenario in ``runs``, SIGKILL it as soon as ``ready(run_dir)``; return the run folder."""
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "run.py"), "run", str(_scenario_file(tmp_path, runs)), "--no-progress"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.time() + 600
    run_dir = None
    while time.time() < deadline:
        if runs.exists() and list(runs.iterdir()):
            run_dir = next(runs.iterdir())
            if ready(run_dir):
                break
        if proc.poll() is not None:
            pytest.fail("the run finished before it could be killed; lengthen the scenario")
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert run_dir is not None and not (run_dir / "metrics.json").exists()
    return run_dir


def test_kill_9_then_resume_gives_the_uninterrupted_ledger(tmp_path, ref_dir):
    # Same scenario in another folder, killed with SIGKILL part-way through the training period.
    runs = tmp_path / "killed"
    run_dir = _kill_when(runs, tmp_path, lambda folder: _sessions_done(folder) >= 5)

    # A copy of the killed run, torn at the other unlucky moment: after a node's writes were saved
    # but before LangGraph wrote the next checkpoint. LangGraph then reports no `next` node although
    # the run has sessions left (CI once caught a resume that took this for "finished").
    torn_runs = tmp_path / "torn"
    shutil.copytree(runs, torn_runs)
    _drop_latest_checkpoint(torn_runs / run_dir.name / "checkpoints.sqlite")

    resumed = _run(["resume", run_dir.name, "--runs-dir", str(runs), "--no-progress"], timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    torn = _run(["resume", run_dir.name, "--runs-dir", str(torn_runs), "--no-progress"], timeout=900)
    assert torn.returncode == 0, torn.stderr[-2000:]
    _assert_same_ledger(ref_dir, run_dir)
    _assert_same_ledger(ref_dir, torn_runs / run_dir.name)


def test_a_run_killed_before_its_first_checkpoint_resumes_from_the_start(tmp_path, ref_dir):
    # Killed while it loads data and models: the folder and config.json exist, no checkpoint does.
    runs = tmp_path / "early"
    run_dir = _kill_when(runs, tmp_path, lambda folder: (folder / "config.json").exists())
    assert not has_checkpoint(run_dir / "checkpoints.sqlite"), "killed too late for this test"

    resumed = _run(["resume", run_dir.name, "--runs-dir", str(runs), "--no-progress"], timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    _assert_same_ledger(ref_dir, run_dir)
    # Starting it again with `run` instead is refused now that it has checkpoints, with the way out.
    again = _run(["run", str(_scenario_file(tmp_path, runs)), "--no-progress"], timeout=300)
    assert again.returncode == 2 and "python run.py resume" in again.stderr


def _drop_latest_checkpoint(path: Path) -> None:
    """Delete the newest checkpoint and its writes, leaving its parent with every task's writes saved."""
    with sqlite3.connect(path) as conn:
        (latest,) = conn.execute("SELECT checkpoint_id FROM checkpoints ORDER BY checkpoint_id DESC LIMIT 1").fetchone()
        conn.execute("DELETE FROM writes WHERE checkpoint_id = ?", (latest,))
        conn.execute("DELETE FROM checkpoints WHERE checkpoint_id = ?", (latest,))
        (parent,) = conn.execute("SELECT checkpoint_id FROM checkpoints ORDER BY checkpoint_id DESC LIMIT 1").fetchone()
        (saved,) = conn.execute("SELECT count(*) FROM writes WHERE checkpoint_id = ?", (parent,)).fetchone()
    assert saved > 0, "the parent checkpoint should hold its finished node's writes"


def test_resume_unknown_run_is_a_clear_error(tmp_path):
    res = _run(["resume", "nope-123", "--runs-dir", str(tmp_path)], timeout=120)
    assert res.returncode == 2
    assert "no run 'nope-123'" in res.stderr
