"""The news window model: how a ticker's recent news evidence, item by item, adds up to the return
the next position earns.

The reader and the judgement calibrator give each news item a log-odds deviation ``e_i`` (its
evidence that the ticker's price rises after it). How those add up over a window, and how fast an
item's news is priced in, is a property of the market, not of the text, so it is learned too:
for a decision at the close of session ``t``, feature ``b`` is the sum of ``e_i`` over the ticker's
items that became usable at session ``t - b`` (``b = 0 .. sessions - 1``), and the label is whether
the position set at that decision (filled at the next open, held to the open after) gained:
``open[t + 2] > open[t + 1]``. A ridge logistic regression on the matured rows weighs each age.

Its gate is its own out-of-fold test, in time order (expanding window): the t-statistic of the
correlation between the out-of-fold log-odds and the realised return (clipped at a few median
moves, so one gap cannot decide). A log-loss test on the up/down label alone is too weak here: a
news drift worth a Sharpe of 7 moves a single session's sign only a little, and ~130 rows cannot
show it (z ~ 1 for perfect reading), while the returns' magnitudes can. The model's deviation
counts in full at ``evidence_full``, ramps in from ``evidence_min``, and is exactly 0 below it, so
noise news leaves the news signal at 0.5.

The deviation returned excludes the intercept (how often prices rise is the risk agent's business),
as the direction agent's naive-Bayes signal always did. Features for past rows use the reader's
*out-of-fold* predictions, so the weights are learned on evidence as noisy as tomorrow's.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from env.errors import DataError

FORMAT = "tradegraph-news-window-1"


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


def _logloss(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return -(y * np.log(p) + (1 - y) * np.log1p(-p))


def ridge_logistic(x: np.ndarray, y: np.ndarray, ridge: float) -> tuple[float, np.ndarray]:
    """logit P(y=1) = a + x @ b by Newton's method, L2 ``ridge`` on ``b`` (not on ``a``)."""
    n, d = x.shape
    design = np.hstack([np.ones((n, 1)), x])
    penalty = np.diag([1e-9] + [ridge] * d)
    theta = np.zeros(d + 1)
    for _ in range(60):
        p = _sigmoid(design @ theta)
        grad = design.T @ (p - y) + penalty @ theta
        hess = (design * (p * (1 - p))[:, None]).T @ design + penalty
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.abs(step).max() < 1e-10:
            break
    a, b = float(theta[0]), theta[1:].copy()
    return a, b


def window_features(sessions_and_evidence: Sequence[tuple[int, float]], decision_session: int, sessions: int) -> np.ndarray:
    """Per age ``b`` in sessions (0 = usable at the decision's own session), the summed evidence."""
    out = np.zeros(sessions)
    for s, e in sessions_and_evidence:
        age = decision_session - s
        if 0 <= age < sessions:
            out[age] += e
    return out


