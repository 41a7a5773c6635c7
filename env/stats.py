"""Honest statistics of backtests, as pure numpy/scipy functions (no I/O, no LLM).

One implementation of each statistic, shared by ``metrics.json``, the sweep table, the reports
and the evals:

- ``stationary_bootstrap_indices`` / ``bootstrap_run_ci``: Politis & Romano (1994) stationary
  bootstrap confidence intervals of one run's Sharpe, cumulative return and max drawdown;
- ``paired_gap``: across seeds, the mean paired gap of a metric to a baseline (e.g. agent minus
  buy-and-hold Sharpe) with a bootstrap CI and a Wilcoxon signed-rank p-value;
- ``probabilistic_sharpe_ratio``, ``expected_max_sharpe``, ``deflated_sharpe_ratio``: Bailey &
  López de Prado (2012, 2014), so a sweep that tried N configurations is judged with N counted;
- ``pbo_cscv``: the probability of backtest overfitting by combinatorially symmetric
  cross-validation (Bailey, Borwein, López de Prado & Zhu, 2014).

Conventions are those of ``env.metrics`` (see /work/shared/FACTS.md): simple daily returns of the
equity curve, 252 periods a year, Sharpe = mean / std(ddof=1) * sqrt(252), max drawdown a
negative fraction measured from the running peak with the starting value included. PSR and DSR
take the Sharpe ratio **per period** (not annualised), as in the papers; ``sharpe_moments`` gives
it together with the skewness and the (non-excess) kurtosis they need.

Degenerate inputs never crash: a statistic that is undefined (too few points, zero variance) is
NaN. Bad input (NaN returns, mismatched lengths, a non-positive count) raises ``DataError`` or
``ConfigError`` with what to change.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from itertools import combinations

import numpy as np
from scipy import stats as sps

from env.errors import ConfigError, DataError
from env.metrics import PERIODS_PER_YEAR

EULER_GAMMA = 0.5772156649015329
RUN_STATISTICS = ("sharpe", "cumulative_return", "max_drawdown")

ArrayLike = Sequence[float] | np.ndarray


def _finite_1d(values: ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise DataError(f"{name} must be one-dimensional, got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        pos = int(np.argmax(bad))
        raise DataError(f"{name}[{pos}] is {arr[pos]!r}; drop or fill non-finite values first")
    return arr


def returns_of(equity: ArrayLike) -> np.ndarray:
    """Simple period returns of an equity curve (``len(equity) - 1`` of them); equity must be positive."""
    values = _finite_1d(equity, "equity")
    if (values <= 0).any():
        pos = int(np.argmax(values <= 0))
        raise DataError(f"equity[{pos}] is {values[pos]!r}; statistics need positive equity values")
    return values[1:] / values[:-1] - 1.0


# -- per-path statistics (vectorised over rows) ---------------------------------------------
def sharpe_of(returns: np.ndarray, periods: int = PERIODS_PER_YEAR) -> np.ndarray | float:
    """Annualised Sharpe of each row (last axis): mean / std(ddof=1) * sqrt(periods); NaN if undefined."""
    r = np.asarray(returns, dtype=float)
    n = r.shape[-1]
    if n < 2:
        return np.full(r.shape[:-1], math.nan) if r.ndim > 1 else math.nan
    std = r.std(axis=-1, ddof=1)
    mean = r.mean(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        # A std that is zero up to rounding (a constant resample) is zero: no Sharpe.
        tiny = std <= 1e-12 * np.maximum(np.abs(mean), 1e-300)
        out = np.where(tiny, math.nan, mean / np.where(tiny, 1.0, std) * math.sqrt(periods))
    return out if r.ndim > 1 else float(out)


def cumulative_return_of(returns: np.ndarray) -> np.ndarray | float:
    """Compounded return of each row: prod(1 + r) - 1."""
    r = np.asarray(returns, dtype=float)
    out = np.prod(1.0 + r, axis=-1) - 1.0
    return out if r.ndim > 1 else float(out)


def max_drawdown_of(returns: np.ndarray) -> np.ndarray | float:
    """Max drawdown of each row's equity path, starting value 1 included (a fraction <= 0)."""
    r = np.asarray(returns, dtype=float)
    paths = np.cumprod(1.0 + r, axis=-1)
    ones = np.ones(paths.shape[:-1] + (1,))
    paths = np.concatenate([ones, paths], axis=-1)
    out = (paths / np.maximum.accumulate(paths, axis=-1) - 1.0).min(axis=-1)
    return out if r.ndim > 1 else float(out)


