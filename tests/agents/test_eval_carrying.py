"""The learning eval's sizing attribution (benchmarks/eval_synthetic.carrying) on a real finished run:
replaying the risk node's traced targets through the engine reproduces the run's own test Sharpe,
and the full-weight variant trades the same sessions."""

from __future__ import annotations

import importlib.util
import json

import pytest

from agents.runtime import load_data
from agents.trace import read_traces
from tests.agents.conftest import REPO

pytestmark = pytest.mark.slow


def _eval_module():
    spec = importlib.util.spec_from_file_location("eval_synthetic", REPO / "benchmarks" / "eval_synthetic.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_replayed_targets_reproduce_the_runs_sharpe(tiny_run):
    config, outcome = tiny_run
    run_dir = outcome.run_dir
    out = _eval_module().carrying(run_dir, config, load_data(config))
    sharpe = json.loads((run_dir / "metrics.json").read_text()).get("sharpe") or 0.0
    assert out["replay_sharpe"] == pytest.approx(sharpe, abs=0.05 * max(1.0, abs(sharpe)))
    assert out["full_weight_sharpe"] is not None
    longs = [r for r in read_traces(run_dir) if r["node"] == "risk" and r.get("phase") == "test" and r["target_weight"] >= 0.02]
    if not longs:  # never long in the test: both variants are flat
        assert out["full_weight_sharpe"] == out["replay_sharpe"] == 0.0


def test_variant_effect_pairs_seeds_and_reports_the_share_on_the_seeds_both_ran():
    """An ablation read off two eval JSONs: only seeds both ran are paired, the effect is the mean
    of variant - base, and both shares of the oracle's edge use those seeds alone."""
    def row(seed, arm_sharpe, oracle=4.0, bh=0.0):
        return {"signal": 0.8, "seed": seed, "sharpe": {"agent_truth": arm_sharpe, "news_oracle": oracle, "buy_and_hold": bh}}

    base = {"overrides": {}, "rows": [row(1, 2.0), row(2, 3.0), row(3, 1.0)]}
    variant = {"overrides": {"direction.llm_weight": 0}, "rows": [row(1, 3.0), row(2, 4.0), row(9, 9.0)]}
    text = _eval_module().variant_effect(variant, base, arms=("agent_truth",))
    assert "seeds 1, 2:" in text and "effect on Sharpe +1.00 [+1.00, +1.00]" in text and "better on 2/2" in text
    assert "base 62%, variant 88%" in text and "llm_weight" in text


def test_merge_joins_one_variants_seeds_and_arms_and_refuses_what_does_not_belong_together():
    """Evals of one variant run in pieces (seeds 1-2 of one arm, seed 3 and another arm later) merge
    into one summary over every seed; a different variant, or references that disagree, are refused."""
    module = _eval_module()

    def row(seed, sharpe, bh=0.0, oracle=4.0):
        return {"signal": 0.8, "seed": seed, "sharpe": {**sharpe, "news_oracle": oracle, "buy_and_hold": bh},
                "detail": {name: {"sharpe": value} for name, value in sharpe.items()}}

    variant = {"scenario": "/work/a/scenarios/demo.yaml", "overrides": {"direction.llm_weight": 0}}
    first = {**variant, "rows": [row(1, {"agent": 2.0}), row(2, {"agent": 4.0})]}
    # The same scenario file run from another checkout.
    later = {**variant, "scenario": "/work/b/scenarios/demo.yaml", "rows": [row(3, {"agent": 0.0}), row(1, {"agent_truth": 3.0})]}
    merged = module.merge_results([first, later])
    assert [r["seed"] for r in merged["rows"]] == [1, 2, 3]
    assert merged["rows"][0]["sharpe"] == {"agent": 2.0, "agent_truth": 3.0, "news_oracle": 4.0, "buy_and_hold": 0.0}
    agent = merged["summary"]["0.8"]["strategies"]["agent"]
    assert agent["seeds"] == 3 and agent["mean_gap"] == pytest.approx(2.0) and agent["oracle_share"] == pytest.approx(0.5)
    assert merged["summary"]["0.8"]["strategies"]["agent_truth"]["seeds"] == 1
    assert merged["overrides"] == {"direction.llm_weight": 0}

    with pytest.raises(ValueError, match="different variants"):
        module.merge_results([first, {**variant, "overrides": {}, "rows": []}])
    with pytest.raises(ValueError, match="different variants"):
        module.merge_results([first, {**variant, "scenario": "/work/a/scenarios/real_sp500.yaml", "rows": []}])
    with pytest.raises(ValueError, match="buy_and_hold has Sharpe"):
        module.merge_results([first, {**variant, "rows": [row(2, {"agent_truth": 1.0}, bh=0.5)]}])