class NewsWindowModel:
    """See the module docstring."""

    def __init__(self, *, sessions: int, ridge: float, evidence_min: float, evidence_full: float,
                 folds: int = 5, min_rows: int = 40, clip_moves: float = 3.0) -> None:
        self.sessions, self.ridge, self.clip_moves = sessions, ridge, clip_moves
        self.evidence_min, self.evidence_full = evidence_min, evidence_full
        self.folds, self.min_rows = folds, min_rows
        self.intercept = 0.0
        self.weights = np.zeros(sessions)
        self.shrink = 0.0
        self.report: dict[str, Any] = {"trained": False, "reason": "not fitted", "n_rows": 0, "shrink": 0.0}

    @property
    def trained(self) -> bool:
        return bool(self.report.get("trained"))

    def fit(self, features: np.ndarray, returns: np.ndarray) -> dict[str, Any]:
        """``features``: (rows, sessions) in time order; ``returns``: the next position's return per row."""
        x, r = np.asarray(features, dtype=float), np.asarray(returns, dtype=float)
        dim = self.sessions
        if x.ndim != 2 or x.shape[1] != dim or len(x) != len(r) or not (np.isfinite(x).all() and np.isfinite(r).all()):
            raise DataError(f"news window model: features {x.shape} and returns {r.shape}; expected (rows, {dim}), finite")
        n = len(r)
        y = (r > 0).astype(float)
        moves = np.abs(r[r != 0])
        cap = self.clip_moves * float(np.median(moves)) if len(moves) else 0.0
        clipped = np.clip(r, -cap, cap)
        self.intercept, self.weights, self.shrink = 0.0, np.zeros(dim), 0.0

        def done(reason: str, trained: bool, **extra: Any) -> dict[str, Any]:
            self.report = {"trained": trained, "reason": reason, "n_rows": int(n), "shrink": self.shrink,
                           "weights": [float(v) for v in self.weights], "intercept": self.intercept, **extra}
            return self.report

        if n < self.min_rows:
            return done(f"too few matured decision rows: {n} < {self.min_rows}; the per-item signal is used", False)
        if y.min() == y.max() or np.abs(x).max() < 1e-12:
            return done(f"nothing to learn from {n} rows (one-sided labels or no evidence); the per-item signal is used", False)
        # Time-ordered expanding-window validation: fold k trains on every row before it.
        chunks = np.array_split(np.arange(n), self.folds + 1)
        gains, logits, held = [], [], []
        for val in chunks[1:]:
            train = np.arange(int(val[0]))
            if len(val) == 0 or len(train) < 10 or y[train].min() == y[train].max():
                continue
            a, b = ridge_logistic(x[train], y[train], self.ridge)
            base = (y[train].sum() + 1.0) / (len(train) + 2.0)
            gains.append(_logloss(np.full(len(val), base), y[val]) - _logloss(_sigmoid(a + x[val] @ b), y[val]))
            logits.append(x[val] @ b)
            held.append(clipped[val])
        a, b = ridge_logistic(x, y, self.ridge)
        self.intercept, self.weights = a, b
        if not gains:
            return done(f"too few rows for time-ordered validation ({n}); the per-item signal is used", False)
        gain, pred, ret = np.concatenate(gains), np.concatenate(logits), np.concatenate(held)
        corr = float(np.corrcoef(pred, ret)[0, 1]) if pred.std() > 0 and ret.std() > 0 else 0.0
        m = len(ret)
        z = corr * math.sqrt(max(m - 2, 1)) / math.sqrt(max(1e-12, 1.0 - corr * corr))
        if z < self.evidence_min:
            ramp = 0.0
        elif self.evidence_full <= self.evidence_min:
            ramp = 1.0
        else:
            ramp = min(1.0, (z - self.evidence_min) / (self.evidence_full - self.evidence_min))
        self.shrink = float(ramp)
        verdict = "skill" if ramp >= 1 else "partial skill" if ramp > 0 else "no skill"
        return done(
            f"{verdict}: out-of-fold corr(logit, return) {corr:+.3f}, t = {z:.2f} on {m} of {n} rows; scale {ramp:.2f}; "
            f"weights by age {', '.join(f'{v:+.2f}' for v in b)}",
            True, evidence=z, oof_corr=corr, oof_rows=int(m), oof_logloss_gain=float(gain.mean()),
            up_share=float(y.mean()),
        )

    def deviation(self, features: np.ndarray) -> float:
        """The gated log-odds deviation of one decision's features (0 without skill)."""
        if self.shrink == 0.0:
            return 0.0
        return float(self.shrink * (np.asarray(features, dtype=float) @ self.weights))

    def save(self, path: Path) -> None:
        state = {"format": FORMAT, "sessions": self.sessions, "intercept": self.intercept,
                 "weights": [float(v) for v in self.weights], "shrink": self.shrink, "report": self.report}
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(state, sort_keys=True), encoding="utf-8")
        tmp.replace(path)

    def load(self, path: Path) -> NewsWindowModel:
        state = json.loads(Path(path).read_text(encoding="utf-8"))
        if state.get("format") != FORMAT or int(state.get("sessions", -1)) != self.sessions:
            raise DataError(f"{path}: news window format {state.get('format')!r} over {state.get('sessions')} sessions, "
                            f"expected {FORMAT!r} over {self.sessions}")
        self.intercept, self.weights = float(state["intercept"]), np.asarray(state["weights"], dtype=float)
        self.shrink, self.report = float(state["shrink"]), dict(state["report"])
        return self