_STATISTIC_FNS: dict[str, Callable[[np.ndarray], np.ndarray | float]] = {
    "sharpe": sharpe_of,
    "cumulative_return": cumulative_return_of,
    "max_drawdown": max_drawdown_of,
}


# -- stationary bootstrap ------------------------------------------------------------------------
def default_mean_block(n: int) -> float:
    """Mean block length used when none is given: n ** (1/3), at least 1 (the usual rate for the
    stationary bootstrap of a mean; short daily series keep some autocorrelation this way)."""
    return max(1.0, float(n) ** (1.0 / 3.0))


def stationary_bootstrap_indices(n: int, n_boot: int, mean_block: float, rng: np.random.Generator) -> np.ndarray:
    """Politis & Romano's stationary bootstrap: ``(n_boot, n)`` indices into a series of length ``n``.

    Each resample starts at a uniform index; at every next step it jumps to a new uniform index
    with probability ``p = 1 / mean_block`` and otherwise takes the next index, wrapping round
    the end (so block lengths are geometric with mean ``mean_block`` and the resample is
    stationary). ``mean_block = 1`` is the iid bootstrap.
    """
    if n < 1 or n_boot < 1:
        raise ConfigError(f"stationary bootstrap needs n >= 1 and n_boot >= 1, got n={n}, n_boot={n_boot}")
    if not mean_block >= 1:
        raise ConfigError(f"mean_block must be at least 1 (1 is the iid bootstrap), got {mean_block}")
    p = 1.0 / mean_block
    starts = rng.integers(0, n, size=(n_boot, n))
    jump = rng.random((n_boot, n)) < p
    jump[:, 0] = True
    idx = np.empty((n_boot, n), dtype=np.int64)
    idx[:, 0] = starts[:, 0]
    for t in range(1, n):
        idx[:, t] = np.where(jump[:, t], starts[:, t], (idx[:, t - 1] + 1) % n)
    return idx


