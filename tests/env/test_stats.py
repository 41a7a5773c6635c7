"""env/stats.py against hand-computed values, env.metrics (the reference for point values),
scipy's exact Wilcoxon distribution worked by hand, and Bailey & López de Prado's printed example."""

from __future__ import annotations

import math

import numpy as np
import pytest

from env.errors import ConfigError, DataError
from env.metrics import compute_metrics
from env.stats import (
    bootstrap_run_ci,
    cumulative_return_of,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    max_drawdown_of,
    paired_gap,
    pbo_cscv,
    probabilistic_sharpe_ratio,
    returns_of,
    run_statistics,
    sharpe_moments,
    sharpe_of,
    stationary_bootstrap_indices,
)


def _phi(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def test_path_statistics_by_hand() -> None:
    r = np.array([0.1, -0.1])
    assert sharpe_of(r) == pytest.approx(0.0, abs=1e-15)
    assert cumulative_return_of(r) == pytest.approx(1.1 * 0.9 - 1)  # -0.01
    assert max_drawdown_of(r) == pytest.approx(0.99 / 1.1 - 1)  # from the peak 1.1 down to 0.99
    # mean 0.02/3, std(ddof=1) sqrt(((1/300)^2 + (5/300)^2 + (4/300)^2) / 2)
    r3 = np.array([0.01, -0.01, 0.02])
    std = math.sqrt(((1 / 300) ** 2 + (5 / 300) ** 2 + (4 / 300) ** 2) / 2)
    assert sharpe_of(r3) == pytest.approx((0.02 / 3) / std * math.sqrt(252))
    assert math.isnan(sharpe_of(np.array([0.01, 0.01, 0.01])))  # zero variance: undefined
    # rows are paths: a rising path has no drawdown
    assert max_drawdown_of(np.array([[0.1, 0.1], [-0.5, 0.0]])).tolist() == pytest.approx([0.0, -0.5])


def test_point_values_equal_env_metrics() -> None:
    rng = np.random.default_rng(4)
    equity = 100 * np.cumprod(1 + rng.normal(0.0005, 0.01, 120))
    ref = compute_metrics(equity)
    ci = bootstrap_run_ci(returns_of(equity), n_boot=200, seed=1)
    for key in ("sharpe", "cumulative_return", "max_drawdown"):
        assert ci[key]["point"] == pytest.approx(ref[key], rel=1e-12)
        assert ci[key]["lo"] <= ci[key]["point"] <= ci[key]["hi"]
    assert ci["bootstrap"]["mean_block"] == pytest.approx(119 ** (1 / 3))
    # seeded: the same call gives the same interval
    assert bootstrap_run_ci(returns_of(equity), n_boot=200, seed=1) == ci


def test_stationary_bootstrap_with_mean_block_one_is_the_iid_bootstrap() -> None:
    got = stationary_bootstrap_indices(7, 5, 1.0, np.random.default_rng(3))
    expected = np.random.default_rng(3).integers(0, 7, size=(5, 7))
    assert (got == expected).all()


def test_stationary_bootstrap_blocks_wrap_and_have_the_mean_length() -> None:
    one_block = stationary_bootstrap_indices(6, 20, 1e15, np.random.default_rng(0))
    assert ((np.diff(one_block, axis=1) % 6) == 1).all()  # consecutive, wrapping 5 -> 0
    idx = stationary_bootstrap_indices(50, 2000, 5.0, np.random.default_rng(1))
    jumps = (np.diff(idx, axis=1) % 50) != 1
    # a jump can land on the next index by chance (1/50), so the observed rate is p * 49/50
    assert jumps.mean() == pytest.approx(0.2 * 49 / 50, abs=0.005)
    with pytest.raises(ConfigError, match="mean_block"):
        stationary_bootstrap_indices(5, 2, 0.5, np.random.default_rng(0))


def test_bootstrap_of_constant_returns_collapses() -> None:
    ci = bootstrap_run_ci(np.full(30, 0.001), n_boot=50)
    assert ci["cumulative_return"]["lo"] == pytest.approx(1.001**30 - 1) == ci["cumulative_return"]["hi"]
    assert ci["max_drawdown"]["lo"] == 0.0 == ci["max_drawdown"]["hi"]
    assert math.isnan(ci["sharpe"]["point"]) and math.isnan(ci["sharpe"]["lo"])
    short = bootstrap_run_ci([0.01])
    assert math.isnan(short["sharpe"]["hi"])
    with pytest.raises(DataError, match=r"returns\[1\]"):
        bootstrap_run_ci([0.01, float("nan")])


def test_paired_gap_wilcoxon_exact_by_hand() -> None:
    # all five gaps positive: W- = 0, the most extreme of 2^5 sign patterns -> two-sided p = 2/32
    out = paired_gap([2, 3, 4, 5, 6], [1, 1, 1, 1, 1], n_boot=500)
    assert out["mean_gap"] == 3.0 and out["wins"] == 5 and out["n"] == 5
    assert out["p_wilcoxon"] == pytest.approx(2 / 32)
    assert 1.0 <= out["lo"] <= 3.0 <= out["hi"] <= 5.0
    # gaps 1, -2, 3, 4, -5, 6: W- = 7; 18 of the 64 subsets of ranks 1..6 sum to <= 7 -> p = 36/64
    mixed = paired_gap([1, -2, 3, 4, -5, 6], [0] * 6, n_boot=500)
    assert mixed["p_wilcoxon"] == pytest.approx(36 / 64)
    assert mixed["mean_gap"] == pytest.approx(7 / 6)


def test_paired_gap_degenerate_and_bad_input() -> None:
    same = paired_gap([0.3, 0.3, 0.3], [0.1, 0.1, 0.1], n_boot=100)
    assert same["lo"] == pytest.approx(0.2) and same["hi"] == pytest.approx(0.2)
    assert paired_gap([1.0, 2.0], [1.0, 2.0])["p_wilcoxon"] == 1.0
    assert math.isnan(paired_gap([], [])["mean_gap"])
    with pytest.raises(DataError, match="one baseline per value"):
        paired_gap([1, 2, 3], [1, 2])


def test_psr_by_hand() -> None:
    # sr 0.1 over 101 returns, normal: z = 0.1 * 10 / sqrt(1 + 2/4 * 0.01)
    assert probabilistic_sharpe_ratio(0.1, 101) == pytest.approx(_phi(1.0 / math.sqrt(1.005)))
    # negative skew and fat tails widen the band: lower PSR for the same sr
    assert probabilistic_sharpe_ratio(0.1, 101, skew=-1, kurtosis=6) < probabilistic_sharpe_ratio(0.1, 101)
    assert probabilistic_sharpe_ratio(0.1, 101, sr_benchmark=0.1) == pytest.approx(0.5)
    assert math.isnan(probabilistic_sharpe_ratio(float("nan"), 100))


def test_deflated_sharpe_matches_the_papers_worked_example() -> None:
    """Bailey & López de Prado (2014), 'The Deflated Sharpe Ratio', numerical example: 100 trials
    whose annualised Sharpes have variance 1/2, the best one 2.5 annualised over 1,250 daily
    returns (250 a year in the paper) with skewness -3 and kurtosis 10: SR0 = 0.1132, DSR = 0.9004."""
    sr = 2.5 / math.sqrt(250)
    out = deflated_sharpe_ratio(sr, 1250, n_trials=100, sr_variance=0.5 / 250, skew=-3, kurtosis=10)
    assert round(out["sr0"], 4) == 0.1132
    assert round(out["dsr"], 4) == 0.9004
    assert expected_max_sharpe(1, 0.3, sr_mean=0.05) == 0.05
    with pytest.raises(ConfigError, match="n_trials"):
        expected_max_sharpe(0, 0.1)


def test_pbo_by_hand() -> None:
    # Four periods (one block each), two configurations, score = mean. Of the 6 ways to pick two
    # blocks in-sample, the in-sample winner is the out-of-sample loser for IS={1,4} and IS={2,3}.
    m = np.array([[3.0, 1.0], [0.0, 1.0], [1.0, 2.0], [2.0, 0.0]])
    out = pbo_cscv(m, n_splits=4, metric=lambda block: block.mean(axis=0))
    assert out["n_combinations"] == 6
    assert out["pbo"] == pytest.approx(2 / 6)
    assert sorted(out["logits"]) == pytest.approx([math.log(0.5)] * 2 + [math.log(2.0)] * 4)


def test_pbo_with_sharpe_dominant_config_never_overfits_and_noise_does() -> None:
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.01, (160, 6))
    dominant = noise.copy()
    dominant[:, 2] += 0.02  # always best, in and out of sample
    assert pbo_cscv(dominant, n_splits=8)["pbo"] == 0.0
    # overfit by construction: configuration j earns only in block j, so whichever wins in-sample
    # has its one good block in-sample and ranks in the bottom half out of sample
    lucky = rng.normal(-0.001, 0.002, (160, 8))
    for j in range(8):
        lucky[j * 20:(j + 1) * 20, j] += 0.03
    assert pbo_cscv(lucky, n_splits=8)["pbo"] == 1.0
    with pytest.raises(ConfigError, match="even"):
        pbo_cscv(noise, n_splits=5)
    with pytest.raises(ConfigError, match="2 configurations"):
        pbo_cscv(noise[:, :1])


