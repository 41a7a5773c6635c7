"""The whole graph on scripted answers: seconds, not minutes, so run length can be tested."""

from __future__ import annotations

import sqlite3

from agents.llm.scripted import ScriptedLLM
from agents.runtime import execute
from agents.state import AgentName
from tests.agents.conftest import tiny_scenario


def _checkpoint_bytes_by_day(run_dir) -> dict[int, int]:
    """Bytes of checkpoints and their writes, by the session each checkpoint belongs to."""
    import json

    conn = sqlite3.connect(run_dir / "checkpoints.sqlite")
    try:
        out: dict[int, int] = {}
        writes = dict(conn.execute("SELECT checkpoint_id, SUM(LENGTH(value)) FROM writes GROUP BY checkpoint_id").fetchall())
        for cid, blob, meta in conn.execute("SELECT checkpoint_id, checkpoint, metadata FROM checkpoints"):
            step = json.loads(meta).get("step", 0)
            out[step] = len(blob) + int(writes.get(cid, 0) or 0)
        return out
    finally:
        conn.close()


def test_checkpoints_stay_the_same_size_as_the_run_grows_regression(tmp_path):
    """The broker's whole history, the examples and the lessons lived in the checkpointed state,
    so each checkpoint grew with the run (204 MB after the 90-session demo)."""
    config = tiny_scenario(
        tmp_path, **{"data.days": 150, "episode.train_days": 60, "episode.test_days": 58, "memory.enabled": False,
                     "learning.enabled": False, "name": "growth"},
    )
    llm = ScriptedLLM(lambda agent, messages, options: {o: 1.0 + (k == 0) for k, o in enumerate(options)})
    outcome = execute(config, resume=False, progress=False, llms={a: llm for a in AgentName})
    assert outcome.finished
    by_step = _checkpoint_bytes_by_day(outcome.run_dir)
    steps = sorted(by_step)
    third = len(steps) // 3
    # After the first third the reward tracker holds its full 30-session window of pending decisions.
    middle = sum(by_step[s] for s in steps[third : 2 * third])
    last = sum(by_step[s] for s in steps[-third:])
    assert last <= 1.2 * middle, (middle, last)
    assert max(by_step.values()) < 40_000, "one checkpoint with its writes stays a few KB"
    fills = (outcome.run_dir / "fills.csv").read_text().strip().splitlines()
    assert len(fills) > 1, "the scripted agent buys, so the test period has fills"
    # header + 60 training sessions + the first test session, marked before the account is swapped
    assert (outcome.run_dir / "train_equity.csv").read_text().count("\n") == 62


class _Tripwire:
    """Ground truth that fails on any use: a run that reads it cannot finish."""

    def __getattr__(self, name):
        raise AssertionError(f"agent code read the ground truth ({name})")


def test_no_agent_code_path_reaches_the_ground_truth(tmp_path):
    from agents.runtime import load_data
    from env.market import MarketData

    config = tiny_scenario(tmp_path, **{"memory.enabled": False, "learning.enabled": False, "name": "truth"})
    data = load_data(config)
    assert data.truth is not None and data.truth.item_sentiment
    wired = MarketData(dict(data.bars), news=data.news, filings=data.filings, macro=data.macro, truth=_Tripwire(), origin=data.origin)
    llm = ScriptedLLM()
    sessions = config.episode.train_days + config.episode.test_days
    # Every session of the graph, stopped before the run's outputs (whose baselines include the
    # evaluation-only news oracle, which is handed the truth on purpose).
    outcome = execute(config, resume=False, progress=False, llms={a: llm for a in AgentName}, data=wired,
                      stop_after_sessions=sessions)
    assert not outcome.finished
    assert {c.agent for c in llm.calls} >= {"news_analyst", "direction", "market_analyst"}
