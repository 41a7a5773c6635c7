"""A token budget stops the run cleanly with its state saved; resuming with a larger budget finishes
it, and the usage totals carry over."""

from __future__ import annotations

import json

import pytest

from agents.runtime import execute, load_run_config

pytestmark = pytest.mark.slow


def test_budget_stop_then_resume(tiny):
    config = tiny(**{"name": "budget", "episode.train_days": 3, "episode.test_days": 2, "llm.budget.max_tokens": 2500})
    first = execute(config, resume=False, progress=False)
    assert not first.finished
    assert "budget exceeded" in first.message and "resume" in first.message
    assert not (first.run_dir / "metrics.json").exists()
    assert (first.run_dir / "checkpoints.sqlite").exists()

    bigger = load_run_config(config.runs_dir, first.run_id, {"llm.budget.max_tokens": 10_000_000})
    second = execute(bigger, resume=True, progress=False, run_id=first.run_id)
    assert second.finished and second.run_dir == first.run_dir
    metrics = json.loads((second.run_dir / "metrics.json").read_text())
    assert "sharpe" in metrics