def test_run_statistics_bundle() -> None:
    rng = np.random.default_rng(8)
    equity = 100 * np.cumprod(1 + rng.normal(0.001, 0.01, 80))
    out = run_statistics(equity, n_boot=100, n_trials=10, sr_variance=0.001)
    moments = sharpe_moments(returns_of(equity))
    assert out["sr"] == moments["sr"] and out["n"] == 79
    assert out["sr"] * math.sqrt(252) == pytest.approx(compute_metrics(equity)["sharpe"])
    assert 0 <= out["psr"] <= 1 and out["dsr"]["dsr"] < out["psr"]  # 10 trials counted: less confidence
    assert set(out["ci"]) == {"sharpe", "cumulative_return", "max_drawdown", "bootstrap"}


def test_mean_ci_brackets_the_mean_and_degenerates_on_constant_values():
    from env.stats import mean_ci

    assert mean_ci([2.5]) == (2.5, 2.5)
    assert mean_ci([1.0, 1.0, 1.0]) == (1.0, 1.0)
    lo, hi = mean_ci([0.0, 1.0, 2.0, 3.0, 4.0], n_boot=4000)
    assert lo < 2.0 < hi and lo >= 0.0 and hi <= 4.0
    assert all(math.isnan(v) for v in mean_ci([]))
