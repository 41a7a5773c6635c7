"""One end-to-end run of the whole graph on the embedded default: node order, final state,
run-directory outputs, traces, model-call budget per ticker-day."""

from __future__ import annotations

import json
from collections import Counter, defaultdict

import pandas as pd
import pytest

from agents.trace import read_traces

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def finished_run(tiny_run):
    return tiny_run  # the session's one tiny run (tests/agents/conftest.py), also read by the report test


def test_run_finishes_and_writes_outputs(finished_run):
    config, outcome = finished_run
    assert outcome.finished
    run_dir = outcome.run_dir
    for name in ("metrics.json", "baselines.json", "equity.csv", "fills.csv", "equity.png", "traces.jsonl", "config.json"):
        assert (run_dir / name).is_file(), name
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics) >= {"cumulative_return", "sharpe", "sortino", "max_drawdown", "calmar", "win_rate"}
    equity = pd.read_csv(run_dir / "equity.csv")
    assert len(equity) == config.episode.test_days  # one mark per test session
    baselines = json.loads((run_dir / "baselines.json").read_text())
    assert set(baselines) == {"buy_and_hold", "random", "macd", "rsi", "news_tfidf", "news_oracle"}


def test_node_order_within_a_session(finished_run):
    _, outcome = finished_run
    records = read_traces(outcome.run_dir)
    day = 33
    nodes = [r["node"] for r in records if r["day"] == day]
    assert nodes[0] == "open_session" and nodes[1] == "reward"
    analysts = {"news_analyst", "filings_analyst", "macro_analyst", "market_analyst"}
    after = [n for n in nodes if n not in {"open_session", "reward", "reflect"}]
    first_direction = after.index("direction")
    assert set(after[:first_direction]) <= analysts and "market_analyst" in after[:first_direction]
    assert after[first_direction:] == ["direction", "risk", "execute"]


def test_final_state_and_phases(finished_run):
    config, outcome = finished_run
    records = read_traces(outcome.run_dir)
    phases = {r["day"]: r["phase"] for r in records if r["node"] == "open_session"}
    test_start = config.episode.warmup_days + config.episode.train_days
    assert phases[test_start - 1] == "train" and phases[test_start] == "test"
    assert any(r["node"] == "finish" for r in records)
    assert any("adapter_fit" in r for r in records), "the reward adapter was fitted at the end of training"
    assert any(r["node"] == "reflect" and r.get("lesson") for r in records), "reflection wrote a lesson"


def test_traces_carry_prompts_probabilities_and_memories(finished_run):
    _, outcome = finished_run
    records = read_traces(outcome.run_dir)
    directions = [r for r in records if r["node"] == "direction"]
    assert directions and all(abs(sum(r["probs"].values()) - 1) < 1e-9 for r in directions)
    assert all("UNTRUSTED DATA" in r["prompt"] for r in directions)
    assert any(r["memories"] for r in directions)
    risk = [r for r in records if r["node"] == "risk"]
    assert all(0 <= r["target_weight"] <= 1.0 for r in risk)


def test_model_calls_per_ticker_day_within_budget(finished_run):
    _, outcome = finished_run
    calls: dict[tuple, int] = defaultdict(int)
    for r in read_traces(outcome.run_dir):
        calls[(r["day"], r["ticker"])] += r.get("model_calls", 0)
    per_day = Counter(calls.values())
    assert sum(calls.values()) > 0
    assert max(calls.values()) <= 6, per_day


def test_training_episode_ends_with_a_belief_update(finished_run):
    config, outcome = finished_run
    test_start = config.episode.warmup_days + config.episode.train_days
    beliefs = [r for r in read_traces(outcome.run_dir) if r["node"] == "reflect" and r["day"] == test_start and r.get("summary")]
    assert beliefs and beliefs[0]["summary"].startswith("training period equity")


def test_trace_command_prints_readable_records(finished_run, capsys):
    import run

    config, outcome = finished_run
    code = run.main(["trace", outcome.run_id, "--runs-dir", str(config.runs_dir), "--agent", "direction", "--day", "33"])
    out = capsys.readouterr().out
    assert code == 0
    assert "direction" in out and "probs: buy=" in out and "prompt (user):" in out
    assert run.main(["trace", outcome.run_id, "--runs-dir", str(config.runs_dir), "--agent", "nope"]) == 1


REPLAY_SCRIPT = """
import json, sys
from pathlib import Path
from agents.llm.local_model import is_local_model_loaded
from agents.runtime import execute
from agents.trace import read_traces
from tests.agents.conftest import tiny_scenario

tmp, cache = Path(sys.argv[1]), sys.argv[2]
config = tiny_scenario(tmp, **{"llm.cache": {"mode": "replay", "path": cache}})
outcome = execute(config, resume=False, progress=False)
print(json.dumps({
    "finished": outcome.finished,
    "model_loaded": is_local_model_loaded(None, 2),
    "model_calls": sum(r.get("model_calls", 0) for r in read_traces(outcome.run_dir)),
    "fills": (outcome.run_dir / "fills.csv").read_text(),
}))
"""


def test_a_replay_from_the_llm_cache_never_loads_the_model(finished_run, tmp_path):
    # A fresh process, so the process-wide model cache starts empty: answers come from the LLM
    # cache, memory vectors from the embedding cache and the adapter's features from the feature
    # cache; the weights are never needed, and the ledger is the recorded run's.
    import subprocess
    import sys

    from tests.agents.conftest import REPO

    _, outcome = finished_run
    done = subprocess.run(
        [sys.executable, "-c", REPLAY_SCRIPT, str(tmp_path), str(outcome.run_dir / "llm_cache.sqlite")],
        cwd=REPO, capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["finished"]
    assert result["model_calls"] == 0
    assert result["model_loaded"] is False
    assert result["fills"] == (outcome.run_dir / "fills.csv").read_text()
