"""The direction agent's evidence combination, against hand-computed values."""

import math

import pytest

from agents.direction import centred, combine, evidence_signal, running_mean


def test_signal_without_evidence_is_the_base_rate():
    assert evidence_signal([], [], 0.55) == pytest.approx(0.55)


def test_signal_adds_weighted_log_odds_around_the_base_rate():
    # base 0.5: logit 0; two items at log-odds ln 3 (p=0.75 alone) with weights 1 and 0.5
    p = evidence_signal([math.log(3), math.log(3)], [1.0, 0.5], 0.5)
    assert p == pytest.approx(1 / (1 + math.exp(-1.5 * math.log(3))))
    # zero deviation carries no evidence whatever its weight
    assert evidence_signal([0.0], [10.0], 0.6) == pytest.approx(0.6)
    # base 0.8 and one item at -ln 4 with weight 1 -> exactly 0.5
    assert evidence_signal([-math.log(4)], [1.0], 0.8) == pytest.approx(0.5)


def test_combine_uniform_llm_leaves_the_signal():
    uniform = {a: math.log(1 / 3) for a in ("buy", "sell", "hold")}
    probs = combine(uniform, 0.8, 0.0, llm_weight=1.0, signal_weight=1.0, technical_weight=0.0, hold_prior=0.3)
    assert probs["buy"] == pytest.approx(0.8 * 0.7)
    assert probs["sell"] == pytest.approx(0.2 * 0.7)
    assert probs["hold"] == pytest.approx(0.3)


def test_combine_is_a_normalised_product_of_experts():
    llm = {"buy": math.log(0.2), "sell": math.log(0.2), "hold": math.log(0.6)}
    probs = combine(llm, 0.5, 0.6 - 0.1, llm_weight=1.0, signal_weight=1.0, technical_weight=1.0, hold_prior=0.3)
    raw = {"buy": 0.2 * 0.35 * math.exp(0.5), "sell": 0.2 * 0.35 * math.exp(-0.5), "hold": 0.6 * 0.3}
    total = sum(raw.values())
    for a in raw:
        assert probs[a] == pytest.approx(raw[a] / total)


def test_batch_calibration_removes_a_standing_bias():
    stats = None
    for _ in range(10):  # a model that always says buy 0.6 / sell 0.1 / hold 0.3
        stats = running_mean(stats, {"buy": math.log(0.6), "sell": math.log(0.1), "hold": math.log(0.3)})
    same = centred({"buy": math.log(0.6), "sell": math.log(0.1), "hold": math.log(0.3)}, stats, min_n=5)
    assert all(abs(v) < 1e-12 for v in same.values())
    moved = centred({"buy": math.log(0.3), "sell": math.log(0.4), "hold": math.log(0.3)}, stats, min_n=5)
    assert moved["sell"] > 0 > moved["buy"]
    assert centred({"buy": 1.0}, stats, min_n=50) == {"buy": 0.0}  # too little history: no evidence yet
    assert stats["n"] == 10


def test_no_evidence_means_no_lean_regression():
    """Regression: the news signal was centred on the adapter's base rate (0.41-0.46 in noise runs), so
    with no skill and nothing else to go on the direction agent chose "sell" every session."""
    p_up = evidence_signal([], [], 0.5)
    probs = combine({}, p_up, 0.0, llm_weight=1.0, signal_weight=1.0, technical_weight=0.5, hold_prior=0.3)
    assert probs["buy"] == pytest.approx(probs["sell"])
