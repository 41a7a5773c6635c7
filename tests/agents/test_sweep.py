"""run.py sweep: cells expand and validate early, strategies resolve by name, the summaries match
hand-computed gaps, and a real Ray sweep killed with SIGKILL resumes without running a cell twice
while a failing cell is recorded and the others finish."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from agents.sweep import (
    LOG_FILE, RESULTS_CSV, RESULTS_PARQUET, ablation_effects, expand_cells, load_sweep, resolve_runner, summarize,
)
from env.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, sweep: dict, scenario: dict | None = None) -> Path:
    scenario = scenario or {
        "name": "sw", "seed": 1, "cache_dir": str(REPO / ".cache" / "tradegraph"),
        "data": {"kind": "synthetic", "tickers": ["ACME"], "days": 60, "seed": 1, "signal": 0.8, "news_per_day": 1.0},
        "episode": {"warmup_days": 30, "train_days": 5, "test_days": 20, "bootstrap_judge_sessions": 0},
    }
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(scenario))
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"scenario": "base.yaml", **sweep}))
    return path


def test_cells_expand_over_variants_grid_seeds_and_strategies(tmp_path) -> None:
    path = _write(tmp_path, {"name": "t", "seeds": [1, 2], "strategies": ["buy_and_hold", {"name": "macd", "label": "m"}],
                             "variants": {"full": {}, "costly": {"broker.commission_bps": 50}}, "grid": {"data.signal": [0.8, 0.0]}})
    sweep, scenario = load_sweep(path)
    cells = expand_cells(sweep, scenario, tmp_path / "out")
    assert len(cells) == 2 * 2 * 2 * 2
    assert len({c.cell_id for c in cells}) == len(cells)
    costly = [c for c in cells if c.variant == "costly" and c.seed == 2 and c.point == {"data.signal": 0.0} and c.strategy.key == "m"]
    (cell,) = costly
    assert cell.config.broker.commission_bps == 50 and cell.config.data.signal == 0.0
    assert cell.config.seed == 2 and cell.config.data.seed == 2
    assert cell.run_dir == (tmp_path / "out" / "cells" / cell.cell_id).resolve()


def test_a_bad_override_fails_before_anything_runs(tmp_path) -> None:
    path = _write(tmp_path, {"name": "t", "seeds": [1], "strategies": ["buy_and_hold"], "variants": {"full": {"risk.sizingg": "fixed"}}})
    with pytest.raises(ConfigError, match=r"risk.sizingg: unknown field"):
        expand_cells(*load_sweep(path), tmp_path / "out")
    with pytest.raises(ConfigError, match="seeds"):
        load_sweep(_write(tmp_path, {"name": "t", "seeds": [], "strategies": ["agent"]}))


@pytest.mark.parametrize("name", ["learning_eval", "ablations", "baselines"])
def test_shipped_sweeps_validate(name, tmp_path) -> None:
    sweep, scenario = load_sweep(REPO / "scenarios" / "sweeps" / f"{name}.yaml")
    cells = expand_cells(sweep, scenario, tmp_path)
    if name == "ablations":
        fixed = next(c for c in cells if c.variant == "fixed_sizing")
        assert fixed.config.risk.sizing == "fixed" and not next(c for c in cells if c.variant == "no_memory").config.memory.enabled
        assert next(c for c in cells if c.variant == "reward_1d").config.rewards.horizons_days == (1,)
        assert not next(c for c in cells if c.variant == "no_reflection").config.episode.reflection
        assert not next(c for c in cells if c.variant == "no_news").config.analysts.news
    if name == "learning_eval":  # the learning eval's 20 agent runs: seeds 100-109 x signal 0.8 and 0
        agent = [c for c in cells if c.strategy.name == "agent"]
        assert sorted((c.seed, c.config.data.signal) for c in agent) == sorted((s, k) for s in range(100, 110) for k in (0.8, 0.0))


def test_strategies_resolve_by_name() -> None:
    assert callable(resolve_runner("agent")) and callable(resolve_runner("rsi"))
    assert resolve_runner("tests.agents.sweep_plugins:broken").__name__ == "broken"
    with pytest.raises(ConfigError, match="unknown strategy 'ppo'"):
        resolve_runner("ppo")
    with pytest.raises(ConfigError, match="no callable 'nope'"):
        resolve_runner("tests.agents.sweep_plugins:nope")


def _row(strategy, variant, seed, sharpe, bh, status="done"):
    return {"cell_id": f"{strategy}-{variant}-{seed}", "strategy": strategy, "variant": variant, "seed": seed, "point": "{}",
            "status": status, "run_dir": "/nonexistent", "sharpe": sharpe, "bh_sharpe": bh, "sr_per_session": sharpe / 16,
            "n_returns": 59.0, "tokens_per_ticker_day": 100.0, "seconds_per_ticker_day": 1.0}


def test_summary_and_ablation_effects_by_hand() -> None:
    rows = [_row("agent", "full", s, v, 0.5) for s, v in zip((1, 2, 3), (1.0, 2.0, 3.0), strict=True)]
    rows += [_row("agent", "no_news", s, v, 0.5) for s, v in zip((1, 2, 3), (0.0, 1.0, 1.0), strict=True)]
    rows += [_row("agent", "no_memory", 1, float("nan"), 0.5), _row("agent", "no_memory", 2, 0.0, 0.5, status="failed")]
    table = pd.DataFrame(rows)
    effects = {e["variant"]: e for e in ablation_effects(table)}
    assert effects["no_news"]["n"] == 3 and effects["no_news"]["mean_gap"] == pytest.approx(-4 / 3)  # gaps -1, -1, -2
    assert effects["no_news"]["p_wilcoxon"] == pytest.approx(0.25)  # all three negative: 2 / 2^3
    assert effects["no_memory"]["n"] == 1 and effects["no_memory"]["mean_gap"] == -1.0  # NaN Sharpe counts flat; the failed seed drops
    groups = {g["variant"]: g for g in summarize(table)["groups"]}
    assert groups["full"]["gap"] == pytest.approx(1.5) and groups["full"]["sharpe"] == pytest.approx(2.0)
    assert groups["no_memory"]["failed"] == 1 and groups["no_memory"]["n"] == 2
    sel = summarize(table)["selection"]
    # no_memory's only finished seed has no Sharpe, so two configurations were compared
    assert sel["n_trials"] == 2 and sel["best"] == "agent/full" and 0 <= sel["dsr"] <= 1


def _log_events(out: Path) -> list[tuple[str, str]]:
    path = out / LOG_FILE
    return [tuple(line.split()[1:3]) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.slow
def test_ray_sweep_killed_with_sigkill_resumes_without_rerunning_a_cell(tmp_path) -> None:
    out = tmp_path / "out"
    path = _write(tmp_path, {
        "name": "kill", "seeds": [1, 2, 3],
        "strategies": [{"name": "tests.agents.sweep_plugins:slow", "label": "slow_bh", "params": {"strategy": "buy_and_hold"}},
                       {"name": "tests.agents.sweep_plugins:slow", "label": "slow_macd", "params": {"strategy": "macd"}},
                       "tests.agents.sweep_plugins:broken"],
        "resources": {"num_cpus": 2, "cpus_per_cell": 1},
    })
    argv = [sys.executable, str(REPO / "run.py"), "sweep", str(path), "--out", str(out)]
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and sum(e == "done" for e, _ in _log_events(out)) < 2:
        assert proc.poll() is None, "the sweep ended before it could be killed"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and the Ray processes it started
    proc.wait()
    done_before = {c for e, c in _log_events(out) if e == "done"}
    assert 2 <= len(done_before) < 6
    # finished = metrics.json written; a cell can finish after the driver's last log line
    finished_at_kill = {p.parent.name for p in (out / "cells").glob("*/metrics.json")}
    n_events = len(_log_events(out))

    resumed = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 1, resumed.stderr[-3000:]  # the broken cells failed
    assert "3 cell(s) failed" in resumed.stdout
    after = _log_events(out)[n_events:]
    # finished before the kill: skipped and never started again (a Ray worker orphaned by the kill
    # may finish one more cell meanwhile; it is then skipped too, or waited for behind its lock)
    assert finished_at_kill <= {c for e, c in after if e == "skip"}
    assert not {c for e, c in after if e == "start"} & finished_at_kill
    good = {p.parent.name for p in (out / "cells").glob("*/metrics.json")}
    executions = (out / "executions.log").read_text().split()
    assert len(good) == 6 and sorted(executions) == sorted(good)  # every good cell completed exactly once
    assert "running" in resumed.stderr and "ETA" in resumed.stderr

    table = pd.read_parquet(out / RESULTS_PARQUET)
    assert list(pd.read_csv(out / RESULTS_CSV)["cell_id"]) == list(table["cell_id"])
    assert len(table) == 9 and set(table["status"]) == {"done", "failed"}
    failed = table[table["status"] == "failed"]
    assert len(failed) == 3 and failed["error"].str.contains("broken strategy refuses seed").all()
    good = table[table["status"] == "done"]
    assert len(good) == 6
    bh = good[good["strategy"] == "slow_bh"]
    assert len(bh) == 3 and (bh["sharpe"] == bh["bh_sharpe"]).all()  # buy-and-hold against itself
    assert (good[good["strategy"] == "slow_macd"]["bh_sharpe"].to_numpy() == bh["sharpe"].to_numpy()).all()
    one = Path(good["run_dir"].iloc[0])
    assert {"config.json", "metrics.json", "equity.csv", "fills.csv", "baselines.json"} <= {p.name for p in one.iterdir()}
    assert "ci" in json.loads((one / "metrics.json").read_text())["statistics"]
    assert "slow_bh" in resumed.stdout and "95% CI" in resumed.stdout  # the printed summary


def _cache(path: Path, answers: dict[str, str]) -> None:
    from agents.llm.cache import LLMCache

    with LLMCache(path) as cache:
        for key, text in answers.items():
            cache.put(key, kind="text", agent="news_analyst", request={"k": key}, result={"text": text})


def test_merge_caches_unions_answers_first_source_wins_and_never_overwrites(tmp_path) -> None:
    from agents.llm.cache import LLMCache, merge_caches

    _cache(tmp_path / "a.sqlite", {"k1": "a1", "k2": "a2"})
    _cache(tmp_path / "b.sqlite", {"k2": "b2", "k3": "b3"})
    target = tmp_path / "run" / "llm_cache.sqlite"
    assert merge_caches(target, [tmp_path / "a.sqlite", tmp_path / "b.sqlite"]) == 3
    with LLMCache(target) as merged:
        assert [merged.get(k)["text"] for k in ("k1", "k2", "k3")] == ["a1", "a2", "b3"]
    assert not list(target.parent.glob(".*merging*"))
    with pytest.raises(FileExistsError):
        merge_caches(target, [tmp_path / "b.sqlite"])


def test_a_warm_agent_cell_starts_from_the_caches_of_runs_on_the_same_data(tmp_path) -> None:
    from agents.llm.cache import LLMCache
    from agents.sweep import warm_sources, warm_start

    earlier = tmp_path / "earlier"
    path = _write(tmp_path, {"name": "t", "seeds": [1, 2], "strategies": ["agent"], "overrides": {"llm.cache.mode": "auto"},
                             "variants": {"full": {}, "no_memory": {"memory.enabled": False}}})
    sweep, scenario = load_sweep(path)
    # earlier runs: the same data as seed 1 (another variant of the agent), and seed 2's data
    for cell in expand_cells(sweep, scenario, earlier):
        if cell.variant == "no_memory":
            cell.run_dir.mkdir(parents=True)
            (cell.run_dir / "config.json").write_text(cell.config.model_dump_json(indent=2))
            _cache(cell.run_dir / "llm_cache.sqlite", {f"seed{cell.seed}": f"answer{cell.seed}"})
    with pytest.raises(ConfigError, match="warm_cache folder"):
        expand_cells(sweep.model_copy(update={"warm_cache": [tmp_path / "missing"]}), scenario, tmp_path / "out")
    warm = sweep.model_copy(update={"warm_cache": [earlier]})
    cells = [c for c in expand_cells(warm, scenario, tmp_path / "out") if c.variant == "full"]
    one, two = sorted(cells, key=lambda c: c.seed)
    assert [p.parent.parent.name for p in warm_sources(one.config, one.warm)] == ["cells"]
    assert len(warm_sources(one.config, one.warm)) == 1 and warm_sources(one.config, one.warm) != warm_sources(two.config, two.warm)
    warm_start(one)
    with LLMCache(one.run_dir / "llm_cache.sqlite") as cache:
        assert cache.get("seed1")["text"] == "answer1" and cache.get("seed2") is None
    assert json.loads((one.run_dir / "warm_cache.json").read_text())["answers"] == 1
    # a cell that has begun (its own cache or a checkpoint) is never re-seeded
    warm_start(one)
    two.run_dir.mkdir(parents=True)
    (two.run_dir / "checkpoints.sqlite").write_bytes(b"")
    import sqlite3

    with sqlite3.connect(two.run_dir / "checkpoints.sqlite") as conn:
        conn.execute("CREATE TABLE checkpoints (thread_id TEXT, checkpoint_id TEXT)")
        conn.execute("INSERT INTO checkpoints VALUES ('t', 'c')")
    warm_start(two)
    assert not (two.run_dir / "llm_cache.sqlite").exists()