def bootstrap_run_ci(
    returns: ArrayLike,
    *,
    n_boot: int = 1000,
    mean_block: float | None = None,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Stationary-bootstrap percentile CIs of one run's Sharpe, cumulative return and max drawdown.

    Returns ``{statistic: {"point", "lo", "hi"}}`` for ``RUN_STATISTICS`` plus
    ``{"bootstrap": {"n_boot", "mean_block", "confidence"}}``. The point value is the statistic
    of the observed returns (equal to ``env.metrics.compute_metrics`` for the same curve); the
    interval is the percentile interval of the resamples, NaN resamples (a constant resample has
    no Sharpe) left out. With fewer than two returns every bound is NaN.
    """
    r = _finite_1d(returns, "returns")
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must be in (0, 1), got {confidence}")
    block = default_mean_block(r.size) if mean_block is None else float(mean_block)
    meta = {"n_boot": float(n_boot), "mean_block": block, "confidence": confidence}
    out: dict[str, dict[str, float]] = {}
    if r.size < 2:
        for name in RUN_STATISTICS:
            out[name] = {"point": math.nan, "lo": math.nan, "hi": math.nan}
        out["bootstrap"] = meta
        return out
    idx = stationary_bootstrap_indices(r.size, n_boot, block, np.random.default_rng(seed))
    samples = r[idx]
    tail = (1.0 - confidence) / 2.0 * 100.0
    for name in RUN_STATISTICS:
        fn = _STATISTIC_FNS[name]
        values = np.asarray(fn(samples), dtype=float)
        values = values[np.isfinite(values)]
        lo, hi = (np.percentile(values, [tail, 100.0 - tail]) if values.size else (math.nan, math.nan))
        out[name] = {"point": float(fn(r)), "lo": float(lo), "hi": float(hi)}
    out["bootstrap"] = meta
    return out


# -- across seeds --------------------------------------------------------------------------
def mean_ci(values: ArrayLike, *, n_boot: int = 10_000, confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap CI of the mean of independent values (iid resamples); NaN with none,
    a zero-width interval with one."""
    a = _finite_1d(values, "values")
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must be in (0, 1), got {confidence}")
    if a.size == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = a[rng.integers(0, a.size, size=(n_boot, a.size))].mean(axis=1)
    tail = (1.0 - confidence) / 2.0 * 100.0
    lo, hi = np.percentile(means, [tail, 100.0 - tail])
    return float(lo), float(hi)


def paired_gap(
    values: ArrayLike,
    baseline: ArrayLike,
    *,
    n_boot: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """Mean paired gap ``values - baseline`` over seeds, its bootstrap CI and a Wilcoxon p-value.

    The CI is the percentile interval of the mean gap over ``n_boot`` iid resamples of the seeds
    (seeds are independent runs). The p-value is scipy's two-sided Wilcoxon signed-rank test of
    the gaps (exact for small samples without ties, zero gaps dropped); 1.0 when every gap is 0,
    NaN with no seed. Keys: ``n``, ``mean_gap``, ``lo``, ``hi``, ``wins`` (gaps > 0), ``p_wilcoxon``.
    """
    a = _finite_1d(values, "values")
    b = _finite_1d(baseline, "baseline")
    if a.shape != b.shape:
        raise DataError(f"paired_gap needs one baseline per value, got {a.size} values and {b.size} baselines")
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must be in (0, 1), got {confidence}")
    gaps = a - b
    n = gaps.size
    out = {"n": float(n), "mean_gap": math.nan, "lo": math.nan, "hi": math.nan, "wins": float((gaps > 0).sum()),
           "p_wilcoxon": math.nan}
    if n == 0:
        return out
    out["mean_gap"] = float(gaps.mean())
    out["lo"], out["hi"] = mean_ci(gaps, n_boot=n_boot, confidence=confidence, seed=seed)
    if np.all(gaps == 0):
        out["p_wilcoxon"] = 1.0
    else:
        out["p_wilcoxon"] = float(sps.wilcoxon(gaps, zero_method="wilcox", alternative="two-sided").pvalue)
    return out


# -- probabilistic and deflated Sharpe -------------------------------------------------------
def sharpe_moments(returns: ArrayLike) -> dict[str, float]:
    """Per-period Sharpe (mean / std, ddof=1), skewness and kurtosis (3 for a normal) of returns,
    with ``n`` the number of returns: the inputs of PSR and DSR."""
    r = _finite_1d(returns, "returns")
    n = r.size
    if n < 2:
        return {"n": float(n), "sr": math.nan, "skew": math.nan, "kurtosis": math.nan}
    sr = sharpe_of(r, periods=1)
    if not math.isfinite(sr):
        return {"n": float(n), "sr": math.nan, "skew": math.nan, "kurtosis": math.nan}
    return {
        "n": float(n),
        "sr": float(sr),
        "skew": float(sps.skew(r, bias=True)),
        "kurtosis": float(sps.kurtosis(r, fisher=False, bias=True)),
    }


def probabilistic_sharpe_ratio(sr: float, n: int, *, sr_benchmark: float = 0.0, skew: float = 0.0,
                               kurtosis: float = 3.0) -> float:
    """PSR: the probability that the true Sharpe exceeds ``sr_benchmark`` (Bailey & López de Prado 2012).

    ``PSR = Phi((sr - sr*) sqrt(n - 1) / sqrt(1 - skew sr + (kurtosis - 1) / 4 sr^2))`` with ``sr``
    and ``sr_benchmark`` per period (not annualised) and ``kurtosis`` non-excess. NaN when ``sr``
    is NaN, ``n < 2`` or the variance term is not positive.
    """
    if not (math.isfinite(sr) and math.isfinite(sr_benchmark)) or n < 2:
        return math.nan
    var = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr**2
    if not var > 0:
        return math.nan
    return float(sps.norm.cdf((sr - sr_benchmark) * math.sqrt(n - 1) / math.sqrt(var)))


def expected_max_sharpe(n_trials: int, sr_variance: float, sr_mean: float = 0.0) -> float:
    """Expected maximum Sharpe of ``n_trials`` independent trials whose Sharpe estimates have
    variance ``sr_variance`` (the DSR paper's SR0; same units as the Sharpes, per period):
    ``sr_mean + sqrt(V) ((1 - g) Phi^-1(1 - 1/N) + g Phi^-1(1 - 1/(N e)))``, g Euler's constant.
    One trial gives ``sr_mean`` (no selection)."""
    if n_trials < 1:
        raise ConfigError(f"n_trials must be at least 1 (the number of configurations tried), got {n_trials}")
    if not sr_variance >= 0:
        raise ConfigError(f"sr_variance must be >= 0, got {sr_variance}")
    if n_trials == 1:
        return float(sr_mean)
    z = (1.0 - EULER_GAMMA) * sps.norm.ppf(1.0 - 1.0 / n_trials) + EULER_GAMMA * sps.norm.ppf(1.0 - 1.0 / (n_trials * math.e))
    return float(sr_mean + math.sqrt(sr_variance) * z)


def deflated_sharpe_ratio(sr: float, n: int, *, n_trials: int, sr_variance: float, skew: float = 0.0,
                          kurtosis: float = 3.0) -> dict[str, float]:
    """DSR (Bailey & López de Prado 2014): the PSR of the selected ``sr`` against the expected
    maximum Sharpe of ``n_trials`` trials (``expected_max_sharpe``). All Sharpes per period.
    Returns ``{"sr0": ..., "dsr": ...}``."""
    sr0 = expected_max_sharpe(n_trials, sr_variance)
    return {"sr0": sr0, "dsr": probabilistic_sharpe_ratio(sr, n, sr_benchmark=sr0, skew=skew, kurtosis=kurtosis)}


# -- probability of backtest overfitting -----------------------------------------------------
def _column_sharpe(block: np.ndarray) -> np.ndarray:
    return np.asarray(sharpe_of(block.T, periods=1), dtype=float)


def pbo_cscv(
    performance: np.ndarray,
    *,
    n_splits: int = 16,
    metric: Callable[[np.ndarray], np.ndarray] = _column_sharpe,
) -> dict[str, object]:
    """Probability of backtest overfitting by CSCV (Bailey, Borwein, López de Prado & Zhu 2014).

    ``performance`` is a ``(T, N)`` matrix of per-period returns of ``N`` configurations. Its rows
    are cut into ``n_splits`` (even) contiguous blocks of equal size (leftover rows at the end are
    dropped); for each of the C(S, S/2) ways to choose half the blocks as in-sample, the
    configuration best in-sample by ``metric`` (a function of a ``(rows, N)`` block returning N
    scores; default the per-period Sharpe) is ranked out-of-sample, ``w = rank / (N + 1)`` with
    rank N the best, and its logit ``ln(w / (1 - w))`` recorded. PBO is the share of logits <= 0:
    how often the in-sample winner is at or below the out-of-sample median. Ties in-sample go to
    the first configuration; ties out-of-sample take the average rank.
    Returns ``{"pbo", "logits", "n_combinations", "n_configs"}``.
    """
    m = np.asarray(performance, dtype=float)
    if m.ndim != 2:
        raise DataError(f"performance must be a (periods, configurations) matrix, got shape {m.shape}")
    if not np.isfinite(m).all():
        raise DataError("performance has non-finite values; drop those periods first")
    t, n_cfg = m.shape
    if n_cfg < 2:
        raise ConfigError(f"PBO needs at least 2 configurations, got {n_cfg}")
    if n_splits < 2 or n_splits % 2:
        raise ConfigError(f"n_splits must be an even number >= 2, got {n_splits}")
    if t < n_splits:
        raise DataError(f"{t} periods cannot be cut into {n_splits} blocks; lower n_splits")
    size = t // n_splits
    blocks = [m[i * size:(i + 1) * size] for i in range(n_splits)]
    logits = []
    for chosen in combinations(range(n_splits), n_splits // 2):
        rest = [i for i in range(n_splits) if i not in chosen]
        is_scores = np.asarray(metric(np.vstack([blocks[i] for i in chosen])), dtype=float)
        oos_scores = np.asarray(metric(np.vstack([blocks[i] for i in rest])), dtype=float)
        best = int(np.argmax(np.where(np.isfinite(is_scores), is_scores, -np.inf)))
        oos = np.where(np.isfinite(oos_scores), oos_scores, -np.inf)
        rank = float(sps.rankdata(oos, method="average")[best])
        w = rank / (n_cfg + 1)
        logits.append(math.log(w / (1.0 - w)))
    arr = np.asarray(logits)
    return {"pbo": float((arr <= 0).mean()), "logits": arr.tolist(), "n_combinations": float(arr.size),
            "n_configs": float(n_cfg)}


# -- one run, all together ------------------------------------------------------------------------
def run_statistics(equity: ArrayLike, *, n_boot: int = 1000, seed: int = 0, n_trials: int = 1,
                   sr_variance: float = 0.0) -> dict[str, object]:
    """The statistics ``metrics.json`` carries for one run's equity curve: bootstrap CIs, the
    per-period Sharpe moments, PSR against 0 and (with ``n_trials`` > 1) the DSR."""
    r = returns_of(equity)
    moments = sharpe_moments(r)
    out: dict[str, object] = {"ci": bootstrap_run_ci(r, n_boot=n_boot, seed=seed), **moments}
    out["psr"] = probabilistic_sharpe_ratio(moments["sr"], int(moments["n"]), skew=moments["skew"],
                                            kurtosis=moments["kurtosis"])
    if n_trials > 1:
        out["dsr"] = deflated_sharpe_ratio(moments["sr"], int(moments["n"]), n_trials=n_trials, sr_variance=sr_variance,
                                           skew=moments["skew"], kurtosis=moments["kurtosis"])
    return out
